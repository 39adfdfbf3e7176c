# Thin wrapper over CMake so that a fresh machine needs two commands:
#   make run    builds, then runs a GEMM on the best backend here, checked against the reference
#   make test   builds, then runs the whole test suite (GPU cases run when a GPU is present)
# More: make test-sanitize (ASan + UBSan, CPU build of the static library, so that the two
# library kinds and their installed packages are both tested), make clean. CMAKE_ARGS passes options
# through, e.g. make test CMAKE_ARGS=-DFP4GEMM_CUDA=OFF.

BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GENERATOR := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)
CMAKE_ARGS ?=

.PHONY: all build run test test-sanitize clean

all: build

build:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/fp4gemm gemm -m 128 -n 512 -k 1024 --check

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-sanitize:
	@test -f $(BUILD_ASAN)/CMakeCache.txt || cmake -S . -B $(BUILD_ASAN) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DFP4GEMM_SANITIZE=ON -DFP4GEMM_CUDA=OFF -DFP4GEMM_SHARED=OFF $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	FP4GEMM_TEST_SKIP_LARGE=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
