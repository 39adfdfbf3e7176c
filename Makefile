# Thin wrapper over CMake so that a fresh machine needs two commands:
#   make run    builds, then runs a GEMM on the best backend here, checked against the reference
#   make test   builds, then runs the whole test suite (GPU cases run when a GPU is present)
# More: make test-sanitize (ASan + UBSan, CPU build of the static library, so that the two
# library kinds and their installed packages are both tested), make fuzz (the tuning-file loader
# under libFuzzer; FUZZ_TARGET=safetensors: the checkpoint reader), make test-tsan (ThreadSanitizer,
# CPU build, the concurrency tests: docs/threads.md), make clean. CMAKE_ARGS passes
# options through, e.g. make test CMAKE_ARGS=-DFP4GEMM_CUDA=OFF: the arguments a build folder
# was configured with are kept in BUILD/fp4gemm-cmake-args, and the folder is configured
# afresh (cmake --fresh) whenever CMAKE_ARGS differs from them, so they are never ignored.

BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GENERATOR := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)
CMAKE_ARGS ?=

.PHONY: all build run test test-sanitize test-tsan fuzz clean

all: build

# $(call configure,DIR,ARGS): configures DIR afresh with ARGS unless it was configured with
# exactly CMAKE_ARGS before (the stamp), then records CMAKE_ARGS.
STAMP := fp4gemm-cmake-args
quote = '$(subst ','\'',$(1))'
define configure
	@if [ ! -f $(1)/CMakeCache.txt ] || [ "$$(cat $(1)/$(STAMP) 2>/dev/null)" != $(call quote,$(CMAKE_ARGS)) ]; then \
	  echo "configuring $(1) afresh: CMAKE_ARGS differs from the last configuration"; \
	  cmake --fresh -S . -B $(1) $(GENERATOR) $(2) $(CMAKE_ARGS) && \
	  printf '%s' $(call quote,$(CMAKE_ARGS)) > $(1)/$(STAMP); \
	fi
endef

build:
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/fp4gemm gemm -m 128 -n 512 -k 1024 --check

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-sanitize:
	$(call configure,$(BUILD_ASAN),-DCMAKE_BUILD_TYPE=Debug -DFP4GEMM_SANITIZE=ON -DFP4GEMM_CUDA=OFF -DFP4GEMM_SHARED=OFF)
	cmake --build $(BUILD_ASAN) -j $(JOBS)
	FP4GEMM_TEST_SKIP_LARGE=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)

# ThreadSanitizer: only the concurrency test (the others are single-threaded); any report fails it.
test-tsan:
	$(call configure,$(BUILD_TSAN),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFP4GEMM_TSAN=ON -DFP4GEMM_CUDA=OFF -DFP4GEMM_SHARED=OFF)
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target test_threads
	ctest --test-dir $(BUILD_TSAN) --output-on-failure -R '^test_threads$$'

# The tuning-file loader under libFuzzer (clang; ASan + UBSan): FUZZ_ARGS, e.g. -runs=10000000.
FUZZ_ARGS ?= -runs=200000
fuzz:
	tests/fuzz/run.sh $(FUZZ_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) build-fuzz
