#!/usr/bin/env bash
# device_bench.sh - the one script to run on the GPU machine: build, test, sanitize, bench.
#
#   scripts/device_bench.sh [all|build|test|bench] [extra arguments for `fp4gemm bench`]
#
#   build  cmake + ninja (all cores, CUDA_ARCHS, default 90a) into $BUILD (default build)
#   test   build, then ctest, compute-sanitizer memcheck, racecheck and synccheck over
#          $BUILD/test_gpu (SAN_TACTICS limits the GEMM tactics they cover), racecheck over
#          $BUILD/test_threads_gpu (THREADS_SAN_TIMEOUT), and `fp4gemm info`
#   python pip install ./python into a venv that sees the image's torch (no network), then
#          pytest python/tests (the torch CUDA tests included); log in python.log
#   bench  build, then `fp4gemm bench --preset $PRESET` (default llama3.1-8b) writing
#          bench.csv, bench.json and bench.svg; extra arguments go to the bench
#   all    test, then bench (may not fit in one 10-minute call: prefer test, then bench)
#   Every step has a timeout (CTEST_TIMEOUT, SAN_TIMEOUT, BENCH_TIMEOUT): a hung kernel costs
#   minutes, not the call.
#
# Everything is logged under $OUT (default ./out), in at most 8 files:
#   build.log test.log info.log bench.log bench.csv bench.json bench.svg summary.txt
# The last lines on stdout are a short summary (also in summary.txt). Exit status: 0 when
# every stage run passed, else 1.
set -u -o pipefail

stage=${1:-all}
[ $# -gt 0 ] && shift
case "$stage" in
  all|build|test|bench|python) ;;
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "device_bench.sh: unknown stage '$stage' (all, build, test, bench, python)" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out}
BUILD=${BUILD:-build}
CUDA_ARCHS=${CUDA_ARCHS:-90a}
PRESET=${PRESET:-llama3.1-8b}
SAN_TIMEOUT=${SAN_TIMEOUT:-240}      # seconds for each compute-sanitizer run
SAN_TACTICS=${SAN_TACTICS:-}         # FP4GEMM_TEST_TACTICS for the sanitizer runs (e.g. cuda_wgmma)
CTEST_TIMEOUT=${CTEST_TIMEOUT:-300}  # seconds for each ctest test
THREADS_SAN_TIMEOUT=${THREADS_SAN_TIMEOUT:-300} # racecheck over test_threads_gpu
BENCH_TIMEOUT=${BENCH_TIMEOUT:-480}  # seconds for the bench
mkdir -p "$OUT"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
JOBS=$(nproc 2>/dev/null || echo 4)

summary=()
failed=0
note() { summary+=("$*"); }
elapsed() { echo $(( $(date +%s) - $1 ))s; }

# build: configure once, then incremental
do_build() {
  local t0; t0=$(date +%s)
  {
    echo "== $(date -u '+%F %T UTC') build: cmake (CUDA archs $CUDA_ARCHS), ninja -j$JOBS"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv 2>&1
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
      cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" || return 1
    fi
    cmake --build "$BUILD" -j "$JOBS"
  } > "$OUT/build.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then
    note "build: OK ($(elapsed "$t0"))"
  else
    note "build: FAILED ($(elapsed "$t0")); tail of build.log:"
    while IFS= read -r line; do note "  $line"; done < <(tail -n 15 "$OUT/build.log")
    failed=1
  fi
  return $rc
}

# test: ctest, then the sanitizers over the GPU test driver, then `fp4gemm info`
do_test() {
  local t0 rc; t0=$(date +%s)
  {
    echo "== $(date -u '+%F %T UTC') ctest"
    # a hung kernel must not eat the whole call: every test has CTEST_TIMEOUT seconds
    ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" --timeout "$CTEST_TIMEOUT"
  } > "$OUT/test.log" 2>&1
  rc=$?
  note "ctest: $([ $rc -eq 0 ] && echo OK || echo FAILED) ($(elapsed "$t0")): $(grep -E 'tests passed|tests failed' "$OUT/test.log" | tail -n 1)"
  [ $rc -eq 0 ] || failed=1

  local sanitizer
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null)
  for tool in memcheck racecheck synccheck; do
    t0=$(date +%s)
    if [ -z "$sanitizer" ]; then
      note "compute-sanitizer $tool: SKIPPED (compute-sanitizer not found)"
      continue
    fi
    {
      echo
      echo "== $(date -u '+%F %T UTC') compute-sanitizer --tool $tool $BUILD/test_gpu (timeout ${SAN_TIMEOUT}s)"
      # racecheck is far slower than memcheck: it gets the quick shape list (every kernel
      # and every edge case still runs)
      quick=0; [ "$tool" = racecheck ] && quick=1
      FP4GEMM_TEST_TACTICS=$SAN_TACTICS FP4GEMM_TEST_QUICK=$quick FP4GEMM_TEST_SKIP_LARGE=1 \
        timeout "$SAN_TIMEOUT" "$sanitizer" --tool "$tool" --error-exitcode 99 "$BUILD/test_gpu"
    } >> "$OUT/test.log" 2>&1
    rc=$?
    local verdict
    case $rc in
      0) verdict=OK ;;
      77) verdict="SKIPPED (no GPU seen by test_gpu)" ;;
      99) verdict="FAILED: the sanitizer reported errors"; failed=1 ;;
      124) verdict="TIMED OUT after ${SAN_TIMEOUT}s (raise SAN_TIMEOUT)"; failed=1 ;;
      *) verdict="FAILED (exit $rc)"; failed=1 ;;
    esac
    note "compute-sanitizer $tool: $verdict ($(elapsed "$t0")): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/test.log" | tail -n 1)"
  done

  # the concurrency test under racecheck (issue 17)
  if [ -n "$sanitizer" ]; then
    t0=$(date +%s)
    {
      echo
      echo "== $(date -u '+%F %T UTC') compute-sanitizer --tool racecheck $BUILD/test_threads_gpu (timeout ${THREADS_SAN_TIMEOUT}s)"
      # the jobs and graphs parts, quick sizes (racecheck runs each kernel far slower; the
      # sanitizer's own allocations move the lifecycle part's free-memory check)
      FP4GEMM_TEST_QUICK=1 timeout "$THREADS_SAN_TIMEOUT" "$sanitizer" --tool racecheck \
        --error-exitcode 99 "$BUILD/test_threads_gpu" jobs graphs
    } >> "$OUT/test.log" 2>&1
    rc=$?
    case $rc in
      0) note "racecheck test_threads_gpu: OK ($(elapsed "$t0"))" ;;
      124) note "racecheck test_threads_gpu: TIMED OUT after ${THREADS_SAN_TIMEOUT}s"; failed=1 ;;
      *) note "racecheck test_threads_gpu: FAILED (exit $rc, $(elapsed "$t0"))"; failed=1 ;;
    esac
  fi

  "$BUILD/fp4gemm" info > "$OUT/info.log" 2>&1
  rc=$?
  note "fp4gemm info: $([ $rc -eq 0 ] && echo OK || echo "FAILED (exit $rc)") (info.log)"
  [ $rc -eq 0 ] || failed=1
}

# bench: the preset with CSV, JSON and SVG; the table and summary go to bench.log
do_bench() {
  local t0 rc; t0=$(date +%s)
  timeout "$BENCH_TIMEOUT" "$BUILD/fp4gemm" bench --preset "$PRESET" \
    --csv "$OUT/bench.csv" --json "$OUT/bench.json" --svg "$OUT/bench.svg" "$@" \
    > "$OUT/bench.log" 2>&1
  rc=$?
  case $rc in
    0) note "bench: OK ($(elapsed "$t0"))" ;;
    124) note "bench: TIMED OUT after ${BENCH_TIMEOUT}s"; failed=1 ;;
    *) note "bench: exit $rc ($(elapsed "$t0")): 1 = a provider FAILED or a CUDA error, 2 = usage"; failed=1 ;;
  esac
  # the header (card, ceilings), the summary table and the last line
  while IFS= read -r line; do note "  $line"; done < <(grep -E '^fp4gemm bench on|^  ceilings' "$OUT/bench.log")
  if grep -q '^summary on' "$OUT/bench.log"; then
    while IFS= read -r line; do note "  $line"; done < <(sed -n '/^summary on/,$p' "$OUT/bench.log")
  else
    while IFS= read -r line; do note "  $line"; done < <(tail -n 12 "$OUT/bench.log")
  fi
  # the acceptance figure of issue 4: cublas_bf16 at M=8192
  if [ -f "$OUT/bench.csv" ]; then
    local best
    best=$(awk -F, '$2=="cublas_bf16" && $3==8192 && $7=="OK" {print $11}' "$OUT/bench.csv" | sort -g | tail -n 1)
    [ -n "$best" ] && note "  cublas_bf16 at M=8192: best ${best} TFLOP/s (issue 4 asks >= 600)"
  fi
  local failed_rows
  failed_rows=$(grep -cE '^[a-z0-9_]+ +[0-9]+ +[0-9]+ +[0-9]+  FAILED' "$OUT/bench.log")
  [ "$failed_rows" -gt 0 ] && while IFS= read -r line; do note "  $line"; done < <(grep -E '^[a-z0-9_]+ +[0-9]+ +[0-9]+ +[0-9]+  FAILED' "$OUT/bench.log" | head -n 8)
  return $rc
}

# python: the package against the image's python3 and torch (nothing can be downloaded there:
# --no-build-isolation uses the image's scikit-build-core; --target installs beside the image's
# environment (its python3 is itself a venv) instead of into it; this is how it ran on 2026-11-30)
do_python() {
  local t0 rc; t0=$(date +%s)
  {
    echo "== $(date -u '+%F %T UTC') python: $(python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1)"
    rm -rf build-py/device-site &&
      CMAKE_BUILD_PARALLEL_LEVEL=$JOBS python3 -m pip install -q --no-build-isolation --no-deps \
        --target build-py/device-site ./python &&
      (cd /tmp && PYTHONPATH="$OLDPWD/build-py/device-site" timeout 300 python3 -m pytest -q -rs \
        -p no:cacheprovider "$OLDPWD/python/tests")
  } > "$OUT/python.log" 2>&1
  rc=$?
  note "python: $([ $rc -eq 0 ] && echo OK || echo "FAILED (exit $rc)") ($(elapsed "$t0")): $(grep -E 'passed|failed' "$OUT/python.log" | tail -n 1)"
  [ $rc -eq 0 ] || failed=1
}

t_all=$(date +%s)
if [ "$stage" = python ]; then
  do_python
elif do_build; then
  case "$stage" in
    test) do_test ;;
    bench) do_bench "$@" ;;
    all) do_test; do_bench "$@" ;;
  esac
fi

{
  echo
  echo "== device_bench.sh $stage: $(date -u '+%F %T UTC'), $(elapsed "$t_all") in all, logs in $OUT"
  printf '%s\n' "${summary[@]}"
  echo "== $([ $failed -eq 0 ] && echo PASSED || echo 'SOMETHING FAILED: see above')"
} | tee "$OUT/summary.txt"
exit $failed
