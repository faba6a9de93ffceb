// Mask paths and transformer placement on small attention graphs (issue 14).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ptq/onnx_io/load.h"
#include "ptq/passes/mask_paths.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/passes/smoothquant.h"
#include "ptq/ir/verify.h"
#include "ptq/runtime/interpreter.h"

namespace ptq {
namespace {

// One attention head the way torch exports BERT: scores = Q Kᵀ / 8 + Where(mask, 0, finfo.min).
ir::Model attention_model() {
  return onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 4, 8] x, bool[1, 1, 4] m) => (float[1, 4, 8] y)
      <float[8, 8] wq = {1,0,0,0,0,0,0,0, 0,1,0,0,0,0,0,0, 0,0,1,0,0,0,0,0, 0,0,0,1,0,0,0,0,
                         0,0,0,0,1,0,0,0, 0,0,0,0,0,1,0,0, 0,0,0,0,0,0,1,0, 0,0,0,0,0,0,0,1},
       float zero = {0}, float big = {-3.4028235e38}, float eight = {8}, int64[3] perm_shape = {1, 8, 4}> {
      q = MatMul (x, wq)
      k = MatMul (x, wq)
      kt = Transpose <perm = [0, 2, 1]> (k)
      s = MatMul (q, kt)
      sd = Div (s, eight)
      mask = Where (m, zero, big)
      sm = Add (sd, mask)
      p = Softmax <axis = -1> (sm)
      ctx = MatMul (p, q)
      y = Add (ctx, x)
    })");
}

passes::RangeMap ordinary_ranges(const ir::Graph& g) {
  passes::RangeMap r;
  for (ir::ValueId v : g.value_ids())
    if (!g.value(v).is_constant() && g.value(v).type.dtype != DType::kBool) r[g.value(v).name] = {-2.f, 2.f};
  return r;
}

bool has(const std::vector<std::string>& notes, const std::string& s) {
  return std::any_of(notes.begin(), notes.end(), [&](const std::string& n) { return n.find(s) != std::string::npos; });
}

bool quantized(const passes::QuantPlan& plan, const ir::Graph& g, const std::string& name) {
  return std::any_of(plan.activations.begin(), plan.activations.end(),
                     [&](ir::ValueId v) { return g.value(v).name == name; });
}

TEST(MaskPaths, AConstantMaskStaysFp32UpToTheSoftmaxEvenWhenCalibrationNeverSawPadding) {
  ir::Model m = attention_model();
  passes::prepare_for_quantization(m);
  // Unpadded calibration: the mask tensors look like ordinary small ranges.
  const auto masks = passes::find_mask_paths(m.graph, ordinary_ranges(m.graph));
  std::vector<std::string> names;
  for (const auto& t : masks) names.push_back(m.graph.value(t.value).name);
  EXPECT_EQ(names, (std::vector<std::string>{"mask", "sm"}));
  EXPECT_EQ(masks[1].origin, m.graph.find("mask"));  // carried, not a seed of its own
  EXPECT_NE(masks[0].why.find("big"), std::string::npos) << masks[0].why;
}

TEST(MaskPaths, ACalibratedRangeBeyond1e4IsASeed) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 4] x) => (float[1, 4] y) {
      e = Exp (x)
      y = Relu (e)
    })");
  passes::RangeMap r = {{"x", {0.f, 12.f}}, {"e", {0.f, 1.6e5f}}, {"y", {0.f, 1.6e5f}}};
  const auto masks = passes::find_mask_paths(m.graph, r);
  ASSERT_EQ(masks.size(), 2u);  // e by its range; y too (Relu does not carry, but its own range is huge)
  EXPECT_NE(masks[0].why.find("calibrated range"), std::string::npos) << masks[0].why;
}

TEST(TransformerPlacement, AutoFindsAttentionAndQuantizesMatMulInputsOnly) {
  ir::Model m = attention_model();
  passes::prepare_for_quantization(m);
  const ir::Node* softmax = passes::find_attention(m.graph);
  ASSERT_NE(softmax, nullptr);
  EXPECT_EQ(softmax->op_type, "Softmax");
  const passes::QuantPlan plan = passes::plan_quantization(m.graph, quant::QuantConfig{}, ordinary_ranges(m.graph));
  EXPECT_NE(plan.placement.find("transformer"), std::string::npos) << plan.placement;
  EXPECT_TRUE(has(plan.fp32, "tensor 'mask': mask-like")) << plan.fp32.size();
  for (const char* in : {"x", "q", "kt", "p"}) EXPECT_TRUE(quantized(plan, m.graph, in)) << in;
  // Float MatMul outputs, fp32 residual Add, nothing on the mask path.
  for (const char* out : {"s", "ctx", "y", "mask", "sm", "sd"}) EXPECT_FALSE(quantized(plan, m.graph, out)) << out;
}

TEST(TransformerPlacement, PresetCnnKeepsOutputQdqButStillProtectsTheMask) {
  ir::Model m = attention_model();
  passes::prepare_for_quantization(m);
  quant::QuantConfig c;
  c.preset = quant::Preset::kCnn;
  c.quantize_elementwise = true;  // the residual Add's output "y" too
  const passes::QuantPlan plan = passes::plan_quantization(m.graph, c, ordinary_ranges(m.graph));
  EXPECT_EQ(plan.placement, "cnn");
  EXPECT_TRUE(quantized(plan, m.graph, "s"));
  EXPECT_TRUE(quantized(plan, m.graph, "y"));
  EXPECT_FALSE(quantized(plan, m.graph, "mask"));
  EXPECT_FALSE(quantized(plan, m.graph, "sm"));
}

TEST(TransformerPlacement, ACnnIsNotATransformer) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) <float[4, 4] w = {1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1}> {
      h = MatMul (x, w)
      y = Softmax (h)
    })");
  EXPECT_EQ(passes::find_attention(m.graph), nullptr);
}

TEST(TransformerPlacement, EinsumScoresAreAttention) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 4] q, float[1, 2, 3, 4] k) => (float[1, 2, 3, 3] p) {
      s = Einsum <equation = "bhqd,bhkd->bhqk"> (q, k)
      p = Softmax <axis = -1> (s)
    })");
  const ir::Node* a = passes::find_attention(m.graph);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->op_type, "Softmax");
}

TEST(TransformerPlacement, FusedContribAttentionIsATransformer) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
    g (float[1, 2, 4] x) => (float[1, 2, 4] y) <float[4, 12] w = {1,0,0,0,0,0,0,0,0,0,0,0, 0,1,0,0,0,0,0,0,0,0,0,0,
        0,0,1,0,0,0,0,0,0,0,0,0, 0,0,0,1,0,0,0,0,0,0,0,0}> {
      y = com.microsoft.Attention <num_heads = 2> (x, w)
    })");
  const ir::Node* a = passes::find_attention(m.graph);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->op_type, "Attention");
}

}  // namespace
}  // namespace ptq

namespace ptq {
namespace {

// A post-LN block: LayerNorm output read by two MatMuls and a residual Add (the Mul path), and
// a LayerNorm read only by a MatMul (the fold path). Smoothing must not change what it computes.
TEST(SmoothQuant, BothRewritesKeepTheModelsFunction) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 4] x) => (float[2, 3] y, float[2, 4] r) <float[4] gamma = {1, 2, 0.5, 3}, float[4] beta = {0.1, -0.2, 0.3, 0},
        float[4, 3] w1 = {1, -2, 0.5, 0.25, 3, -1, 2, 0.5, 0.1, -4, 1, 2}, float[4, 3] w2 = {0.5, 1, -1, 2, 0.3, 0.7, -0.2, 1, 4, 0.1, 0.1, 0.9},
        float[3, 3] w3 = {1, 0, 2, 0, 1, -1, 3, 1, 0}, float[3] g2 = {1, 1, 2}> {
      n = LayerNormalization <axis = -1> (x, gamma, beta)
      a = MatMul (n, w1)
      b = MatMul (n, w2)
      r = Add (n, x)
      s = Add (a, b)
      n2 = LayerNormalization <axis = -1> (s, g2)
      y = MatMul (n2, w3)
    })");
  const std::map<std::string, Tensor> in = {
      {"x", Tensor::from_vector<float>({2, 4}, {0.5f, -1.f, 20.f, 0.1f, 3.f, 0.2f, -15.f, 1.f})}};
  const std::vector<Tensor> before = runtime::Interpreter(m, {.threads = 1}).run(in);
  const auto groups = passes::smoothquant_groups(m.graph);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].norm, ir::kNone);  // n also feeds the residual Add: a Mul goes in
  EXPECT_EQ(groups[0].consumers.size(), 2u);
  EXPECT_NE(groups[1].norm, ir::kNone);  // n2 feeds only MatMul: folded into the norm
  std::map<ir::ValueId, std::vector<float>> stats = {{groups[0].activation, {1.f, 2.f, 40.f, 0.5f}},
                                                     {groups[1].activation, {3.f, 0.1f, 9.f}}};
  const auto notes = passes::apply_smoothquant(m.graph, groups, stats, 0.8f);
  ASSERT_EQ(notes.size(), 2u);
  ir::verify(m);
  const std::vector<Tensor> after = runtime::Interpreter(m, {.threads = 1}).run(in);
  for (size_t o = 0; o < before.size(); ++o)
    for (size_t i = 0; i < before[o].numel(); ++i)
      EXPECT_NEAR(after[o].data<float>()[i], before[o].data<float>()[i], 1e-4f * (1 + std::fabs(before[o].data<float>()[i])))
          << "output " << o << " element " << i;
  // The smoothed weights changed (the rewrite did something).
  const ir::Node* mm = m.graph.producer(m.graph.find("a"));
  EXPECT_NE(m.graph.value(mm->inputs[1]).name, "w1");
  EXPECT_NE(m.graph.value(mm->inputs[0]).name, "n");
}

}  // namespace
}  // namespace ptq
