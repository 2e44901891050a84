# `cmake --install`: the binaries, the public header and the C++ library as a CMake package.
#
#   cmake --install build/release --prefix /opt/sqsrelay
#   # a consumer's CMakeLists.txt (examples/CMakeLists.txt builds this way on its own):
#   find_package(sqsrelay REQUIRED)            # CMAKE_PREFIX_PATH=/opt/sqsrelay
#   target_link_libraries(app PRIVATE sqsrelay::sqsrelay)
#
# sqsrelay::sqsrelay is the producer (include/sqsrelay/producer.h). It links the module
# libraries below, installed as static archives; their headers stay internal.
include(CMakePackageConfigHelpers)

# The producer and everything it links: CMake refuses to generate if one is missing here.
set(SQSRELAY_EXPORTED_MODULES base aws aws_credentials http sqs sqs_client pipeline pipeline_sqs)

add_library(sqsrelay_library INTERFACE)
target_link_libraries(sqsrelay_library INTERFACE sqsrelay_pipeline_sqs)
set_target_properties(sqsrelay_library PROPERTIES EXPORT_NAME sqsrelay)
add_library(sqsrelay::sqsrelay ALIAS sqsrelay_library)

set(exported sqsrelay_library)
foreach(m IN LISTS SQSRELAY_EXPORTED_MODULES)
  list(APPEND exported sqsrelay_${m})
endforeach()
install(TARGETS ${exported} EXPORT sqsrelayTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS sqsrelay sqsrelay-spool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sqsrelay
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/examples/producer_example.cpp
        ${PROJECT_SOURCE_DIR}/examples/CMakeLists.txt
        DESTINATION ${CMAKE_INSTALL_DATADIR}/sqsrelay/examples)

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/sqsrelay)
install(EXPORT sqsrelayTargets NAMESPACE sqsrelay:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sqsrelayConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/sqsrelayConfig.cmake
                              INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sqsrelayConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sqsrelayConfig.cmake
        ${PROJECT_BINARY_DIR}/sqsrelayConfigVersion.cmake DESTINATION ${config_dir})
