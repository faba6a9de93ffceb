# Every dependency is a Debian package found with find_package (tools/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)            # libonnx-dev: protobuf classes, checker, parser
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(CLI11 REQUIRED)           # libcli11-dev
find_package(spdlog REQUIRED)          # libspdlog-dev
find_package(nlohmann_json 3 REQUIRED) # nlohmann-json3-dev
find_path(STB_INCLUDE_DIR stb/stb_image.h PATHS /usr/include REQUIRED)  # libstb-dev
if(PTQ_BUILD_TESTS)
  find_package(GTest)                  # libgtest-dev (tools/setup.sh --tests)
  if(NOT GTest_FOUND)
    message(STATUS "GoogleTest not found: the test suite is not built (install it: bash tools/setup.sh --tests)")
    set(PTQ_BUILD_TESTS OFF)
  endif()
endif()
find_package(ZLIB REQUIRED)            # zlib1g-dev: deflated .npz members
find_package(JPEG REQUIRED)            # libjpeg62-turbo-dev: JPEG decoded as Pillow decodes it
find_library(STB_LIBRARY stb REQUIRED) # libstb-dev ships the stb_image/stb_image_write implementation
