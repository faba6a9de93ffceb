// Report on real models from ../shared: mobilenetv2 gate runs and compare with the zoo's int8 file.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "report_fixtures.h"
#include "schema_check.h"

namespace ptq::test {
namespace {

namespace fs = std::filesystem;

// List files: calibration = sorted index % 10 == 0 (100 files); evaluation = the first `eval_n`
// of the other 900 (the full 900 run is the bench command in docs/report-schema.md).
void write_imagenet_lists(const TempDir& t, size_t eval_n) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(shared_dir() + "/data/imagenet-sample"))
    if (e.path().extension() == ".jpg") files.push_back(fs::absolute(e.path()).string());
  std::sort(files.begin(), files.end());
  std::string calib, eval;
  size_t n = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (i % 10 == 0) calib += files[i] + "\n";
    else if (n++ < eval_n) eval += files[i] + "\n";
  }
  write_file(t.file("calib.txt"), calib);
  write_file(t.file("eval.txt"), eval);
}

TEST(ReportShared, MobilenetGatePassesAndFails) {
  PTQ_REQUIRE_SHARED();
  TempDir t;
  write_imagenet_lists(t, 40);
  const std::string model = shared_dir() + "/models/mobilenetv2/model.onnx";
  const std::string labels = shared_dir() + "/data/imagenet-labels.tsv";
  CliResult r = run_quantize({model, "--calib", t.file("calib.txt"), "--preprocess", "torchvision", "-o",
                              t.file("int8.onnx"), "--eval", t.file("eval.txt"), "--labels", labels, "--max-drop",
                              "50", "--save-calib", t.file("cal.json"), "--sensitivity-samples", "2", "--report",
                              t.file("r.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "PASSED");
  const nlohmann::json j = read_json(t.file("r.json"));
  EXPECT_EQ(check_schema(j, read_json(PTQ_REPORT_SCHEMA)), "");
  const auto& c = j["classification"];
  EXPECT_EQ(c["labeled"], 40);
  EXPECT_EQ(c["classes"], 1000);
  for (const char* k : {"fp32_top1", "fp32_top5", "int8_top1", "int8_top5", "top1_agreement", "top5_agreement"})
    EXPECT_TRUE(c[k].is_number()) << k;
  EXPECT_GT(c["fp32_top1"].get<double>(), 50.0);  // the README measures 82.7 % on all 1000
  EXPECT_GT(c["int8_top1"].get<double>(), 40.0);
  EXPECT_EQ(j["layers"].size(), 54u);  // the 10 residual Adds stay fp32 (--elementwise)

  r = run_quantize({model, "--load-calib", t.file("cal.json"), "--preprocess", "torchvision", "-o", t.file("int8b.onnx"),
                    "--eval", t.file("eval.txt"), "--labels", labels, "--max-drop", "0", "--min-agreement", "100",
                    "--sensitivity-samples", "0"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(last_line(r.out).rfind("FAILED: ", 0), 0u) << r.out;
  EXPECT_TRUE(fs::exists(t.file("int8b.onnx")));
}

TEST(ReportShared, CompareWithZooQOperatorModel) {
  PTQ_REQUIRE_SHARED();
  TempDir t;
  write_imagenet_lists(t, 4);
  const CliResult r = run_quantize({"compare", shared_dir() + "/models/mobilenetv2/model.onnx",
                                    shared_dir() + "/models/mobilenetv2/zoo-int8-qoperator.onnx", "--data",
                                    t.file("eval.txt"), "--preprocess", "torchvision", "--report", t.file("c.json")});
  if (r.exit_code == 3)
    GTEST_SKIP() << "the reference runtime has no QOperator kernels yet (QLinearConv ...): " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = read_json(t.file("c.json"));
  EXPECT_GT(j["classification"]["top1_agreement"].get<double>(), 50.0);
}

}  // namespace
}  // namespace ptq::test
