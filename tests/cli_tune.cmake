# cli_tune.cmake - `fp4gemm tune` end to end on the CPU: the cache it writes (docs/tuning.md),
# its progress line, --merge, bad usage; `fp4gemm info` and `fp4gemm gemm` reading the cache
# through FP4GEMM_TUNING_FILE; a corrupt cache reported and ignored.
#
# Run by ctest:  cmake -DFP4=<path of fp4gemm> -DWORK=<scratch dir> -P tests/cli_tune.cmake
include("${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake")

# neither a cache nor a backend choice of the caller may change what the test sees
set(FP4_ENV_PREFIX --unset=FP4GEMM_TUNING_FILE --unset=FP4GEMM_BACKEND)

# the entry lines of a cache file
function(fp4_entries file count)
  file(STRINGS "${WORK}/${file}" lines REGEX "^entry ")
  list(LENGTH lines n)
  if(NOT n EQUAL count)
    message(FATAL_ERROR "${file}: ${n} entry lines, expected ${count}:\n${lines}")
  endif()
endfunction()

# ---- help and usage ---------------------------------------------------------------------------
fp4_expect(0 tune --help)
fp4_require("${OUT}" "FP4GEMM_TUNING_FILE" "tune --help must say how the cache is used")
fp4_require("${OUT}" "--m-list" "tune --help lists --m-list")
fp4_expect(0 --help)
fp4_require("${OUT}" "tune +autotune" "the top-level help lists tune")
fp4_expect(0 bench --help)
fp4_require("${OUT}" "--autotune +tune every point first" "bench --help describes --autotune")
fp4_expect(2 tune --shapes 3,32,64)
fp4_require("${ERR}" "^fp4gemm tune:[^\n]*--out" "a missing --out is one usage line")
fp4_expect(2 tune --preset nosuch --out x.txt)
fp4_require("${ERR}" "^fp4gemm tune: --preset nosuch: unknown" "an unknown preset names tune")
fp4_expect(2 tune --shapes 3,32,64 --out -)
fp4_expect(1 tune --device cpu --shapes 3,32,64 --out no/such/dir/cache.txt)
fp4_require("${ERR}" "fp4gemm tune: writing the cache:[^\n]*no/such/dir" "an unwritable --out")

# ---- tune two tiny problems on the CPU ---------------------------------------------------------
# (two shapes: "3,32,64;16,32,64" through a shell, as a CMake list can't hold the ';')
execute_process(COMMAND sh -c "unset FP4GEMM_TUNING_FILE FP4GEMM_BACKEND; \"$1\" tune --device cpu --shapes '3,32,64;16,32,64' --out cache.txt" sh "${FP4}"
                WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE OUT ERROR_VARIABLE ERR)
set(LAST "fp4gemm tune --device cpu --shapes '3,32,64;16,32,64' --out cache.txt")
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "${LAST}: exit code ${rc}\n--- stdout:\n${OUT}--- stderr:\n${ERR}")
endif()
fp4_require("${ERR}" "problem 1 of 2 \\(M=3 N=32 K=64\\), tactic [0-9]+ of [0-9]+, best [a-z_]+/[a-z0-9_]+ [0-9.]+ us; [0-9]+ s elapsed, ~[0-9]+ s left"
            "the progress line: problem i of n, best so far, time left")
fp4_require("${ERR}" "problem 2 of 2" "progress of the second problem")
fp4_require("${OUT}" "2 of 2 problems tuned" "the summary")
fp4_require("${OUT}" "\ntune: 2 of 2 problems tuned in [0-9.]+ s \\(operands [0-9.]+ s, estimates [0-9.]+ s, verify [0-9.]+ s, timing [0-9.]+ s, other [0-9.]+ s; [0-9]+ tactics timed, [0-9]+ cut, 0 failed\\)"
            "the summary says where the time went, tactics timed and cut")
fp4_require("${OUT}" "wrote cache.txt: 2 entries for \"CPU\"" "the file and its device")
file(READ "${WORK}/cache.txt" cache)
fp4_require("${cache}" "^fp4gemm-tuning 1\n" "the header line")
fp4_require("${cache}" "\nentry \"CPU\" 0 0 [0-9.]+ 4 32 64 e2m1 swizzled swizzled bf16 [a-z_]+/[a-z0-9_]+ [0-9.e+-]+\n"
            "the bucket of M = 3 is 4")
fp4_require("${cache}" "\nentry \"CPU\" 0 0 [0-9.]+ 16 32 64 e2m1 " "the bucket of M = 16")
fp4_require("${cache}" "\nend 2\n$" "the end line counts the entries")
file(GLOB leftovers "${WORK}/*tmp*" "${WORK}/.*.??????") # the temporary: .cache.txt.XXXXXX
if(leftovers)
  message(FATAL_ERROR "temporary files left behind: ${leftovers}")
endif()

# ---- the cache in use ---------------------------------------------------------------------------
fp4_expect(0 ENV FP4GEMM_TUNING_FILE=cache.txt info)
fp4_require("${OUT}" "tuning +cache.txt: 2 entries for \"CPU\" sm_0" "info names the loaded file and device")
fp4_expect(0 info)
fp4_require("${OUT}" "tuning +none loaded" "info without a cache")
fp4_expect(0 ENV FP4GEMM_TUNING_FILE=cache.txt gemm -m 3 -n 32 -k 64 --device cpu --check)
fp4_require("${OUT}" "backend +[a-z_]+/[a-z0-9_]+ \\(tuned: bucket m <= 4" "auto takes the tuned tactic")
fp4_expect(0 ENV FP4GEMM_TUNING_FILE=cache.txt gemm -m 5 -n 32 -k 64 --device cpu)
fp4_require("${OUT}" "backend +[^\n]*\\(auto: policy" "an untuned bucket: the policy")

# ---- --merge keeps the other entries; without it the file is replaced ---------------------------
fp4_expect(0 tune --device cpu --shapes 1,16,32 --out cache.txt --merge)
fp4_entries(cache.txt 3)
fp4_expect(0 tune --device cpu --shapes 1,16,32 --out cache.txt)
fp4_entries(cache.txt 1)

# ---- a corrupt cache: reported, ignored, nothing fails ---------------------------------------------
file(WRITE "${WORK}/corrupt.txt" "fp4gemm-tuning 1\nentry \"CPU\" 0 0 0.1.0 16 32 64 e2m1 linear\n")
fp4_expect(0 ENV FP4GEMM_TUNING_FILE=corrupt.txt info)
fp4_require("${ERR}" "corrupt.txt:2: [^\n]*the tuning file is ignored" "the warning names file and line")
fp4_require("${OUT}" "tuning +none loaded" "nothing loaded from a corrupt file")
fp4_expect(1 tune --device cpu --shapes 1,16,32 --out corrupt.txt --merge)
fp4_require("${ERR}" "--merge: loading the existing file" "--merge refuses a corrupt file")
