// `quantize --eval ... --report` and `quantize compare` end to end on the demo model.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "report_fixtures.h"
#include "schema_check.h"

namespace ptq::test {
namespace {

std::vector<std::string> eval_flags(const TempDir& t) {
  return {"--eval", t.file("eval"), "--labels", t.file("labels.tsv"), "--sensitivity-samples", "8"};
}

TEST(ReportCli, EvalWritesAllFormatsAndJsonMatchesSchema) {
  TempDir t;
  std::vector<std::string> flags = eval_flags(t);
  for (const char* f : {"--report", "r.json", "--report-html", "r.html", "--report-md", "r.md"}) flags.push_back(f);
  for (size_t i = 1; i < flags.size(); i += 2)
    if (flags[i - 1].rfind("--report", 0) == 0) flags[i] = t.file(flags[i]);
  const CliResult r = quantize_demo(t, flags);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("top-1 agreement"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fp32 top-1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("PASSED"), std::string::npos);  // no budget, no gate line
  const nlohmann::json j = read_json(t.file("r.json"));
  EXPECT_EQ(check_schema(j, read_json(PTQ_REPORT_SCHEMA)), "");
  EXPECT_EQ(j["data"]["samples"], 40);
  EXPECT_EQ(j["data"]["is_calibration_data"], false);
  EXPECT_EQ(j["task"], "classify");
  EXPECT_EQ(j["classification"]["labeled"], 40);
  EXPECT_TRUE(j["classification"]["fp32_top1"].is_number());
  EXPECT_TRUE(j["classification"]["int8_top1"].is_number());
  EXPECT_EQ(j["sensitivity"]["samples"], 8);
  EXPECT_EQ(j["layer_samples"], 40);  // the default 128, capped by the data
  ASSERT_EQ(j["layers"].size(), 5u);  // conv1, pool1, conv2, pool2, fc
  for (const auto& l : j["layers"]) {
    EXPECT_TRUE(l["measured"].get<bool>()) << l.dump();
    EXPECT_TRUE(l["sqnr_db"].is_number()) << l.dump();
    EXPECT_TRUE(l["sensitivity_rank"].is_number()) << l.dump();
  }
  const std::string html = read_file(t.file("r.html"));
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(read_file(t.file("r.md")).find("| rank | node |"), std::string::npos);
}

TEST(ReportCli, ReportsAreByteIdenticalForAnyThreadCount) {
  TempDir t;
  std::vector<std::string> out[2];
  for (int k = 0; k < 2; ++k) {
    const std::string n = std::to_string(k);
    std::vector<std::string> flags = eval_flags(t);
    const std::vector<std::string> more = {"--threads", k ? "3" : "1", "--report", t.file("r" + n + ".json"),
                                           "--report-html", t.file("r" + n + ".html"), "--report-md",
                                           t.file("r" + n + ".md")};
    flags.insert(flags.end(), more.begin(), more.end());
    const CliResult r = quantize_demo(t, flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* ext : {".json", ".html", ".md"}) out[k].push_back(read_file(t.file("r" + n + ext)));
  }
  EXPECT_EQ(out[0], out[1]);
}

// --layer-samples N accumulates the layers' SQNR over the first N samples only: the figures
// equal those of a report evaluated on exactly those samples, while the output figures still
// cover every sample.
TEST(ReportCli, LayerSqnrOverTheFirstLayerSamples) {
  TempDir t;
  nlohmann::json j[2];
  for (int k = 0; k < 2; ++k) {
    std::vector<std::string> flags = eval_flags(t);
    const std::string out = t.file("l" + std::to_string(k) + ".json");
    for (const std::string& f : std::vector<std::string>{"--report", out, "--layer-samples", k ? "12" : "0"})
      flags.push_back(f);
    if (k == 0) flags.insert(flags.end(), {"--eval-count", "12"});
    const CliResult r = quantize_demo(t, flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    j[k] = read_json(out);
  }
  EXPECT_EQ(j[0]["data"]["samples"], 12);
  EXPECT_EQ(j[1]["data"]["samples"], 40);
  EXPECT_EQ(j[0]["layer_samples"], 12);
  EXPECT_EQ(j[1]["layer_samples"], 12);
  ASSERT_EQ(j[0]["layers"].size(), j[1]["layers"].size());
  for (size_t i = 0; i < j[0]["layers"].size(); ++i) {
    EXPECT_TRUE(j[1]["layers"][i]["sqnr_db"].is_number()) << j[1]["layers"][i].dump();
    EXPECT_EQ(j[0]["layers"][i]["sqnr_db"], j[1]["layers"][i]["sqnr_db"]) << i;
  }
  EXPECT_NE(j[0]["outputs"][0]["sqnr_db"], j[1]["outputs"][0]["sqnr_db"]);  // 12 vs 40 samples
}

TEST(ReportCli, BadLayerSamplesIsAUsageErrorAndWritesNothing) {
  for (const char* bad : {"-3", "abc", "1e13"}) {
    TempDir t;
    std::vector<std::string> flags = eval_flags(t);
    flags.insert(flags.end(), {"--layer-samples", bad});
    const CliResult r = quantize_demo(t, flags);
    EXPECT_EQ(r.exit_code, 1) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--layer-samples"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(t.file("int8.onnx"))) << bad;
  }
}

TEST(ReportCli, GatePrintsPassedOrFailedLastAndExitsFour) {
  TempDir t;
  std::vector<std::string> ok = eval_flags(t);
  for (const char* f : {"--min-sqnr", "5", "--max-drop", "50"}) ok.push_back(f);
  CliResult r = quantize_demo(t, ok);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "PASSED");
  std::vector<std::string> bad = eval_flags(t);
  for (const char* f : {"--min-sqnr", "200", "--min-agreement", "100", "--report"}) bad.push_back(f);
  bad.push_back(t.file("r.json"));
  std::filesystem::remove(t.file("int8.onnx"));
  r = quantize_demo(t, bad);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(last_line(r.out).rfind("FAILED: ", 0), 0u) << r.out;
  EXPECT_NE(last_line(r.out).find("output SQNR "), std::string::npos) << r.out;
  EXPECT_NE(last_line(r.out).find("dB < 200.00 dB required"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(t.file("int8.onnx")));  // still written
  const nlohmann::json j = read_json(t.file("r.json"));
  EXPECT_EQ(j["gate"]["passed"], false);
  EXPECT_EQ(j["gate"]["result"].get<std::string>().rfind("FAILED", 0), 0u);
}

TEST(ReportCli, WithoutEvalWarnsAndUsesCalibrationData) {
  TempDir t;
  const CliResult r = quantize_demo(t, {"--report", t.file("r.json"), "--sensitivity-samples", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("uses the calibration data"), std::string::npos) << r.err;
  const nlohmann::json j = read_json(t.file("r.json"));
  EXPECT_EQ(j["data"]["is_calibration_data"], true);
  EXPECT_EQ(j["data"]["samples"], 24);
}

TEST(ReportCli, BudgetsThatCannotBeMeasuredAreUsageErrors) {
  TempDir t;
  CliResult r = quantize_demo(t, {"--eval", t.file("eval"), "--max-drop", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--max-drop needs --labels"), std::string::npos) << r.err;
  r = quantize_demo(t, {"--eval", t.file("eval"), "--auto-fallback"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--auto-fallback needs a budget"), std::string::npos) << r.err;
  r = quantize_demo(t, {"--eval", t.file("eval"), "--task", "generic", "--min-agreement", "90"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
}

// A hand-edited calibration table gives the graph input a tiny range: conv1 (its only reader)
// must come out most sensitive, and --auto-fallback must return it to fp32 and pass.
TEST(ReportCli, BrokenLayerRanksFirstAndAutoFallbackRestoresIt) {
  TempDir t;
  CliResult r = quantize_demo(t, {"--save-calib", t.file("cal.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json cal = read_json(t.file("cal.json"));
  ASSERT_TRUE(cal["tensors"].contains("input")) << cal.dump();
  cal["tensors"]["input"] = {{"min", 0.0}, {"max", 0.02}};
  write_file(t.file("broken.json"), cal.dump(2));
  const std::vector<std::string> base = {PTQ_DEMO_MODEL, "--load-calib", t.file("broken.json"), "-o", t.file("b.onnx"),
                                         "--eval", t.file("eval"), "--labels", t.file("labels.tsv"),
                                         "--sensitivity-samples", "8", "--min-sqnr", "25"};
  std::vector<std::string> args = base;
  for (const std::string& f : {std::string("--report"), t.file("broken.json.report")}) args.push_back(f);
  r = run_quantize(args);
  EXPECT_EQ(r.exit_code, 4) << r.err << r.out;
  nlohmann::json j = read_json(t.file("broken.json.report"));
  std::string first;
  for (const auto& l : j["layers"])
    if (l["sensitivity_rank"] == 1) first = l["node"];
  EXPECT_EQ(first, "conv1") << j["layers"].dump(1);
  const double broken_sqnr = j["min_output_sqnr_db"];
  EXPECT_LT(broken_sqnr, 25);

  args = base;
  for (const std::string& f : {std::string("--auto-fallback"), std::string("--max-fallback"), std::string("3"),
                               std::string("--report"), t.file("fixed.json")})
    args.push_back(f);
  r = run_quantize(args);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(last_line(r.out), "PASSED");
  j = read_json(t.file("fixed.json"));
  EXPECT_EQ(check_schema(j, read_json(PTQ_REPORT_SCHEMA)), "");
  ASSERT_GE(j["fallback"]["steps"].size(), 1u);
  EXPECT_EQ(j["fallback"]["kept_fp32"][0], "conv1");
  EXPECT_EQ(j["fallback"]["steps"].back()["passed"], true);
  EXPECT_GT(j["fallback"]["steps"][0]["sqnr_gain_db"].get<double>(), 0.0);
  EXPECT_GE(j["min_output_sqnr_db"].get<double>(), 25.0);
  EXPECT_EQ(j["gate"]["passed"], true);
  // The written model is the one after fallback: comparing it with fp32 gives the same SQNR.
  r = run_quantize({"compare", PTQ_DEMO_MODEL, t.file("b.onnx"), "--data", t.file("eval"), "--report", t.file("c.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(read_json(t.file("c.json"))["min_output_sqnr_db"].get<double>(), j["min_output_sqnr_db"].get<double>(), 1e-3);
}

TEST(ReportCli, CompareTwoModels) {
  TempDir t;
  ASSERT_EQ(quantize_demo(t, {}).exit_code, 0);
  const CliResult r = run_quantize({"compare", PTQ_DEMO_MODEL, t.file("int8.onnx"), "--data", t.file("eval"), "--labels",
                                    t.file("labels.tsv"), "--report", t.file("c.json"), "--report-html",
                                    t.file("c.html"), "--min-agreement", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "PASSED");
  const nlohmann::json j = read_json(t.file("c.json"));
  EXPECT_EQ(check_schema(j, read_json(PTQ_REPORT_SCHEMA)), "");
  EXPECT_EQ(j["command"], "compare");
  EXPECT_EQ(j["data"]["samples"], 40);
  EXPECT_FALSE(j["layers"].empty());  // intermediate tensors matched by name
  EXPECT_TRUE(j["classification"]["int8_top1"].is_number());
  // A model against itself: identical outputs.
  const CliResult same = run_quantize({"compare", PTQ_DEMO_MODEL, PTQ_DEMO_MODEL, "--data", t.file("eval"), "--report",
                                       t.file("s.json")});
  ASSERT_EQ(same.exit_code, 0) << same.err;
  const nlohmann::json s = read_json(t.file("s.json"));
  EXPECT_TRUE(s["outputs"][0]["sqnr_db"].is_null());
  EXPECT_EQ(s["classification"]["top1_agreement"], 100.0);
}

}  // namespace
}  // namespace ptq::test

namespace ptq::test {
namespace {

// Issue 15: a setup at chance (wrong preprocessing or labels) must never print PASSED: the
// gate fails with a sanity line naming the cause and the CLI exits 5, whatever the budget.
TEST(ReportCli, FpThirtyTwoAtChanceFailsTheSanityCheckWithExitFive) {
  TempDir t;
  quantize_demo(t, {});  // writes calib, eval and labels
  std::istringstream in(read_file(t.file("labels.tsv")));
  std::string line, shifted;
  std::getline(in, line);
  shifted = line + "\n";
  while (std::getline(in, line)) {
    const size_t tab = line.find('\t');
    shifted += line.substr(0, tab + 1) + std::to_string((std::stoi(line.substr(tab + 1)) + 1) % 10) + "\n";
  }
  write_file(t.file("labels.tsv"), shifted);  // every label now misses the fp32 answer
  std::vector<std::string> flags = eval_flags(t);
  for (const char* f : {"--max-drop", "100", "--report"}) flags.push_back(f);
  flags.push_back(t.file("r.json"));
  const CliResult r = quantize_demo(t, flags);
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_EQ(r.out.find("PASSED"), std::string::npos) << r.out;
  EXPECT_EQ(last_line(r.out).rfind("FAILED: sanity: fp32 top-1 0.00% (0/40) is at chance level", 0), 0u) << r.out;
  const nlohmann::json j = read_json(t.file("r.json"));
  EXPECT_EQ(j["gate"]["passed"], false);
  EXPECT_EQ(j["gate"]["sanity"].size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(t.file("int8.onnx")));  // the model is still written
}

}  // namespace
}  // namespace ptq::test
