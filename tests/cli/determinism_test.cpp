// Byte-identical output model (inline and external data), calibration table and JSON report for
// --threads 1 and 2 and for a repeated run, with --eval + --report on both ort-x86 and trt targets.
// (tests/cli/quantize_test.cpp covers methods and batch sizes; tests/report the report formats.)
#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace ptq
