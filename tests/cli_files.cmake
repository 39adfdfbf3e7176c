# cli_files.cmake - the tool's output files and numeric options (issue 7, point 9): every case
# here failed on the tool before the fix.
#
# Run by ctest:  cmake -DFP4=<fp4gemm> -DWORK=<scratch dir> -P tests/cli_files.cmake
include("${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake")

# No temporary may be left in WORK after a command (a fixed PATH.tmp or a unique one).
function(fp4_no_temporaries)
  file(GLOB left "${WORK}/*.tmp" "${WORK}/.*.??????" "${WORK}/sub/.*.??????")
  if(left)
    message(FATAL_ERROR "${LAST}: temporaries left behind: ${left}")
  endif()
endfunction()

set(Q --rows 5 -k 64 --in-dtype f32 --in x.bin)
fp4_expect(0 gen-input --rows 5 -k 64 --seed 7 --out x.bin)
fp4_expect(0 quantize ${Q} --out-q q.bin --out-sf sf.bin)
if(NOT OUT MATCHES "global scale ([^ ]+) \\(f32 bits (0x[0-9A-F]+)\\)")
  message(FATAL_ERROR "${LAST}: no 'global scale G (f32 bits 0x...)' in:\n${OUT}")
endif()
set(gs "${CMAKE_MATCH_1}")
set(bits "${CMAKE_MATCH_2}")
fp4_no_temporaries()

# ---- numbers: exactly what the tool prints -------------------------------------------------
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs} --out y.bin)
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${bits}
           --out y_bits.bin)
fp4_same_file(y.bin y_bits.bin "--global-scale ${bits} (the printed f32 bits) must mean ${gs}")
fp4_expect(0 quantize ${Q} --out-q q_bits.bin --out-sf sf_bits.bin --global-scale ${bits})
fp4_same_file(q.bin q_bits.bin "quantize --global-scale ${bits} must give the same bytes")
fp4_expect(2 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale 0x1234
           --out z.bin)
fp4_require("${ERR}" "8 hex digits" "a short hex value must be refused with the reason")
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale 0x1.0cp+7
           --out z.bin)
# a denormal global scale is a valid f32 > 0, as the API says
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale 1e-40
           --out z.bin)
fp4_expect(2 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale 1e-50
           --out z.bin)
fp4_require("${ERR}" "underflows" "1e-50 must be refused as an underflow")

# ---- special files are written in place ------------------------------------------------------
if(EXISTS /dev/null)
  fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
             --out /dev/null)
  execute_process(COMMAND stat -c %F /dev/null OUTPUT_VARIABLE kind)
  if(NOT kind MATCHES "character special")
    message(FATAL_ERROR "${LAST}: /dev/null is now '${kind}'")
  endif()
endif()
find_program(MKFIFO mkfifo)
find_program(TIMEOUT timeout)
if(MKFIFO AND TIMEOUT)
  execute_process(COMMAND "${MKFIFO}" "${WORK}/fifo")
  execute_process(COMMAND sh -c "${TIMEOUT} 20 cat fifo > from_fifo.bin & \
${TIMEOUT} 20 '${FP4}' dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs} \
--out fifo; rc=$?; wait; exit $rc"
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  set(LAST "dequantize --out fifo")
  if(NOT rc EQUAL 0 OR IS_DIRECTORY "${WORK}/fifo")
    message(FATAL_ERROR "${LAST}: exit ${rc}: ${err}")
  endif()
  execute_process(COMMAND stat -c %F "${WORK}/fifo" OUTPUT_VARIABLE kind)
  if(NOT kind MATCHES "fifo")
    message(FATAL_ERROR "${LAST}: the FIFO was replaced by a '${kind}'")
  endif()
  fp4_same_file(from_fifo.bin y.bin "what went through the FIFO must be the output")
  # a write killed half-way (here: blocked on a FIFO nobody reads, then SIGTERM) leaves
  # neither a temporary nor a half-made set of outputs
  execute_process(COMMAND "${MKFIFO}" "${WORK}/fifo2")
  execute_process(COMMAND "${TIMEOUT}" -s TERM 2 "${FP4}" quantize ${Q} --out-q killed_q.bin
                          --out-sf fifo2
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  set(LAST "quantize --out-q killed_q.bin --out-sf fifo2, killed while blocked")
  if(NOT rc EQUAL 124)
    message(FATAL_ERROR "${LAST}: exit ${rc}, expected 124 (killed by timeout)")
  endif()
  if(EXISTS "${WORK}/killed_q.bin")
    message(FATAL_ERROR "${LAST}: killed_q.bin was written although the command was killed")
  endif()
  fp4_no_temporaries()
endif()

# ---- "-" is stdout; the messages then go to stderr --------------------------------------------
execute_process(COMMAND "${FP4}" dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin
                --global-scale ${gs} --out -
                WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_FILE "${WORK}/stdout.bin"
                ERROR_VARIABLE err)
set(LAST "dequantize --out -")
if(NOT rc EQUAL 0 OR EXISTS "${WORK}/-")
  message(FATAL_ERROR "${LAST}: exit ${rc}, or a file named '-' was made: ${err}")
endif()
fp4_same_file(stdout.bin y.bin "--out - must write exactly the output to stdout")
fp4_require("${err}" "wrote -" "the message goes to stderr")
if(EXISTS /dev/stdout)
  execute_process(COMMAND "${FP4}" dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin
                  --global-scale ${gs} --out /dev/stdout
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_FILE "${WORK}/stdout2.bin"
                  ERROR_VARIABLE err)
  set(LAST "dequantize --out /dev/stdout")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${LAST}: exit ${rc}: ${err}")
  endif()
  fp4_same_file(stdout2.bin y.bin "--out /dev/stdout must write exactly the output")
  fp4_require("${err}" "wrote /dev/stdout" "with stdout the output, the message goes to stderr")
endif()

# ---- a symlink is followed: the target replaced, the link kept --------------------------------
file(MAKE_DIRECTORY "${WORK}/sub")
file(WRITE "${WORK}/sub/target.bin" "old")
file(CREATE_LINK "sub/target.bin" "${WORK}/link.bin" SYMBOLIC)
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out link.bin)
if(NOT IS_SYMLINK "${WORK}/link.bin")
  message(FATAL_ERROR "${LAST}: the symlink was replaced by a regular file")
endif()
fp4_same_file(sub/target.bin y.bin "the symlink's target must hold the output")
fp4_no_temporaries()
file(CREATE_LINK "sub/missing.bin" "${WORK}/dangling.bin" SYMBOLIC)
fp4_expect(1 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out dangling.bin)
fp4_require("${ERR}" "symlink to a missing file" "a dangling symlink is refused with the reason")

# ---- a failed quantize keeps the older outputs ------------------------------------------------
file(WRITE "${WORK}/keep_q.bin" "older q")
fp4_expect(1 quantize ${Q} --out-q keep_q.bin --out-sf no_such_dir/sf.bin)
file(READ "${WORK}/keep_q.bin" kept)
if(NOT kept STREQUAL "older q")
  message(FATAL_ERROR "${LAST}: the older --out-q file was lost or changed: '${kept}'")
endif()
fp4_no_temporaries()

# ---- two outputs to one file are refused before anything runs ----------------------------------
file(WRITE "${WORK}/same.bin" "mine")
fp4_expect(2 quantize ${Q} --out-q same.bin --out-sf same.bin)
fp4_require("${ERR}" "same file" "the refusal must say why")
fp4_expect(2 quantize ${Q} --out-q same.bin --out-sf ./sub/../same.bin)
fp4_expect(2 quantize ${Q} --out-q link.bin --out-sf sub/target.bin)
file(READ "${WORK}/same.bin" kept)
if(NOT kept STREQUAL "mine")
  message(FATAL_ERROR "${LAST}: same.bin was changed by a refused command")
endif()
fp4_expect(0 quantize ${Q} --out-q /dev/null --out-sf /dev/null)

# ---- an output that is an input is refused before anything runs (the input would be lost) ---
file(SHA256 "${WORK}/x.bin" x_before)
fp4_expect(2 quantize ${Q} --out-q ./x.bin --out-sf sf_in.bin)
fp4_require("${ERR}" "^fp4gemm quantize: --out-q ./x.bin is the input --in x.bin[^\n]*\n$"
            "one line naming the output and the input")
file(CREATE_LINK "x.bin" "${WORK}/x_link.bin" SYMBOLIC)
fp4_expect(2 quantize ${Q} --out-q q_in.bin --out-sf x_link.bin)
file(SHA256 "${WORK}/x.bin" x_after)
if(NOT x_before STREQUAL x_after OR EXISTS "${WORK}/sf_in.bin" OR EXISTS "${WORK}/q_in.bin")
  message(FATAL_ERROR "${LAST}: a refused command changed x.bin or wrote an output")
endif()
fp4_expect(2 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out sf.bin)
fp4_require("${ERR}" "--out sf.bin is the input --in-sf sf.bin" "dequantize names the input")
fp4_expect(2 gemm -m 5 -n 5 -k 64 --device cpu --a q.bin --a-sf sf.bin --a-gs ${gs} --out q.bin)
fp4_require("${ERR}" "--out q.bin is the input --a q.bin" "gemm names the input")
fp4_same_file(q.bin q_bits.bin "a refused gemm --out must leave its input as it was")

# ---- a fixed-name PATH.tmp is not used: a stale one can't block or be clobbered ---------------
file(MAKE_DIRECTORY "${WORK}/out.bin.tmp")
fp4_expect(0 dequantize --rows 5 -k 64 --in-q q.bin --in-sf sf.bin --global-scale ${gs}
           --out out.bin)
fp4_same_file(out.bin y.bin "the output must be written past a stale out.bin.tmp")
file(REMOVE_RECURSE "${WORK}/out.bin.tmp")
fp4_no_temporaries()

message(STATUS "cli_files: all passed")
