// `quantize inspect` on the real models: counts, histogram keys, text and JSON output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "testutil.h"

namespace ptq {

using nlohmann::json;

TEST(Inspect, MobileNetV2Counts) {
  PTQ_REQUIRE_SHARED();
  const auto r = test::run_quantize(
      {"inspect", test::shared_dir() + "/models/mobilenetv2/model.onnx", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["node_count"], 105);
  EXPECT_EQ(j["op_histogram"]["Conv"], 52);
  EXPECT_EQ(j["inputs"][0]["name"], "input");
  EXPECT_EQ(j["inputs"][0]["shape"][1], 3);
  EXPECT_TRUE(j["inputs"][0]["shape"][0].is_string());  // symbolic batch dim kept by name
  EXPECT_GT(j["parameter_count"].get<int64_t>(), 3'000'000);
}

TEST(Inspect, EverySharedModel) {
  PTQ_REQUIRE_SHARED();
  for (const std::string& path : test::shared_models()) {
    SCOPED_TRACE(path);
    const auto r = test::run_quantize({"inspect", path, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_GT(j["node_count"].get<int>(), 0);
    const auto text = test::run_quantize({"inspect", path});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("nodes:"), std::string::npos);
  }
}

TEST(Inspect, SubgraphsConstantsAndExternalData) {
  PTQ_REQUIRE_SHARED();
  const std::string models = test::shared_dir() + "/models/";
  const json vad = json::parse(test::run_quantize({"inspect", models + "silero-vad/model.onnx", "--json"}).out);
  EXPECT_GT(vad["op_histogram"]["If"].get<int>(), 0);
  EXPECT_GT(vad["subgraph_op_histogram"]["LSTM"].get<int>(), 0);
  const json rec = json::parse(test::run_quantize({"inspect", models + "ppocrv4-rec/model.onnx", "--json"}).out);
  EXPECT_GT(rec["constant_node_count"].get<int>(), 100);  // weights stored as Constant nodes
  EXPECT_GT(rec["parameter_count"].get<int64_t>(), 1'000'000);
  const json ext = json::parse(
      test::run_quantize({"inspect", models + "mnist-cnn-opset20-extdata/model.onnx", "--json"}).out);
  EXPECT_EQ(ext["ir_version"], 10);
  EXPECT_EQ(ext["opset_import"]["ai.onnx"], 20);
  EXPECT_EQ(ext["external_data_files"][0], "mnist.onnx.data");
}

TEST(Inspect, HelpListsSubcommands) {
  const auto r = test::run_quantize({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("inspect"), std::string::npos);
}

}  // namespace ptq
