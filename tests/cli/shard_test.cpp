// `quantize calibrate --shard I/N` + `quantize merge-stats` through the binary: the merged table and
// model are byte-identical to one run, for every method; bad shards and flags fail clearly.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "ptq/core/npy.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;

// Single run vs N shards merged (shards given to merge-stats in reverse order): table and model bytes.
void expect_shards_match_single_run(const test::TempDir& tmp, const std::string& model, const std::string& calib,
                                    const std::vector<std::string>& flags, int shards) {
  const auto run = [](std::vector<std::string> args, const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("-q");
    const test::CliResult r = test::run_quantize(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  run({model, "--calib", calib, "-o", tmp.file("single.onnx"), "--save-calib", tmp.file("single.json")}, flags);
  std::vector<std::string> merge = {"merge-stats"};
  for (int i = shards; i >= 1; --i) {
    const std::string part = tmp.file("part" + std::to_string(i) + ".json");
    run({"calibrate", model, "--calib", calib, "--shard", std::to_string(i) + "/" + std::to_string(shards),
         "--save-stats", part, "--threads", "1"},
        flags);
    merge.push_back(part);
  }
  merge.insert(merge.end(), {"-o", tmp.file("merged.json")});
  run(merge, {});
  // The merged table has the ranges; the final command measures bias correction and the placement
  // search on the first calibration rows, as the single run did, and records them in its table.
  run({model, "--load-calib", tmp.file("merged.json"), "--calib", calib, "-o", tmp.file("merged.onnx"), "--save-calib",
       tmp.file("final.json")},
      flags);
  const std::string a = test::read_file(tmp.file("single.json")), b = test::read_file(tmp.file("final.json"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b) << "the merged table (with the final command's measurements) differs from one run";
  EXPECT_TRUE(test::read_file(tmp.file("single.onnx")) == test::read_file(tmp.file("merged.onnx")))
      << "the model from the merged table differs from one run";
  for (const auto& e : fs::directory_iterator(tmp.path()))
    if (e.is_regular_file()) fs::remove(e.path());
}

std::string demo_model() { return std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx"; }

std::string write_digits(const test::TempDir& tmp, int n, int per_file) {
  const fs::path dir = tmp.path() / "digits";
  fs::create_directories(dir);
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> d(0.f, 16.f);
  for (int f = 0; f < n / per_file; ++f) {
    std::vector<float> v(static_cast<size_t>(per_file) * 64);
    for (float& x : v) x = d(rng) * (f % 3 == 0 ? 0.5f : 1.f);
    char name[32];
    std::snprintf(name, sizeof(name), "%04d.npy", f);
    write_npy((dir / name).string(), Tensor::from_vector<float>({per_file, 1, 8, 8}, v));
  }
  return dir.string();
}

}  // namespace

TEST(Shards, MergedShardsEqualOneRunForEveryMethod) {
  test::TempDir data, tmp;
  const std::string digits = write_digits(data, 22, 2);  // 11 files of 2: shards of 3 and 2 files
  for (const char* method : {"minmax", "percentile", "entropy", "mse"}) {
    SCOPED_TRACE(method);
    expect_shards_match_single_run(tmp, demo_model(), digits, {"--method", method}, 4);
  }
  expect_shards_match_single_run(tmp, demo_model(), digits, {"--method", "minmax", "--minmax-average"}, 3);
  expect_shards_match_single_run(tmp, demo_model(), digits, {"--method", "percentile", "--target", "trt"}, 2);
}

// The acceptance: shards 1..4 merged == single run on mobilenetv2, every method.
TEST(Shards, MobileNetV2FourShardsEqualOneRun) {
  PTQ_REQUIRE_SHARED();
  test::TempDir data, tmp;
  const std::vector<std::string> images = test::shared_imagenet_images();
  ASSERT_GE(images.size(), 10u);
  fs::create_directories(data.file("calib"));
  for (size_t i = 0; i < 10; ++i)
    fs::create_symlink(images[i], data.file("calib/" + fs::path(images[i]).filename().string()));
  const std::string model = test::shared_dir() + "/models/mobilenetv2/model.onnx";
  for (const char* method : {"minmax", "percentile", "entropy", "mse"}) {
    SCOPED_TRACE(method);
    expect_shards_match_single_run(tmp, model, data.file("calib"), {"--method", method, "--preprocess", "torchvision"}, 4);
  }
}

TEST(Shards, BadShardsAndFlagsFailClearly) {
  test::TempDir data, tmp;
  const std::string digits = write_digits(data, 6, 1);
  const auto run = [](const std::vector<std::string>& args) { return test::run_quantize(args); };
  const std::string m = demo_model();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    const char* message;
  };
  const std::string part = tmp.file("p.json");
  const std::vector<Case> cases = {
      {{"calibrate", m, "--calib", digits, "--shard", "0/2", "--save-stats", part}, 1, "--shard: '0/2' needs 1 <= I <= N"},
      {{"calibrate", m, "--calib", digits, "--shard", "half", "--save-stats", part}, 1, "--shard: 'half' is not I/N"},
      {{"calibrate", m, "--calib", digits, "--shard", "7/9", "--save-stats", part}, 1, "has only 6 samples"},
      {{"calibrate", m, "--calib", digits}, 1, "--save-stats"},
      {{"calibrate", m, "--calib", digits, "--shard", "1/2", "--save-calib", part}, 1, "merge-stats"},
      {{"calibrate", m, "--shard", "1/2", "--save-stats", part}, 1, "--calib"},
      {{"calibrate", m, "--calib", digits, "--save-stats", digits + "/0000.npy"}, 1, "0000.npy"},
      {{"merge-stats", m, "-o", tmp.file("t.json")}, 5, "model.onnx: not valid JSON"},
      {{"merge-stats", "-o", tmp.file("t.json")}, 1, "parts"},
  };
  for (const Case& c : cases) {
    const test::CliResult r = run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.message << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(part)) << c.message;
    EXPECT_FALSE(fs::exists(tmp.file("t.json"))) << c.message;
  }
  // A missing shard, and a shard of another model (the table would not fit it).
  ASSERT_EQ(run({"calibrate", m, "--calib", digits, "--shard", "1/2", "--save-stats", tmp.file("a1.json"), "-q"}).exit_code, 0);
  const test::CliResult missing = run({"merge-stats", tmp.file("a1.json"), "-o", tmp.file("t.json")});
  EXPECT_EQ(missing.exit_code, 5);
  EXPECT_NE(missing.err.find("shard 2/2 is missing"), std::string::npos) << missing.err;
  std::string other = test::read_file(tmp.file("a1.json"));
  other.replace(other.find("\"model_sha256\": \"") + 17, 4, "0000");
  other.replace(other.find("\"index\": 1"), 10, "\"index\": 2");
  test::write_file(tmp.file("a2.json"), other);
  const test::CliResult mixed = run({"merge-stats", tmp.file("a1.json"), tmp.file("a2.json"), "-o", tmp.file("t.json")});
  EXPECT_EQ(mixed.exit_code, 5);
  EXPECT_NE(mixed.err.find("a2.json: made for another model"), std::string::npos) << mixed.err;
  EXPECT_FALSE(fs::exists(tmp.file("t.json")));
  // The final command without the shards' --target: refused, not a silently different model.
  ASSERT_EQ(run({"calibrate", m, "--calib", digits, "--target", "trt", "--save-calib", tmp.file("trt.json"), "-q"}).exit_code, 0);
  const test::CliResult forgot = run({m, "--load-calib", tmp.file("trt.json"), "-o", tmp.file("x.onnx")});
  EXPECT_EQ(forgot.exit_code, 1) << forgot.err;
  EXPECT_NE(forgot.err.find("calibrated for int8 symmetric activations, this run emits uint8 asymmetric"), std::string::npos)
      << forgot.err;
  EXPECT_FALSE(fs::exists(tmp.file("x.onnx")));
  EXPECT_EQ(run({m, "--load-calib", tmp.file("trt.json"), "--target", "trt", "-o", tmp.file("x.onnx"), "-q"}).exit_code, 0);
}

// SmoothQuant needs all samples before ranges: refused per shard, with the way out named.
TEST(Shards, TransformersNeedNoSmoothQuantToShard) {
  PTQ_REQUIRE_SHARED();
  test::TempDir tmp;
  const std::string model = test::shared_dir() + "/models/minilm-l6/model.onnx";
  const std::string calib = test::shared_dir() + "/data/sentences/calib";
  const test::CliResult r = test::run_quantize(
      {"calibrate", model, "--calib", calib, "--shard", "1/2", "--save-stats", tmp.file("p.json"), "--calib-count", "4"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--no-smoothquant"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("p.json")));
}

}  // namespace ptq
