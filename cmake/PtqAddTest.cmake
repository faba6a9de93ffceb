# ptq_add_test(NAME SOURCES ... DEPS ... LABELS ...): a GoogleTest binary registered with ctest.
include(GoogleTest)
function(ptq_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} ptq_testutil GTest::gtest GTest::gtest_main)
  ptq_warnings(${name})
  # A GTEST_SKIP (e.g. ../shared absent) shows as "skipped" in ctest, not as passed.
  gtest_discover_tests(${name} PROPERTIES LABELS "${T_LABELS}"
                       SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
                       DISCOVERY_TIMEOUT 60)
endfunction()
