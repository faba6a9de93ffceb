// Test helpers: shared data location, temp dirs, running the quantize binary, IR comparison.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "ptq/ir/model.h"

namespace ptq::test {

// ../shared (models and data), or "" when absent (a user's fresh clone): tests then skip.
std::string shared_dir();
#define PTQ_REQUIRE_SHARED()                                                             \
  do {                                                                                   \
    if (::ptq::test::shared_dir().empty())                                               \
      GTEST_SKIP() << "../shared (models and data) is not beside the repository; skipped"; \
  } while (0)

// Every model directory under shared/models with its model.onnx, sorted.
std::vector<std::string> shared_models();

// The .jpg files of shared/data/imagenet-sample, sorted by name (full paths).
std::vector<std::string> shared_imagenet_images();

// A fresh directory removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the quantize binary (PTQ_QUANTIZE) with arguments, capturing stdout and stderr.
CliResult run_quantize(const std::vector<std::string>& args);

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// A float tensor of uniform values in [lo, hi) from a fixed seed.
Tensor random_tensor(Dims dims, uint32_t seed, float lo = -1.f, float hi = 1.f);

// Structural equality of two graphs: names, ops, attributes, types, bit-identical tensors.
// Returns "" when equal, otherwise the first difference.
std::string diff_graphs(const ir::Graph& a, const ir::Graph& b);

}  // namespace ptq::test
