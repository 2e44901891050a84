# Helpers that give every module the same flags: one library per module, tests beside it.
set(SQSRELAY_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast
    -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
# GCC 12 reports Asio's awaitable frame allocator (operator new/delete pair in
# boost/asio/impl/awaitable.hpp) as mismatched when coroutines are inlined: a false positive.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND SQSRELAY_WARNINGS -Wno-mismatched-new-delete)
endif()
if(SQSRELAY_WERROR)
  list(APPEND SQSRELAY_WARNINGS -Werror)
endif()

function(sqsrelay_target_flags target)
  target_compile_options(${target} PRIVATE ${SQSRELAY_WARNINGS})
  target_compile_definitions(${target} PUBLIC BOOST_ASIO_NO_DEPRECATED)
endfunction()

# sqsrelay_library(NAME SOURCES ... DEPS ...): a module library `sqsrelay_<NAME>`.
function(sqsrelay_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(sqsrelay_${name} STATIC ${ARG_SOURCES})
  # Installed, the public header (include/sqsrelay/) is all a consumer sees: the module
  # headers under src/ are internal, so they are only on the build tree's include path.
  target_include_directories(sqsrelay_${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
                             $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                             $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(sqsrelay_${name} PUBLIC ${ARG_DEPS})
  sqsrelay_target_flags(sqsrelay_${name})
endfunction()

# sqsrelay_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
function(sqsrelay_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(NOT SQSRELAY_TESTS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  sqsrelay_target_flags(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES ENVIRONMENT "SQSRELAY_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
