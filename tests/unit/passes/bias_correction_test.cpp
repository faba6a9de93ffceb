// Bias correction in QDQ emission (the int32 bias absorbs the mean shift of the int8 weights) and
// the SiLU/HardSwish inputs calibration fits through.
#include <gtest/gtest.h>

#include <cmath>

#include "ptq/emit/qdq_emitter.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/activation_inputs.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"
#include "testutil.h"

namespace ptq::emit {
namespace {

using test::random_tensor;

// x -> Conv(w, b) -> y, with uint8 ranges given by hand.
ir::Model conv_model() {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 5, 5] x, float[4, 3, 3, 3] w, float[4] b) => (float[1, 4, 3, 3] y) {
      y = Conv (x, w, b)
    }
  )");
  m.graph.set_initializer(m.graph.find("w"), random_tensor({4, 3, 3, 3}, 21));
  m.graph.set_initializer(m.graph.find("b"), random_tensor({4}, 22));
  passes::prepare_for_quantization(m);
  return m;
}

// The dequantized float value of the initializer behind a DequantizeLinear's input `slot` of `op`.
std::vector<double> dequantized_bias(const ir::Model& m) {
  const ir::Graph& g = m.graph;
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    if (n.op_type != "Conv") continue;
    const ir::Node& dq = *g.producer(n.inputs[2]);
    const Tensor& q = *g.constant(dq.inputs[0]);
    const Tensor& s = *g.constant(dq.inputs[1]);
    std::vector<double> v(q.numel());
    for (size_t c = 0; c < v.size(); ++c)
      v[c] = static_cast<double>(q.data<int32_t>()[c]) * s.data<float>()[s.numel() == 1 ? 0 : c];
    return v;
  }
  return {};
}

std::vector<float> dequantized_weight(const ir::Model& m) {
  const ir::Graph& g = m.graph;
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    if (n.op_type != "Conv") continue;
    const ir::Node& dq = *g.producer(n.inputs[1]);
    const Tensor& q = *g.constant(dq.inputs[0]);
    const Tensor& s = *g.constant(dq.inputs[1]);
    std::vector<float> v(q.numel());
    const size_t per = q.numel() / s.numel();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(q.data<int8_t>()[i]) * s.data<float>()[i / per];
    return v;
  }
  return {};
}

TEST(BiasCorrection, TheBiasAbsorbsTheWeightsMeanShift) {
  const ir::Model base = conv_model();
  const passes::RangeMap ranges = {{"x", {-1.f, 3.f}}, {"y", {-8.f, 8.f}}};
  const quant::QuantConfig config = quant::config_for(quant::Target::kGeneric);
  const ChannelMeans means = {{"x", {0.5, 1.5, -0.25}}};
  ir::Model plain = base, corrected = base;
  emit_qdq(plain, passes::plan_quantization(plain.graph, config, ranges), ranges, config);
  emit_qdq(corrected, passes::plan_quantization(corrected.graph, config, ranges), ranges, config, means);
  const std::vector<double> b0 = dequantized_bias(plain), b1 = dequantized_bias(corrected);
  const std::vector<float> wq = dequantized_weight(corrected);
  const Tensor& w = *base.graph.constant(base.graph.find("w"));
  ASSERT_EQ(b0.size(), 4u);
  ASSERT_EQ(wq.size(), w.numel());
  const double step = 4.0 / 255;  // bias codes: s_x * s_w, far below this
  for (size_t oc = 0; oc < 4; ++oc) {
    double shift = 0;  // brute force: sum over input channels and taps
    for (size_t ic = 0; ic < 3; ++ic)
      for (size_t t = 0; t < 9; ++t) {
        const size_t i = (oc * 3 + ic) * 9 + t;
        shift += (static_cast<double>(w.data<float>()[i]) - wq[i]) * means.at("x")[ic];
      }
    EXPECT_NEAR(b1[oc] - b0[oc], shift, step * 0.01) << "channel " << oc;
  }
  // A shift that the test sees at all: int8 weights of random values are off by up to half a step.
  double total = 0;
  for (size_t oc = 0; oc < 4; ++oc) total += std::abs(b1[oc] - b0[oc]);
  EXPECT_GT(total, 0.0);
}

// A measured shift (by the Conv's output name) is added to the bias on top of the means' one;
// a shift of another size or for another name changes nothing.
TEST(BiasCorrection, AMeasuredShiftIsAddedToTheBias) {
  const ir::Model base = conv_model();
  const passes::RangeMap ranges = {{"x", {-1.f, 3.f}}, {"y", {-8.f, 8.f}}};
  const quant::QuantConfig config = quant::config_for(quant::Target::kGeneric);
  const ChannelMeans shift = {{"y", {0.5, -0.25, 0.0, 1.0}}}, wrong = {{"y", {1.0}}, {"x", {1.0, 1.0, 1.0}}};
  ir::Model plain = base, moved = base, ignored = base;
  emit_qdq(plain, passes::plan_quantization(plain.graph, config, ranges), ranges, config);
  emit_qdq(moved, passes::plan_quantization(moved.graph, config, ranges), ranges, config, {}, shift);
  emit_qdq(ignored, passes::plan_quantization(ignored.graph, config, ranges), ranges, config, {}, wrong);
  const std::vector<double> b0 = dequantized_bias(plain), b1 = dequantized_bias(moved), b2 = dequantized_bias(ignored);
  ASSERT_EQ(b1.size(), 4u);
  for (size_t oc = 0; oc < 4; ++oc) {
    EXPECT_NEAR(b1[oc] - b0[oc], shift.at("y")[oc], 1e-4) << "channel " << oc;
    EXPECT_EQ(b2[oc], b0[oc]) << "channel " << oc;
  }
}

TEST(ActivationInputs, FindsSiluAndHardSwishInputsOnly) {
  const ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 14]>
    g (float[4] x) => (float[4] y, float[4] z) {
      a = Relu (x)
      s = Sigmoid (a)
      u = Mul (s, a)
      h = HardSwish (u)
      b = Relu (h)
      t = Sigmoid (b)
      v = Mul (b, t)
      y = Add (v, b)
      z = Identity (h)
    }
  )");
  const std::map<ir::ValueId, passes::ActivationInput> found = passes::activation_inputs(m.graph);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found.at(m.graph.find("a")), passes::ActivationInput::kSilu);  // Sigmoid + Mul in either order
  EXPECT_EQ(found.at(m.graph.find("u")), passes::ActivationInput::kHardSwish);
  // h has a second reader (Identity); b is also read by the Add: both are read as they are.
}

// PaddlePaddle's HardSwish, x * Clip(x + 3, 0, 6): its input counts only when asked for, and only
// when the Add of 3 and the Mul are its sole readers.
TEST(ActivationInputs, FindsWrittenOutHardSwishInputsWhenAsked) {
  const ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[4] x) => (float[4] y, float[4] z)
        <float three = {3.0}, float two = {2.0}, float zero = {0.0}, float six = {6.0}> {
      a = Relu (x)
      p = Add (a, three)
      k = Clip (p, zero, six)
      h = Mul (k, a)
      b = Relu (h)
      p2 = Add (b, two)
      k2 = Clip (p2, zero, six)
      h2 = Mul (b, k2)
      c = Relu (h2)
      p3 = Add (three, c)
      k3 = Clip (p3, zero, six)
      y = Mul (c, k3)
      z = Identity (c)
    }
  )");
  EXPECT_TRUE(passes::activation_inputs(m.graph).empty());
  const std::map<ir::ValueId, passes::ActivationInput> found = passes::activation_inputs(m.graph, true);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.at(m.graph.find("a")), passes::ActivationInput::kHardSwish);
  // b's Add adds 2, not 3; c has a third reader (Identity).
}

}  // namespace
}  // namespace ptq::emit
