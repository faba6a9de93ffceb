// Preparation passes: no-op removal keeps output names; BatchNormalization and scales fold exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "ptq/ir/stats.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/prepare.h"
#include "ptq/runtime/interpreter.h"
#include "testutil.h"

namespace ptq::passes {
namespace {

using test::random_tensor;

std::vector<float> run(const ir::Model& m, const Tensor& x) {
  runtime::Interpreter in(m, {.threads = 1});
  const Tensor y = in.run({{"x", x}})[0];
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

}  // namespace

// Weights are declared as graph inputs in the ONNX text and turned into initializers here.

TEST(Prepare, RemovesNoopsAndKeepsOutputNames) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) {
      a = Identity (x)
      b = Relu (a)
      c = Dropout (b)
      y = Identity (c)
    }
  )");
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram, (std::map<std::string, size_t>{{"Relu", 1}}));
  EXPECT_EQ(m.graph.value(m.graph.outputs[0]).name, "y");
  EXPECT_EQ(m.graph.producer(m.graph.outputs[0])->op_type, "Relu");
  EXPECT_EQ(changes.size(), 3u);
}

TEST(Prepare, IdentityBetweenInputAndOutputStays) {
  // Removing it would rename the graph input or the output.
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) { y = Identity (x) }
  )");
  prepare_for_quantization(m);
  EXPECT_EQ(m.graph.num_nodes(), 1u);
}

TEST(Prepare, FoldsBatchNormalizationIntoConv) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 6, 6] x, float[4, 3, 3, 3] w, float[4] b, float[4] gamma, float[4] beta,
       float[4] mean, float[4] var) => (float[1, 4, 6, 6] y) {
      c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
      y = BatchNormalization <epsilon = 0.001> (c, gamma, beta, mean, var)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w"), random_tensor({4, 3, 3, 3}, 1));
  g.set_initializer(g.find("b"), random_tensor({4}, 2));
  g.set_initializer(g.find("gamma"), random_tensor({4}, 3, 0.5f, 2.f));
  g.set_initializer(g.find("beta"), random_tensor({4}, 4));
  g.set_initializer(g.find("mean"), random_tensor({4}, 5));
  g.set_initializer(g.find("var"), random_tensor({4}, 6, 0.1f, 3.f));
  const Tensor x = random_tensor({1, 3, 6, 6}, 7);
  const std::vector<float> before = run(m, x);
  prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(g).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}}));
  EXPECT_EQ(g.value(g.outputs[0]).name, "y");
  const std::vector<float> after = run(m, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-5f) << i;
  // The old weights are gone: only the folded ones remain.
  EXPECT_EQ(g.initializers.size(), 2u);
}

// TF "same" padding as an explicit Pad (efficientnet-lite0): folded into the Conv's pads, same
// outputs; a non-zero value, a padded channel axis or a second reader keep the Pad.
TEST(Prepare, FoldsZeroSpatialPadIntoConv) {
  const char* text = R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 6, 6] x, float[4, 3, 3, 3] w) => (float[1, 4, 7, 7] y) <int64[8] pads = {0, 0, 0, 1, 0, 0, 1, 2}> {
      p = Pad (x, pads)
      y = Conv <pads = [1, 0, 0, 0]> (p, w)
    }
  )";
  ir::Model m = onnx_io::parse_model_text(text);
  m.graph.set_initializer(m.graph.find("w"), random_tensor({4, 3, 3, 3}, 1));
  const Tensor x = random_tensor({1, 3, 6, 6}, 2);
  const std::vector<float> before = run(m, x);
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}}));
  EXPECT_EQ(m.graph.producer(m.graph.outputs[0])->attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 2}));
  const std::vector<float> after = run(m, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-5f) << i;

  for (const char* change : {"pads = {0, 1, 0, 1, 0, 0, 1, 2}", "reflect"}) {
    std::string t = text;
    if (std::string(change) == "reflect") t.replace(t.find("Pad (x"), 3, "Pad <mode = \"reflect\">");
    else t.replace(t.find("pads = {0, 0, 0, 1, 0, 0, 1, 2}"), std::string("pads = {0, 0, 0, 1, 0, 0, 1, 2}").size(), change);
    ir::Model k = onnx_io::parse_model_text(t);
    prepare_for_quantization(k);
    EXPECT_EQ(ir::graph_stats(k.graph).op_histogram.count("Pad"), 1u) << change;
  }
}

// Caffe Scale layers and PaddlePaddle's learnable affine blocks: a Conv's output times a scalar or
// per-channel constant becomes the Conv's own weights; a constant along another axis, a second
// reader of the Conv output or a non-constant factor keep the Mul.
TEST(Prepare, FoldsChannelScaleIntoConv) {
  const char* text = R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 6, 6] x, float[4, 3, 3, 3] w, float[4] b, float[1, 4, 1, 1] s, float[1] d) => (float[1, 4, 6, 6] y) {
      c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
      m = Mul (s, c)
      y = Div (m, d)
    }
  )";
  const auto make = [&](const std::string& t, Dims sdims) {
    ir::Model m = onnx_io::parse_model_text(t);
    ir::Graph& g = m.graph;
    g.set_initializer(g.find("w"), random_tensor({4, 3, 3, 3}, 1));
    g.set_initializer(g.find("b"), random_tensor({4}, 2));
    g.set_initializer(g.find("s"), random_tensor(sdims, 3, 0.5f, 2.f));
    if (g.find("d") != ir::kNone) g.set_initializer(g.find("d"), Tensor::from_vector<float>({1}, {-3.f}));
    return m;
  };
  ir::Model m = make(text, {1, 4, 1, 1});
  const Tensor x = random_tensor({1, 3, 6, 6}, 7);
  const std::vector<float> before = run(m, x);
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}}));
  EXPECT_EQ(m.graph.value(m.graph.outputs[0]).name, "y");
  const std::vector<float> after = run(m, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-5f) << i;
  EXPECT_EQ(m.graph.initializers.size(), 2u);

  // Along the width axis, the Mul stays, and so does the Div after it.
  std::string along_w = text;
  along_w.replace(along_w.find("float[1, 4, 1, 1] s"), 19, "float[6] s");
  ir::Model k = make(along_w, {6});
  prepare_for_quantization(k);
  EXPECT_EQ(ir::graph_stats(k.graph).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}, {"Mul", 1}, {"Div", 1}}));
  // The Conv output also read by a Relu: nothing folds.
  std::string shared = text;
  shared.replace(shared.find("=> (float[1, 4, 6, 6] y)"), 24, "=> (float[1, 4, 6, 6] y, float[1, 4, 6, 6] r)");
  shared.replace(shared.find("      y = Div"), 0, "      r = Relu (c)\n");
  ir::Model l = make(shared, {1, 4, 1, 1});
  prepare_for_quantization(l);
  EXPECT_EQ(ir::graph_stats(l.graph).op_histogram,
            (std::map<std::string, size_t>{{"Conv", 1}, {"Mul", 1}, {"Div", 1}, {"Relu", 1}}));
}

// PP-OCRv4's HardSwish ends in Div(6), followed by its affine block's Mul: one Mul by the product,
// whose constant keeps the larger rank so the output shape does not change.
TEST(Prepare, MergesScalarScales) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2, 3] x, float[1, 1, 1] s) => (float[1, 2, 3] y, float[2, 3] z) <float six = {6.0}, float[1] half = {0.5}> {
      d = Div (x, six)
      y = Mul (s, d)
      h = Mul (x, half)
      z = Mul (h, x)
    }
  )");
  m.graph.set_initializer(m.graph.find("s"), Tensor::from_vector<float>({1, 1, 1}, {1.5f}));
  const Tensor x = random_tensor({2, 3}, 1);
  runtime::Interpreter before_run(m, {.threads = 1});
  const std::vector<Tensor> before = before_run.run({{"x", x}});
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  // Div + Mul merged; Mul(x, 0.5) read by a Mul of two activations stays.
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram, (std::map<std::string, size_t>{{"Mul", 3}}));
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(), [](const std::string& c) { return c.rfind("merged ", 0) == 0; }), 1);
  runtime::Interpreter after_run(m, {.threads = 1});
  const std::vector<Tensor> after = after_run.run({{"x", x}});
  ASSERT_EQ(after[0].dims(), (Dims{1, 2, 3}));
  for (size_t o = 0; o < 2; ++o)
    for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(before[o].data<float>()[i], after[o].data<float>()[i], 1e-6f) << o << i;
}

// PP-OCRv4-rec's affine blocks: Conv -> Add(t) -> HardSwish written out as Add(3), Clip(0, 6), Mul.
// The shift goes into the Conv's bias (it had none here), so the HardSwish reads the Conv output;
// an Add of a constant that no HardSwish reads stays.
TEST(Prepare, FoldsShiftIntoHardSwishConv) {
  const char* text = R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 6, 6] x, float[4, 3, 3, 3] w, float[1, 4, 1, 1] t) => (float[1, 4, 6, 6] y, float[1, 4, 6, 6] z)
        <float three = {3.0}, float zero = {0.0}, float six = {6.0}> {
      c = Conv <pads = [1, 1, 1, 1]> (x, w)
      s = Add (c, t)
      a = Add (s, three)
      k = Clip (a, zero, six)
      y = Mul (s, k)
      c2 = Conv <pads = [1, 1, 1, 1]> (x, w)
      z = Add (c2, t)
    }
  )";
  ir::Model m = onnx_io::parse_model_text(text);
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w"), random_tensor({4, 3, 3, 3}, 1));
  g.set_initializer(g.find("t"), random_tensor({1, 4, 1, 1}, 2, -2.f, 2.f));
  const Tensor x = random_tensor({1, 3, 6, 6}, 7);
  runtime::Interpreter before_run(m, {.threads = 1});
  const std::vector<Tensor> before = before_run.run({{"x", x}});
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram,
            (std::map<std::string, size_t>{{"Conv", 2}, {"Add", 2}, {"Clip", 1}, {"Mul", 1}}));
  const auto bias_folds = std::count_if(changes.begin(), changes.end(),
                                        [](const std::string& c) { return c.find("'s bias") != std::string::npos; });
  EXPECT_EQ(bias_folds, 1);
  const ir::Node* add3 = m.graph.producer(m.graph.producer(m.graph.producer(m.graph.outputs[0])->inputs[1])->inputs[0]);
  ASSERT_NE(add3, nullptr);
  EXPECT_EQ(m.graph.producer(add3->inputs[0])->op_type, "Conv");
  runtime::Interpreter after_run(m, {.threads = 1});
  const std::vector<Tensor> after = after_run.run({{"x", x}});
  for (size_t o = 0; o < 2; ++o)
    for (size_t i = 0; i < before[o].numel(); ++i)
      EXPECT_NEAR(before[o].data<float>()[i], after[o].data<float>()[i], 1e-5f) << o << " " << i;
}

TEST(Prepare, BatchNormAfterSharedConvOutputStays) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 1, 2, 2] x, float[1, 1, 1, 1] w, float[1] s) => (float[1, 1, 2, 2] y, float[1, 1, 2, 2] z) {
      c = Conv (x, w)
      y = BatchNormalization (c, s, s, s, s)
      z = Relu (c)
    }
  )");
  m.graph.set_initializer(m.graph.find("w"), Tensor::from_vector<float>({1, 1, 1, 1}, {2.f}));
  m.graph.set_initializer(m.graph.find("s"), Tensor::from_vector<float>({1}, {1.f}));
  prepare_for_quantization(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram.count("BatchNormalization"), 1u);
}

TEST(Prepare, FoldsSubgraphsThatOnlyComputeWeights) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 2, 2] x) => (float[1, 2, 2, 2] y) {
      w = Constant <value = float[3, 2, 1, 1] {1, 2, 3, 4, 5, 6}> ()
      wt = Transpose <perm = [1, 0, 2, 3]> (w)
      y = Conv (x, wt)
    }
  )");
  const Tensor x = random_tensor({1, 3, 2, 2}, 9);
  const std::vector<float> before = run(m, x);
  prepare_for_quantization(m);
  ir::verify(m);
  const ir::Graph& g = m.graph;
  EXPECT_EQ(ir::graph_stats(g).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}}));
  const ir::ValueId wt = g.find("wt");
  ASSERT_NE(wt, ir::kNone);
  EXPECT_EQ(g.value(wt).kind, ir::ValueKind::kInitializer);
  EXPECT_EQ(g.constant(wt)->dims(), (Dims{2, 3, 1, 1}));
  EXPECT_EQ(g.constant(wt)->data<float>()[1], 3.f);  // transposed: wt[0, 1] = w[1, 0]
  EXPECT_EQ(run(m, x), before);
}

TEST(Prepare, ConstantsFeedingGraphOutputsAndRandomOpsStay) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y, float[2] z) {
      c = Constant <value = float[2] {1, 2}> ()
      y = Neg (c)
      r = RandomUniform <shape = [2]> ()
      z = Add (x, r)
    }
  )");
  prepare_for_quantization(m);
  const auto hist = ir::graph_stats(m.graph).op_histogram;
  EXPECT_EQ(hist.count("Neg"), 1u);
  EXPECT_EQ(hist.count("RandomUniform"), 1u);
}

// YOLOX's Focus stem: the four stride-2 phases of the image (cut by two Slices each, or one Slice
// of both axes), concatenated in YOLOX's order, read by a Conv: one Conv on the image with a
// doubled kernel, stride and pads, the same outputs. Three phases, a phase with a second reader,
// a Slice that stops short of the end or an odd height keep the Slices.
TEST(Prepare, FoldsSpaceToDepthIntoConv) {
  const char* text = R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 8, 10] x, float[5, 12, 3, 3] w, float[5] b) => (float[1, 5, 2, 2] y)
      <int64[1] z = {0}, int64[1] one = {1}, int64[1] end = {9223372036854775807}, int64[1] two = {2},
       int64[1] h = {2}, int64[1] v = {3}, int64[2] hv = {2, 3}, int64[2] one_one = {1, 1},
       int64[2] end2 = {9223372036854775807, 9223372036854775807}, int64[2] two2 = {2, 2}> {
      r0 = Slice (x, z, end, h, two)
      p00 = Slice (r0, z, end, v, two)
      r1 = Slice (x, one, end, h, two)
      p10 = Slice (r1, z, end, v, two)
      r2 = Slice (x, z, end, h, two)
      p01 = Slice (r2, one, end, v, two)
      p11 = Slice (x, one_one, end2, hv, two2)
      c = Concat <axis = 1> (p00, p10, p01, p11)
      y = Conv <pads = [1, 0, 0, 1], strides = [2, 2]> (c, w, b)
    }
  )";
  const auto make = [&](const std::string& t) {
    ir::Model m = onnx_io::parse_model_text(t);
    m.graph.set_initializer(m.graph.find("w"), random_tensor({5, 12, 3, 3}, 1));
    m.graph.set_initializer(m.graph.find("b"), random_tensor({5}, 2));
    return m;
  };
  ir::Model m = make(text);
  const Tensor x = random_tensor({1, 3, 8, 10}, 3);
  const std::vector<float> before = run(m, x);
  const Changes changes = prepare_for_quantization(m);
  ir::verify(m);
  EXPECT_EQ(ir::graph_stats(m.graph).op_histogram, (std::map<std::string, size_t>{{"Conv", 1}}));
  const ir::Node& conv = *m.graph.producer(m.graph.outputs[0]);
  EXPECT_EQ(m.graph.value(conv.inputs[0]).name, "x");
  EXPECT_EQ(conv.attr_ints("kernel_shape"), (std::vector<int64_t>{6, 6}));
  EXPECT_EQ(conv.attr_ints("strides"), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(conv.attr_ints("pads"), (std::vector<int64_t>{2, 0, 0, 2}));
  const std::vector<float> after = run(m, x);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-5f) << i;

  const std::pair<const char*, const char*> kept[] = {
      {"c = Concat <axis = 1> (p00, p10, p01, p11)", "c = Concat <axis = 1> (p00, p10, p01)"},
      {"y = Conv", "y2 = Relu (p10)\n      y = Conv"},
      {"p10 = Slice (r1, z, end, v, two)", "p10 = Slice (r1, z, v, v, two)"},
      {"float[1, 3, 8, 10] x", "float[1, 3, 7, 10] x"},
  };
  for (const auto& [from, to] : kept) {
    std::string t = text;
    t.replace(t.find(from), std::string(from).size(), to);
    if (std::string(to).find("Relu") != std::string::npos)
      t.replace(t.find("(float[1, 5, 2, 2] y)"), 21, "(float[1, 5, 2, 2] y, float y2)");
    ir::Model k = make(t);
    prepare_for_quantization(k);
    EXPECT_GE(ir::graph_stats(k.graph).op_histogram.count("Slice"), 1u) << to;
  }
}

}  // namespace ptq::passes
