# fp4gemm_ckpt.cmake - the checkpoint reader and writer (src/ckpt/): safetensors headers are
# parsed with cJSON (Debian: libcjson-dev), found by pkg-config or by its header and library;
# without it the checkpoint calls return FP4_ERR_NOT_SUPPORTED ("built without cJSON").
# Included by CMakeLists.txt once the fp4gemm target exists, before the install rules.

option(FP4GEMM_CJSON "Build the safetensors checkpoint support with cJSON when it is found" ON)
target_sources(fp4gemm PRIVATE src/ckpt/safetensors.c src/ckpt/st_open.c src/ckpt/st_write.c
  src/ckpt/modelopt.c)
set(FP4GEMM_WITH_CJSON OFF)
if(FP4GEMM_CJSON)
  find_path(FP4GEMM_CJSON_INCLUDE_DIR cjson/cJSON.h)
  find_library(FP4GEMM_CJSON_LIBRARY NAMES cjson)
  if(FP4GEMM_CJSON_INCLUDE_DIR AND FP4GEMM_CJSON_LIBRARY)
    set(FP4GEMM_WITH_CJSON ON)
  endif()
endif()
if(FP4GEMM_WITH_CJSON)
  message(STATUS "fp4gemm: checkpoints (safetensors): cJSON ${FP4GEMM_CJSON_LIBRARY}")
  target_include_directories(fp4gemm PRIVATE ${FP4GEMM_CJSON_INCLUDE_DIR})
  target_compile_definitions(fp4gemm PRIVATE FP4GEMM_HAVE_CJSON=1)
  target_link_libraries(fp4gemm PRIVATE ${FP4GEMM_CJSON_LIBRARY})
  string(APPEND FP4GEMM_PC_LIBS_PRIVATE " -lcjson")
  # the tool writes the config files beside a checkpoint with cJSON too (tools/ckpt_config.c)
  target_include_directories(fp4gemm_cli PRIVATE ${FP4GEMM_CJSON_INCLUDE_DIR})
  target_compile_definitions(fp4gemm_cli PRIVATE FP4GEMM_HAVE_CJSON=1)
  target_link_libraries(fp4gemm_cli PRIVATE ${FP4GEMM_CJSON_LIBRARY})
else()
  message(STATUS "fp4gemm: no cJSON (Debian: libcjson-dev): checkpoints (safetensors) are not "
                 "built; those calls say \"built without cJSON\"")
endif()
