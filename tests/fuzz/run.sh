#!/usr/bin/env bash
# Builds a fuzz target with clang's libFuzzer (ASan + UBSan) against the library (CPU-only
# static build, instrumented), and runs it on a copy of its seed corpus.
#   tests/fuzz/run.sh [libFuzzer options...]     e.g. -runs=200000, -max_total_time=60
# FUZZ_TARGET picks the target: tuning (the default: fuzz_tuning.c, the tuning-file loader) or
# safetensors (fuzz_safetensors.c, the checkpoint header parser; needs cJSON, libcjson-dev).
# Exits 0 with "SKIP: ..." when clang or its libFuzzer runtime is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${FUZZ_BUILD:-$root/build-fuzz}"
cc="${FUZZ_CC:-clang}"
target="${FUZZ_TARGET:-tuning}"
case "$target" in
  tuning) corpus_src="$root/tests/fuzz/corpus"; dict="$root/tests/fuzz/tuning.dict"; max_len=4096; libs="" ;;
  safetensors) corpus_src="$root/tests/fuzz/corpus_safetensors"; dict="$root/tests/fuzz/safetensors.dict"
               max_len=2048; libs="-lcjson" ;;
  *) echo "fuzz: FUZZ_TARGET=$target: not a target (tuning, safetensors)" >&2; exit 2 ;;
esac
if ! command -v "$cc" >/dev/null; then echo "SKIP: fuzz: no $cc"; exit 0; fi
mkdir -p "$out"
probe="$out/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe"
if ! "$cc" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
  echo "SKIP: fuzz: $cc has no libFuzzer runtime (-fsanitize=fuzzer)"; exit 0
fi
# the library as CMake builds it (CPU only, static, no OpenMP: the loader under test is serial,
# and clang's OpenMP runtime, libomp, is not a dependency of the project), instrumented
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
cmake -S "$root" -B "$out/lib" -DCMAKE_C_COMPILER="$cc" -DFP4GEMM_CUDA=OFF -DFP4GEMM_SHARED=OFF \
      -DFP4GEMM_OPENMP=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS=$san" >/dev/null
cmake --build "$out/lib" --target fp4gemm -j "${JOBS:-2}" >/dev/null
"$cc" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
      -I"$root/include" "$root/tests/fuzz/fuzz_$target.c" "$out/lib/libfp4gemm.a" $libs -lm -lpthread \
      -o "$out/fuzz_$target"
corpus="$out/corpus_$target"
mkdir -p "$corpus"
cp "$corpus_src"/* "$corpus"/
"$out/fuzz_$target" -dict="$dict" -max_len=$max_len "$@" "$corpus"
