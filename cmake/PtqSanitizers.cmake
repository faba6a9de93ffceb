# PTQ_SANITIZE: ASan + UBSan for every target; PTQ_FUZZ (clang): also libFuzzer coverage, tests/fuzz.
option(PTQ_SANITIZE "Build everything with -fsanitize=address,undefined" OFF)
option(PTQ_FUZZ "Build the libFuzzer targets in tests/fuzz (clang only; implies sanitizers)" OFF)
if(PTQ_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "PTQ_FUZZ needs clang (CXX=clang++), not ${CMAKE_CXX_COMPILER_ID}")
endif()
if(PTQ_SANITIZE OR PTQ_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()
if(PTQ_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
