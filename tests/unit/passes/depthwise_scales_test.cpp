// Depthwise inputs' per-channel grids: which pairs qualify, the factors, and that the float graph is unchanged.
#include <gtest/gtest.h>

#include <random>

#include "ptq/onnx_io/load.h"
#include "ptq/passes/depthwise_scales.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::passes {
namespace {

// A MobileNetV2 block's pair: 1x1 expansion Conv -> Clip(0, 6) -> 3x3 depthwise Conv.
constexpr const char* kBlock = R"(
  <ir_version: 8, opset_import: ["" : 13]>
  g (float[1, 2, 4, 4] x) => (float[1, 3, 4, 4] y) {
    w1 = Constant <value = float[3, 2, 1, 1] {1, 0.5, -0.25, 0.75, 0.1, 0.05}> ()
    b1 = Constant <value = float[3] {0.5, 0.25, 0.01}> ()
    w2 = Constant <value = float[3, 1, 3, 3] {1, 2, 1, 0, 1, 0, -1, 1, 2, 0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 1, 2, 0, 1, 1, 1, 0, -1, 2, 1}> ()
    lo = Constant <value = float {0}> ()
    hi = Constant <value = float {6}> ()
    e = Conv <kernel_shape = [1, 1]> (x, w1, b1)
    a = Clip (e, lo, hi)
    y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], group = 3> (a, w2)
  }
)";

TEST(DepthwiseScales, FindsTheExpansionDepthwisePair) {
  const ir::Model m = onnx_io::parse_model_text(kBlock);
  const auto c = depthwise_scale_candidates(m.graph);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(m.graph.node(c.begin()->first).outputs[0], m.graph.find("y"));
  EXPECT_EQ(c.begin()->second, m.graph.find("a"));
}

TEST(DepthwiseScales, NotWhenTheActivationHasAnotherReader) {
  std::string text = kBlock;
  text.replace(text.find("=> (float[1, 3, 4, 4] y)"), 24, "=> (float[1, 3, 4, 4] y, float[1, 3, 4, 4] a)");
  EXPECT_TRUE(depthwise_scale_candidates(onnx_io::parse_model_text(text).graph).empty());
}

TEST(DepthwiseScales, RefinesSmallChannelsUpToTheCapAndKeepsTheFloatGraph) {
  ir::Model m = onnx_io::parse_model_text(kBlock);
  const auto [dw, a] = *depthwise_scale_candidates(m.graph).begin();
  quant::QuantConfig config;
  RangeMap ranges{{"x", {-1.f, 1.f}}, {"e", {-2.f, 6.f}}, {"a", {0.f, 4.f}}, {"y", {-10.f, 10.f}}};
  ASSERT_EQ(fold_activations_into_quantized_producers(m.graph, config, ranges), 1);
  const QuantPlan plan = plan_quantization(m.graph, config, ranges);
  const ir::Model before = m;
  // Channel maxima 4 (the range), 2 and 0.1: factors 1, 2 and the cap.
  const auto scaled = scale_depthwise_inputs(m.graph, plan, ranges, {{dw, {4.f, 2.f, 0.1f}}});
  ASSERT_EQ(scaled.size(), 1u);
  EXPECT_EQ(scaled.begin()->second, (std::vector<float>{1.f, 2.f, kMaxDepthwiseInputScale}));
  // Linear in between (the Clip is the Q's now): the float outputs agree.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> xs(32);
  for (float& v : xs) v = u(rng);
  const Tensor x = Tensor::from_vector<float>({1, 2, 4, 4}, xs);
  const Tensor y0 = runtime::Interpreter(before, {.threads = 1}).run({{"x", x}})[0];
  const Tensor y1 = runtime::Interpreter(m, {.threads = 1}).run({{"x", x}})[0];
  ASSERT_EQ(y0.numel(), y1.numel());
  for (size_t i = 0; i < y0.numel(); ++i) EXPECT_NEAR(y0.data<float>()[i], y1.data<float>()[i], 1e-5f) << i;
  // The expansion's channel 2 produces 4x larger values now.
  const Tensor& w1 = *m.graph.constant(m.graph.producer(m.graph.node(dw).inputs[0])->inputs[1]);
  EXPECT_FLOAT_EQ(w1.data<float>()[4], 0.1f * kMaxDepthwiseInputScale);
}

TEST(DepthwiseScales, NoneWithPerTensorWeights) {
  ir::Model m = onnx_io::parse_model_text(kBlock);
  const auto [dw, a] = *depthwise_scale_candidates(m.graph).begin();
  quant::QuantConfig config;
  config.per_channel = false;
  RangeMap ranges{{"x", {-1.f, 1.f}}, {"e", {-2.f, 6.f}}, {"a", {0.f, 4.f}}, {"y", {-10.f, 10.f}}};
  fold_activations_into_quantized_producers(m.graph, config, ranges);
  const QuantPlan plan = plan_quantization(m.graph, config, ranges);
  EXPECT_TRUE(scale_depthwise_inputs(m.graph, plan, ranges, {{dw, {4.f, 2.f, 0.1f}}}).empty());
}

}  // namespace
}  // namespace ptq::passes
