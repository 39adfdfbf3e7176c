# fp4gemm_install.cmake - `cmake --install` lays out the header, the library, the `fp4gemm`
# tool, a CMake package (find_package(fp4gemm) -> fp4gemm::fp4gemm) and fp4gemm.pc.
include(CMakePackageConfigHelpers)
set(FP4GEMM_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/fp4gemm"
    CACHE STRING "Where the CMake package goes, relative to the prefix")

install(TARGETS fp4gemm EXPORT fp4gemm-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/fp4gemm.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/fp4gemm)

# The tool finds the library next to it, wherever the prefix is.
if(FP4GEMM_SHARED)
  file(RELATIVE_PATH _fp4_bin_to_lib "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
  set_target_properties(fp4gemm_cli PROPERTIES INSTALL_RPATH "$ORIGIN/${_fp4_bin_to_lib}")
endif()
install(TARGETS fp4gemm_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# CMake package
install(EXPORT fp4gemm-targets NAMESPACE fp4gemm:: FILE fp4gemm-targets.cmake
        DESTINATION ${FP4GEMM_INSTALL_CMAKEDIR})
if(FP4GEMM_WITH_CUDA)
  get_filename_component(FP4GEMM_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
endif()
configure_package_config_file(cmake/fp4gemm-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/fp4gemm-config.cmake
  INSTALL_DESTINATION ${FP4GEMM_INSTALL_CMAKEDIR})
# 0.x: a minor release may break the ABI, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/fp4gemm-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fp4gemm-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/fp4gemm-config-version.cmake
        DESTINATION ${FP4GEMM_INSTALL_CMAKEDIR})

# pkg-config: paths relative to the .pc file's folder, so the tree can be moved.
set(_fp4_pcdir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FP4GEMM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _fp4_pc_up "/x/${_fp4_pcdir}" "/x")
  string(REGEX REPLACE "/$" "" _fp4_pc_up "${_fp4_pc_up}")
  set(FP4GEMM_PC_PREFIX "\${pcfiledir}/${_fp4_pc_up}")
endif()
foreach(_fp4_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_fp4_dir}}")
    set(FP4GEMM_PC_${_fp4_dir} "${CMAKE_INSTALL_${_fp4_dir}}")
  else()
    set(FP4GEMM_PC_${_fp4_dir} "\${prefix}/${CMAKE_INSTALL_${_fp4_dir}}")
  endif()
endforeach()
configure_file(cmake/fp4gemm.pc.in ${CMAKE_CURRENT_BINARY_DIR}/fp4gemm.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fp4gemm.pc DESTINATION ${_fp4_pcdir})
