# cli_bench.cmake - `fp4gemm bench --rounds R` on the CPU: every provider of a point checked
# once, then timed R times in turn; a row is its median round (docs/PERF.md, "Timing"). The
# header and the JSON say R, the CSV keeps its columns, bad values are usage errors.
#
# Run by ctest:  cmake -DFP4=<path of fp4gemm> -DWORK=<scratch dir> -P tests/cli_bench.cmake
# Any failure stops with the command line, its exit code and its output.
include("${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake")

# ---- --help: the option, in two lines of at most 80 columns ----------------------------------
fp4_expect(0 bench --help)
if(NOT OUT MATCHES "\n(  --rounds 1\\.\\.20 +[^\n]*\n +[^\n]*median round[^\n]*)\n")
  message(FATAL_ERROR "${LAST}: no two-line --rounds option in:\n${OUT}")
endif()
string(REPEAT "[^\n]" 81 too_long)
if(CMAKE_MATCH_1 MATCHES "${too_long}")
  message(FATAL_ERROR "${LAST}: --rounds' help is longer than 80 columns:\n${CMAKE_MATCH_1}")
endif()

# ---- --rounds 3: three rows, each the median of its three rounds -----------------------------
# (a generous budget, as in cli_smoke: under ASan on a loaded machine a point takes seconds)
set(providers cpu cpu/blocked auto)
list(JOIN providers "," providers_arg)
fp4_expect(0 bench --device cpu --shapes 5,40,32 --providers ${providers_arg} --rounds 3
           --max-point-seconds 60 --csv rounds.csv --json rounds.json)
fp4_require("${OUT}" "\n  rounds: 3 per point \\(--rounds 3\\): each provider checked once, then timed 3 times"
            "the header says how many rounds")
fp4_require("${OUT}" "3 rows [^\n]*: 3 OK, 0 FAILED, 0 SKIPPED" "every row checked and timed")
set(num "([0-9]+\\.[0-9]+)")
foreach(p ${providers})
  string(REPLACE "/" "\\/" p_re "${p}")
  if(NOT OUT MATCHES "\n${p_re} +5 +40 +32 +${num} +${num} +${num} [^\n]*3 rounds: ${num}\\.\\.${num} us")
    message(FATAL_ERROR "${LAST}: no timed row of ${p} with its 3 rounds in:\n${OUT}")
  endif()
  set(time ${CMAKE_MATCH_1})
  set(p20 ${CMAKE_MATCH_2})
  set(p80 ${CMAKE_MATCH_3})
  set(lo ${CMAKE_MATCH_4})
  set(hi ${CMAKE_MATCH_5})
  # the row is one of its rounds: its time within the rounds' range, p20 <= time <= p80
  if(time LESS lo OR time GREATER hi OR p20 GREATER time OR p80 LESS time)
    message(FATAL_ERROR "${LAST}: ${p}: time ${time} (p20 ${p20}, p80 ${p80}) is not the "
                        "median of rounds ${lo}..${hi}")
  endif()
endforeach()

# the CSV: the same 22 columns as without --rounds, one row per provider
file(READ "${WORK}/rounds.csv" csv)
string(REPLACE ";" "<semicolon>" csv "${csv}") # the notes' "; " must not split the list
string(REGEX REPLACE "\n$" "" csv "${csv}")
string(REPLACE "\n" ";" csv_lines "${csv}")
list(LENGTH csv_lines n_lines)
if(NOT n_lines EQUAL 4)
  message(FATAL_ERROR "${LAST}: rounds.csv has ${n_lines} lines, expected a header and 3 rows")
endif()
list(GET csv_lines 0 csv_header)
set(columns "device,provider,m,n,k,out_dtype,status,time_us,p20_us,p80_us,tflops,gbs,"
            "roofline_pct,speedup_vs_openblas_f32,launches,sets,replays,timing,cold,"
            "check_max_err,check_rel_l2,note")
string(JOIN "" columns ${columns})
if(NOT csv_header STREQUAL columns)
  message(FATAL_ERROR "${LAST}: the CSV's columns changed:\n${csv_header}\nexpected\n${columns}")
endif()
list(SUBLIST csv_lines 1 3 csv_rows)
foreach(row ${csv_rows})
  string(REGEX REPLACE "\"([^\"]|\"\")*\"" "Q" bare "${row}") # quoted fields (device, note)
  string(REGEX REPLACE "[^,]" "" commas "${bare}")
  string(LENGTH "${commas}" n_commas)
  if(NOT n_commas EQUAL 21 OR NOT row MATCHES "^\"[^\"]*\",[a-z/_]+,5,40,32,bf16,OK,[0-9.]+,"
     OR NOT row MATCHES "3 rounds: [0-9.]+\\.\\.[0-9.]+ us\"$")
    message(FATAL_ERROR "${LAST}: a malformed CSV row (${n_commas} commas):\n${row}")
  endif()
endforeach()
file(READ "${WORK}/rounds.json" json)
fp4_require("${json}" "\"method\": {[^}]*\"rounds\": 3, " "the JSON's method records the rounds")
fp4_require("${json}" "\"rounds_method\": \"each provider checked once" "the JSON says how")

# ---- the default, --rounds 1: one timing per row, as before -----------------------------------
fp4_expect(0 bench --device cpu --shapes 5,40,32 --providers cpu --max-point-seconds 60
           --json one.json)
fp4_require("${OUT}" "\n  rounds: 1 per point \\(--rounds 1\\)" "the header says 1 round")
fp4_require("${OUT}" "\ncpu +5 +40 +32 +[0-9.]+ [^\n]*cpu/gemv" "the row is timed")
if(OUT MATCHES "[0-9] rounds: ")
  message(FATAL_ERROR "${LAST}: one round has no rounds note:\n${OUT}")
endif()
file(READ "${WORK}/one.json" json)
fp4_require("${json}" "\"method\": {[^}]*\"rounds\": 1, " "the JSON records 1 round")

# ---- too slow in round 0: SKIPPED, not timed again -------------------------------------------
fp4_expect(0 bench --device cpu --shapes 5,40,32 --providers cpu --rounds 3
           --max-point-seconds 1e-9)
fp4_require("${OUT}" "\ncpu +5 +40 +32  SKIPPED: too slow for the budget[^\n;]*\n"
            "over the budget in round 0: SKIPPED, and no rounds after it")

# ---- bad values: one error line naming the option and its range, exit 2 ---------------------
foreach(bad 0 21 x 3x -1)
  fp4_expect(2 bench --device cpu --shapes 5,40,32 --rounds ${bad})
  fp4_one_error_line("--rounds ${bad}: must be an integer from 1 to 20")
endforeach()
fp4_expect(2 bench --device cpu --shapes 5,40,32 --rounds)
fp4_one_error_line("--rounds needs a value \\(1\\.\\.20\\)")

message(STATUS "cli_bench: all passed")
