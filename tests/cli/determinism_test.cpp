// Byte-identical output model (inline and external data), calibration table and JSON report for
// --threads 1 and 2 and for a repeated run, with --eval + --report on both ort-x86 and trt targets.
// (tests/cli/quantize_test.cpp covers methods and batch sizes; tests/report the report formats.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "ptq/core/npy.h"
#include "ptq/data/dataset.h"
#include "ptq/onnx_io/load.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;

const std::string kDemoDir = std::string(PTQ_SOURCE_DIR) + "/models/demo";

// Every output file of one run, read back and then removed so the next run writes the same paths.
std::vector<std::string> run_once(const test::TempDir& t, const std::string& target,
                                  const std::string& threads, bool external) {
  const std::vector<std::string> outputs = {t.file("q.onnx"), t.file("q.onnx.data"), t.file("t.json"),
                                            t.file("r.json")};
  std::vector<std::string> args = {kDemoDir + "/model.onnx", "-o", outputs[0], "--calib", kDemoDir + "/calib",
                                   "--method", "entropy", "--target", target, "--threads", threads,
                                   "--save-calib", outputs[2], "--eval", kDemoDir + "/eval", "--eval-count", "60",
                                   "--labels", kDemoDir + "/labels.tsv", "--sensitivity-samples", "8",
                                   "--report", outputs[3], "-q"};
  if (external) args.push_back("--external-data");
  const auto r = test::run_quantize(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> bytes;
  for (const std::string& p : outputs) {
    bytes.push_back(fs::exists(p) ? test::read_file(p) : "<missing>");
    fs::remove(p);
  }
  EXPECT_NE(bytes[0], "<missing>");
  EXPECT_EQ(bytes[1] != "<missing>", external) << "external data file presence";
  return bytes;
}

}  // namespace

TEST(Determinism, ModelTableAndReportAreByteIdenticalAcrossThreadsAndRuns) {
  test::TempDir t;
  const char* names[] = {"model", "external data", "calibration table", "JSON report"};
  for (const char* target : {"ort-x86", "trt"})
    for (bool external : {false, true}) {
      SCOPED_TRACE(std::string(target) + (external ? " --external-data" : ""));
      const auto one = run_once(t, target, "1", external);
      const auto two = run_once(t, target, "2", external);
      const auto again = run_once(t, target, "1", external);
      for (size_t k = 0; k < one.size(); ++k) {
        // (EXPECT_TRUE, not EXPECT_EQ: a failure must not print model files as text.)
        EXPECT_TRUE(one[k] == two[k]) << names[k] << " differs between --threads 1 and 2";
        EXPECT_TRUE(one[k] == again[k]) << names[k] << " differs between two identical runs";
      }
    }
}

// mobilenetv2 on real images, where calibration, evaluation and sensitivity really run on
// several workers: the model, table and report must not depend on --threads 1/2/3 nor on how
// the calibration samples are batched (the same images as [2,3,224,224] .npy files).
TEST(Determinism, MobileNetV2AcrossThreadsAndBatching) {
  PTQ_REQUIRE_SHARED();
  test::TempDir t;
  const std::string model = test::shared_dir() + "/models/mobilenetv2/model.onnx";
  const std::vector<std::string> images = test::shared_imagenet_images();
  ASSERT_GE(images.size(), 10u);
  fs::create_directories(t.file("calib"));
  fs::create_directories(t.file("eval"));
  for (size_t i = 0; i < 10; ++i)
    fs::create_symlink(images[i], t.file(std::string(i < 6 ? "calib/" : "eval/") + fs::path(images[i]).filename().string()));
  // The calibration images preprocessed by ptq itself, stacked two per .npy file.
  data::DataOptions opts;
  opts.preprocess.preset = data::PreprocessPreset::kTorchvision;
  const ir::Model m = onnx_io::load_model(model);
  data::Dataset ds = data::open_dataset(t.file("calib"), m.graph, opts);
  fs::create_directories(t.file("batched"));
  for (int b = 0; b < 3; ++b) {
    const Tensor x0 = ds.next()->inputs.at("input"), x1 = ds.next()->inputs.at("input");
    std::vector<uint8_t> bytes(x0.nbytes() * 2);
    std::memcpy(bytes.data(), x0.raw(), x0.nbytes());
    std::memcpy(bytes.data() + x0.nbytes(), x1.raw(), x1.nbytes());
    write_npy(t.file("batched/" + std::to_string(b) + ".npy"),
              Tensor::from_bytes(DType::kFloat, {2, 3, 224, 224}, bytes.data(), bytes.size()));
  }
  const auto run = [&](const std::string& calib, const std::string& threads) {
    const std::vector<std::string> outputs = {t.file("q.onnx"), t.file("t.json"), t.file("r.json")};
    std::vector<std::string> args = {model, "-o", outputs[0], "--calib", calib, "--eval", t.file("eval"),
                                     "--labels", test::shared_dir() + "/data/imagenet-labels.tsv",
                                     "--method", "percentile", "--threads", threads, "--save-calib", outputs[1],
                                     "--sensitivity-samples", "3", "--report", outputs[2], "-q"};
    args.insert(args.end(), {"--preprocess", "torchvision"});  // ignored for the .npy files
    const auto r = test::run_quantize(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> bytes;
    for (const std::string& p : outputs) {
      bytes.push_back(fs::exists(p) ? test::read_file(p) : "<missing>");
      fs::remove(p);
    }
    return bytes;
  };
  const auto one = run(t.file("calib"), "1");
  auto two = run(t.file("batched"), "2");
  // The report names the calibration folder it was given (the summary's inputs); everything
  // else must not depend on which form the same tensors came in.
  const std::string folder = "\"calibration data\": \"" + t.file("batched") + "\"";
  ASSERT_NE(two[2].find(folder), std::string::npos);
  two[2].replace(two[2].find(folder), folder.size(), "\"calibration data\": \"" + t.file("calib") + "\"");
  const auto three = run(t.file("calib"), "3");
  const char* names[] = {"model", "calibration table", "JSON report"};
  for (size_t k = 0; k < one.size(); ++k) {
    EXPECT_NE(one[k], "<missing>") << names[k];
    EXPECT_TRUE(one[k] == two[k]) << names[k] << " differs between --threads 1 on images and 2 on batched .npy";
    EXPECT_TRUE(one[k] == three[k]) << names[k] << " differs between --threads 1 and 3";
  }
}

}  // namespace ptq
