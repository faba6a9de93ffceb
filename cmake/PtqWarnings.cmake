# Per-target warnings (-Wshadow=local is GCC-only); PTQ_WERROR=ON turns them into errors.
# -Wno-missing-field-initializers: every field of the option and range structs has a default
# member initializer, so `{lo, hi}` and `{.threads = 1}` leave nothing uninitialized.
function(ptq_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers
                         $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                         $<$<BOOL:${PTQ_WERROR}>:-Werror>)
endfunction()

# ptq_module(NAME SOURCES ... DEPS ...): one static library per pipeline stage.
function(ptq_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(ptq_${name} STATIC ${M_SOURCES})
  target_include_directories(ptq_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(ptq_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  ptq_warnings(ptq_${name})
  set_target_properties(ptq_${name} PROPERTIES UNITY_BUILD ${PTQ_UNITY_BUILD} UNITY_BUILD_BATCH_SIZE 16)
endfunction()
