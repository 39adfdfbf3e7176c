# cli_smoke.cmake - the fp4gemm tool end to end: checked GEMMs, exit codes, --help of every
# command, info, and a gen-input -> quantize -> dequantize round trip on files.
#
# Run by ctest:  cmake -DFP4=<path of fp4gemm> -DWORK=<scratch dir> -P tests/cli_smoke.cmake
# Any failure stops with the command line, its exit code and its output.
include("${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake")

# ---- top level ------------------------------------------------------------------------------
fp4_expect(0 --help)
fp4_require("${OUT}" "FP4GEMM_BACKEND=NAME +read by the library" "--help must name the library's backend override")
fp4_require("${OUT}" "sm_90[^\n]*cuda_wgmma" "--help must list the Hopper policy")
fp4_require("${OUT}" "CPU[^\n]*cpu > cpu_ref" "--help must list the CPU policy")
fp4_expect(0 --version)
fp4_require("${OUT}" "^fp4gemm [0-9]+\\.[0-9]+\\.[0-9]+" "version")
fp4_expect(2)
fp4_expect(2 no-such-command)
fp4_one_error_line("unknown command")

string(REPEAT "[^\n]" 81 too_long) # a line longer than 80 columns
foreach(cmd info gemm quantize dequantize bench gen-input "checkpoint inspect" "checkpoint quantize"
        "checkpoint verify")
  separate_arguments(cmd_args UNIX_COMMAND "${cmd}")
  fp4_expect(0 ${cmd_args} --help)
  fp4_require("${OUT}" "usage: fp4gemm ${cmd}" "${cmd} --help must start with its usage")
  # within 80 columns (bench's help, tools/bench/, is not held to it yet)
  if(NOT cmd STREQUAL "bench" AND OUT MATCHES "${too_long}")
    message(FATAL_ERROR "${LAST}: a line longer than 80 columns in:\n${OUT}")
  endif()
endforeach()
fp4_expect(0 --help)
if(OUT MATCHES "${too_long}")
  message(FATAL_ERROR "${LAST}: a line longer than 80 columns in:\n${OUT}")
endif()

# ---- info ------------------------------------------------------------------------------------
fp4_expect(0 info)
fp4_require("${OUT}" "cpu_ref +can run" "info must say that cpu_ref can run on the CPU")
fp4_require("${OUT}" "cpu +can run" "info must say that cpu can run on the CPU")
fp4_require("${OUT}" "auto picks +[a-z_]+" "info must say what auto picks")

# ---- gemm: checked runs on the default device -------------------------------------------------
foreach(shape "1;1;16" "33;65;48")
  list(GET shape 0 m)
  list(GET shape 1 n)
  list(GET shape 2 k)
  fp4_expect(0 gemm -m ${m} -n ${n} -k ${k} --check)
  fp4_require("${OUT}" "backend +(cpu|cpu_ref|cuda_[a-z]+|cublaslt)/" "gemm must print the backend")
  fp4_require("${OUT}" "check [^\n]*: OK" "gemm --check must pass")
endforeach()
fp4_expect(0 gemm -m 3 -n 17 -k 32 --w4a16 --out-dtype f32 --layout linear --check)
fp4_require("${OUT}" "W4A16[^\n]*linear[^\n]*f32" "gemm must describe the problem")
fp4_require("${OUT}" "\nscales +gs_b [^\n,]+, alpha " "W4A16: A has no global scale to print")
fp4_expect(0 gemm -m 130 -n 7 -k 80 --w4a16 --a-dtype f16 --out-dtype f16 --check)
fp4_expect(0 gemm -m 5 -n 9 -k 64 --out-dtype f32 --device cpu --seed 42 --replays 21 --check)
fp4_require("${OUT}" "backend +cpu/(gemv|blocked)" "the CPU runs the cpu backend")
fp4_require("${OUT}" "median of (2[1-9]|[3-9][0-9]|100) replays" "gemm times with fp4_measure (at least --replays)")
fp4_require("${OUT}" "check +all 45 elements, vs an fp64" "--check compares every element of a small D")
fp4_expect(0 gemm -m 64 -n 64 -k 64 --device cpu --max-seconds 1e-9)
fp4_require("${OUT}" "about [0-9.]+ us per GEMM" "over the budget, gemm prints the estimate")

# ---- gemm: usage errors exit 2 with one line, failures exit 1 ----------------------------------
fp4_expect(2 gemm -m 1 -n 1 -k 24)
fp4_one_error_line("-k 24: K must be a multiple of 16")
fp4_expect(2 gemm -m 1 -n 1 -k 16 --bogus)
fp4_one_error_line("unknown option '--bogus'")
fp4_expect(2 gemm -m 12x -n 1 -k 16)
fp4_one_error_line("-m 12x: not an integer")
fp4_expect(2 gemm -m 0 -n 1 -k 16)
fp4_expect(2 gemm -m -4 -n 1 -k 16)
fp4_expect(2 gemm -m 1 -n 1)
fp4_one_error_line("missing -k")
fp4_expect(2 gemm -m 1 -n 1 -k)
fp4_one_error_line("-k needs a value")
fp4_expect(2 gemm -m 1 -n 1 -k 16 --backend fastest)
fp4_expect(2 gemm -m 1 -n 1 -k 16 --out-dtype=e2m1)
fp4_expect(2 gemm -m 1 -n 1 -k 16 --check=yes)
fp4_expect(0 gemm -m1 -n=1 -k 16 --out-dtype=f32)
# tactics by name (case-insensitive), as the library names them
fp4_expect(0 gemm -m 5 -n 9 -k 64 --device cpu --backend CPU_REF/default --no-time)
fp4_require("${OUT}" "backend +cpu_ref/default" "gemm must run and name the tactic asked for")
fp4_expect(2 gemm -m 5 -n 9 -k 64 --backend cuda_simt/bogus)
fp4_one_error_line("cuda_simt/bogus.*cuda_simt/tiled")
fp4_expect(0 bench --providers cuda_simt/gemv_mr8,auto --list-providers)
fp4_require("${OUT}" "cuda_simt/gemv_mr8" "bench --providers takes a tactic")
# every tensor-core tactic at once (16 providers once capped the list at 4 tactics); the
# configs exist only in a build with CUDA
execute_process(COMMAND "${FP4}" info OUTPUT_VARIABLE info_out ERROR_QUIET)
if(NOT info_out MATCHES "built without CUDA")
  set(all_tactics cuda_wgmma/n64,cuda_wgmma/n128,cuda_wgmma/n256,cuda_mma/m8_r1,cuda_mma/m16_r1,cuda_mma/m32_r1,cuda_mma/m64_r1,cuda_mma/m8_r2,cuda_mma/m16_r2,cuda_mma/m32_r2,cuda_mma/m64_r2,cuda_simt/gemv_mr1,cuda_simt/gemv_mr2,cuda_simt/gemv_mr4,cuda_simt/gemv_mr8,cuda_simt/tiled)
  fp4_expect(0 bench --providers auto,${all_tactics},cublas_bf16 --list-providers)
  fp4_require("${OUT}" "cuda_simt/tiled" "bench --providers takes every tactic at once")
endif()
# the bench on the CPU: checked, timed rows, the CPU's ceilings, the files
# (a generous budget: under ASan on a loaded 2-core machine one point took 0.24 ms a GEMM, and
# 20 replays of 1024 launches then need 5 s; unloaded it is a fraction of a second)
fp4_expect(0 bench --device cpu --shapes 5,40,32 --providers cpu,cpu/blocked,auto
           --max-point-seconds 60 --json bench_cpu.json --csv bench_cpu.csv)
fp4_require("${OUT}" "on the CPU" "bench --device cpu runs on the CPU")
fp4_require("${OUT}" "DRAM read [0-9.]+ GB/s[^\n]*FP32 FMA peak [0-9]+ GFLOP/s" "bench on the CPU measures its ceilings")
fp4_require("${OUT}" "OPENBLAS_CORETYPE" "bench on the CPU reports OPENBLAS_CORETYPE")
fp4_require("${OUT}" "\ncpu +5 +40 +32 +[0-9.]+ [^\n]*cpu/gemv" "bench times cpu (gemv at M = 5)")
fp4_require("${OUT}" "\ncpu/blocked +5 +40 +32 +[0-9.]+ " "bench times a cpu tactic")
fp4_require("${OUT}" "\nauto +5 +40 +32 +[0-9.]+ [^\n]*auto: cpu/" "auto on the CPU runs the cpu backend")
fp4_require("${OUT}" "3 rows [^\n]*: 3 OK, 0 FAILED" "every CPU row checked and timed")
file(READ "${WORK}/bench_cpu.json" json)
fp4_require("${json}" "\"cpu\": \"cpu backend" "the JSON records the CPU's facts")
file(READ "${WORK}/bench_cpu.csv" csv)
fp4_require("${csv}" "speedup_vs_openblas_f32" "the CSV names the CPU baseline")
fp4_expect(0 info)
fp4_require("${OUT}" "tactics +cpu/gemv, cpu/blocked, cpu_ref/default" "info must list the tactics that can run")
# a FP4GEMM_LOG_LEVEL that is no level is reported even when nothing else is logged
execute_process(COMMAND ${CMAKE_COMMAND} -E env FP4GEMM_LOG_LEVEL=verbose "${FP4}" info
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(LAST "FP4GEMM_LOG_LEVEL=verbose fp4gemm info")
fp4_require("${rc}" "^0$" "exit code")
fp4_require("${err}" "FP4GEMM_LOG_LEVEL=verbose is not a log level" "the bad level must be reported")
# a valid request that can't run here: the reason, exit 1
fp4_expect(1 gemm -m 4 -n 4 -k 16 --device cpu --backend cuda_simt)
fp4_one_error_line("backend cuda_simt can't run")
fp4_require("${ERR}" "^fp4gemm gemm: on CPU: backend cuda_simt can't run this problem: [^\n]*\n$"
            "the reason once, with the device")

# ---- files: gen-input -> quantize (twice) -> dequantize --------------------------------------
fp4_expect(0 gen-input --rows 5 -k 64 --seed 7 --out x.bin)
fp4_size(x.bin 1280)
fp4_expect(0 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q q.bin --out-sf sf.bin)
if(NOT OUT MATCHES "global scale ([^ ]+)")
  message(FATAL_ERROR "${LAST}: no 'global scale' in the output:\n${OUT}")
endif()
set(gs "${CMAKE_MATCH_1}")
fp4_size(q.bin 160)   # 5 x 64/2
fp4_size(sf.bin 512)  # swizzled: 128 rows x 4 scales
fp4_expect(0 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q q2.bin --out-sf sf2.bin)
fp4_same_file(q.bin q2.bin)
fp4_same_file(sf.bin sf2.bin)
# the printed global scale, given back, gives the same bytes
fp4_expect(0 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q q3.bin --out-sf sf3.bin
           --global-scale ${gs})
fp4_same_file(q.bin q3.bin)
fp4_same_file(sf.bin sf3.bin)
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out y.bin)
fp4_size(y.bin 1280)
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out-dtype bf16 --out y16.bin)
fp4_size(y16.bin 640)
# and once more with BF16 input and linear scales
fp4_expect(0 gen-input --rows 3 -k 32 --dtype bf16 --seed 9 --out xb.bin)
fp4_size(xb.bin 192)
fp4_expect(0 quantize --rows 3 -k 32 --in-dtype bf16 --in xb.bin --layout linear
           --out-q qb.bin --out-sf sfb.bin --auto-global-scale)
fp4_size(sfb.bin 6)   # 3 rows x 2 scales
fp4_expect(0 dequantize --rows 3 -k 32 --in-q qb.bin --in-sf sfb.bin --layout linear
           --global-scale 1 --out-dtype f16 --out yb.bin)
fp4_size(yb.bin 192)
# the modelopt recipe: its printed decode scale ws2, given back, gives the same bytes
fp4_expect(0 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q qm.bin --out-sf sfm.bin
           --recipe modelopt)
if(NOT OUT MATCHES "decode global scale ws2 ([^ ]+)")
  message(FATAL_ERROR "${LAST}: no 'decode global scale ws2' in the output:\n${OUT}")
endif()
set(ws2 "${CMAKE_MATCH_1}")
fp4_expect(0 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q qm2.bin --out-sf sfm2.bin
           --recipe modelopt --global-scale ${ws2})
fp4_same_file(qm.bin qm2.bin)
fp4_same_file(sfm.bin sfm2.bin)
fp4_expect(2 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q qm.bin --out-sf sfm.bin
           --recipe trtllm)
fp4_one_error_line("--recipe trtllm: not a recipe")

# gemm on the user's own files: the quantize outputs and their printed global scales
fp4_expect(0 gen-input --rows 24 -k 64 --seed 3 --scale 0.02 --out w.bin)
fp4_expect(0 quantize --rows 24 -k 64 --in-dtype f32 --in w.bin --out-q w.q --out-sf w.sf)
if(NOT OUT MATCHES "f32 bits (0x[0-9A-F]+)")
  message(FATAL_ERROR "${LAST}: no f32 bits in:\n${OUT}")
endif()
set(gs_w "${CMAKE_MATCH_1}")
fp4_expect(0 gemm -m 5 -n 24 -k 64 --device cpu --a q.bin --a-sf sf.bin --a-gs ${gs}
           --b w.q --b-sf w.sf --b-gs ${gs_w} --out-dtype f32 --check --no-time --out d.bin)
fp4_require("${OUT}" "inputs A from q.bin, B from w.q" "gemm must say where the inputs came from")
fp4_require("${OUT}" "check [^\n]*: OK" "gemm --check on files must pass")
fp4_size(d.bin 480)   # 5 x 24 f32
fp4_expect(0 gemm -m 5 -n 24 -k 64 --device cpu --a q.bin --a-sf sf.bin --a-gs ${gs}
           --b w.q --b-sf w.sf --b-gs ${gs_w} --out-dtype f32 --no-time --out d2.bin)
fp4_same_file(d.bin d2.bin)
fp4_expect(1 gemm -m 6 -n 24 -k 64 --device cpu --a q.bin --a-sf sf.bin --a-gs ${gs}
           --b w.q --b-sf w.sf --b-gs ${gs_w})
fp4_one_error_line("expected 192 bytes")
fp4_expect(2 gemm -m 5 -n 24 -k 64 --b w.q --b-sf w.sf)
fp4_one_error_line("--b needs --b-sf and --b-gs")
fp4_expect(0 gemm -m 3 -n 24 -k 64 --device cpu --w4a16 --b w.q --b-sf w.sf --b-gs ${gs_w}
           --check --no-time)

# file errors: a size that doesn't match, a missing file, a bad combination
fp4_expect(1 quantize --rows 6 -k 64 --in-dtype f32 --in x.bin --out-q bad.bin --out-sf bad_sf.bin)
fp4_one_error_line("expected 1536 bytes")
if(EXISTS "${WORK}/bad.bin" OR EXISTS "${WORK}/bad_sf.bin")
  message(FATAL_ERROR "a failed quantize must not leave output files")
endif()
fp4_expect(1 dequantize --rows 5 -k 64 --in-q missing.bin --in-sf sf.bin --global-scale 1
           --out z.bin)
fp4_expect(2 quantize --rows 5 -k 64 --in-dtype f32 --in x.bin --out-q q.bin --out-sf sf.bin
           --global-scale 2 --auto-global-scale)
fp4_expect(2 quantize --rows 5 -k 24 --in-dtype f32 --in x.bin --out-q q.bin --out-sf sf.bin)
fp4_one_error_line("multiple of 16")
fp4_expect(2 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale 0 --out z.bin)

message(STATUS "cli_smoke: all passed")
