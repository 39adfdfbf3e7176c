#!/usr/bin/env bash
# Builds the tuning-file fuzz target with clang's libFuzzer (ASan + UBSan) from the library's
# CPU sources, and runs it on a copy of the seed corpus.
#   tests/fuzz/run.sh [libFuzzer options...]     e.g. -runs=200000, -max_total_time=60
# Exits 0 with "SKIP: ..." when clang or its libFuzzer runtime is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${FUZZ_BUILD:-$root/build-fuzz}"
cc="${FUZZ_CC:-clang}"
if ! command -v "$cc" >/dev/null; then echo "SKIP: fuzz: no $cc"; exit 0; fi
mkdir -p "$out"
probe="$out/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe"
if ! "$cc" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
  echo "SKIP: fuzz: $cc has no libFuzzer runtime (-fsanitize=fuzzer)"; exit 0
fi
srcs=$(cd "$root" && ls src/*.c src/cpu/*.c src/cuda/simt/simt_backend.c src/cuda/mma/mma_backend.c src/tune/*.c)
flags=(-std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$root/include" -I"$root/src" '-DFP4GEMM_CUDA_ARCHS=""')
( cd "$root" && "$cc" "${flags[@]}" $srcs tests/fuzz/fuzz_tuning.c -lm -o "$out/fuzz_tuning" )
corpus="$out/corpus"
mkdir -p "$corpus"
cp "$root"/tests/fuzz/corpus/* "$corpus"/
"$out/fuzz_tuning" -dict="$root/tests/fuzz/tuning.dict" -max_len=4096 "$@" "$corpus"
