# Installable library (ptq::ptq via find_package(ptq)), the `quantize` binary, and a .deb via CPack.
#
# Why one shared library: the modules are static libraries whose private dependencies (onnx,
# protobuf, Eigen, spdlog, nlohmann_json, zlib, libjpeg, stb, Threads) would all become link
# dependencies of a consumer, so ptqConfig.cmake would have to find_dependency every one of them
# and a consumer would need all their -dev packages. libptq.so holds every module (linked with
# --whole-archive) and links those libraries itself: a consumer needs only ptq's headers (ptq/ and
# std headers only) and libptq.so, the .deb's Depends are the runtime libraries dpkg-shlibdeps
# finds, and protobuf/Eigen versions never meet the consumer's own. For this the modules are
# compiled as position-independent code (-fno-semantic-interposition keeps inlining as in PIE).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PTQ_MODULES core ir onnx_io quant data runtime passes emit calib report pipeline)
foreach(m IN LISTS PTQ_MODULES)
  set_target_properties(ptq_${m} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(ptq_${m} PRIVATE -fno-semantic-interposition)
  list(APPEND PTQ_MODULE_TARGETS ptq_${m})
endforeach()

# ptq::ptq = every module (the pipeline and all it depends on). SOVERSION 0.1: no ABI promise yet.
add_library(ptq SHARED ${PROJECT_SOURCE_DIR}/src/ptq_shared.cpp)
add_library(ptq::ptq ALIAS ptq)
target_link_libraries(ptq PRIVATE "-Wl,--whole-archive" ${PTQ_MODULE_TARGETS} "-Wl,--no-whole-archive")
target_include_directories(ptq PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(ptq PUBLIC cxx_std_20)
set_target_properties(ptq PROPERTIES VERSION ${PROJECT_VERSION}
                      SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
                      EXPORT_NAME ptq)
# Sanitizer/fuzz builds exist for the test suite, whose tests link the static modules: no libptq.so.
if(PTQ_SANITIZE OR PTQ_FUZZ)
  set_target_properties(ptq PROPERTIES EXCLUDE_FROM_ALL ON)
endif()

install(TARGETS ptq EXPORT ptqTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS quantize RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ptq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(PTQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ptq)
install(EXPORT ptqTargets NAMESPACE ptq:: DESTINATION ${PTQ_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ptqConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ptqConfig.cmake INSTALL_DESTINATION ${PTQ_CMAKE_DIR})
# 0.x: a minor release may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ptqConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ptqConfig.cmake ${PROJECT_BINARY_DIR}/ptqConfigVersion.cmake
        DESTINATION ${PTQ_CMAKE_DIR})

# `cpack -G DEB` in the build folder: ptq_<version>_<arch>.deb (docs/packaging.md). Depends come
# from dpkg-shlibdeps on /usr/bin/quantize and libptq.so. Build it with -DPTQ_RUNTIME_NATIVE=OFF
# for machines other than the build machine.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ptq)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "post-training int8 quantization for ONNX models")
set(CPACK_PACKAGE_CONTACT "ptq maintainers <ptq@localhost>")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # shlibs file + ldconfig trigger for libptq.so
set(CPACK_STRIP_FILES ON)
include(CPack)
