// A Relu/Clip folded into the Conv before it (CompiledGraph's activation fusion), SiLU's Mul into
// the Sigmoid, or a zero Pad into the Conv after it, gives the same bits as the separate node, and
// it happens only where no observer needs the value in between.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <span>

#include "ptq/onnx_io/load.h"
#include "ptq/runtime/fast_kernels.h"
#include "ptq/runtime/interpreter.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

struct Shape {
  int64_t c, h, w, m, k, group;  // k×k kernel, pads k/2
};

// y = act(Conv(x)); with `expose`, the Conv output c is a graph output too, which keeps it unfused.
std::string model_text(const Shape& s, const std::string& act, int opset, bool expose) {
  const std::string pad = std::to_string(s.k / 2);
  return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) + "]>\n" +
         "g (float[1, " + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " + std::to_string(s.w) +
         "] x, float[a, b, k1, k2] w, float[m] bias) => (float[n, o, p, q] y" +
         (expose ? ", float[r, s, t, u] c" : "") + ") <float lo = {0.0}, float hi = {6.0}, float neg = {-0.25}> {\n" +
         "  c = Conv <group = " + std::to_string(s.group) + ", pads = [" + pad + ", " + pad + ", " + pad + ", " +
         pad + "]> (x, w, bias)\n  y = " + act + "\n}";
}

TEST(ActivationFusion, FusedReluAndClipAreBitIdenticalToSeparateNodes) {
  const Shape shapes[] = {
      {16, 9, 11, 24, 1, 1},    // pointwise
      {64, 6, 7, 13, 3, 1},     // K = 576: the GEMM accumulates in several K blocks
      {8, 17, 19, 8, 3, 8},     // depthwise
      {12, 8, 9, 18, 3, 3},     // grouped
  };
  // Relu, ReLU6 from initializers, a Clip with only a min, the opset-6 attribute form.
  const std::pair<std::string, int> acts[] = {
      {"Relu (c)", 13}, {"Clip (c, lo, hi)", 13}, {"Clip (c, neg)", 13},
      {"Clip <min = -0.5, max = 0.5> (c)", 6}};
  std::mt19937 rng(424242);
  for (const Shape& s : shapes) {
    Tensor x = test::random_floats(rng, {1, s.c, s.h, s.w});
    for (float& v : std::span(x.mutable_data<float>(), x.numel())) v *= 8.f;  // past ReLU6's 6
    x.mutable_data<float>()[5] = std::numeric_limits<float>::quiet_NaN();  // NaN passes through
    const Tensor w = test::random_floats(rng, {s.m, s.c / s.group, s.k, s.k});
    const Tensor b = test::random_floats(rng, {s.m});
    const std::map<std::string, Tensor> in = {{"x", x}, {"w", w}, {"bias", b}};
    for (const auto& [act, opset] : acts) {
      for (bool fast : {true, false}) {
        runtime::set_fast_kernels(fast);
        SCOPED_TRACE(act + " on C=" + std::to_string(s.c) + " k=" + std::to_string(s.k) +
                     " group=" + std::to_string(s.group) + (fast ? " (fast)" : " (reference)"));
        const Tensor fused = test::run_text(model_text(s, act, opset, false), in, 2)[0];
        const Tensor separate = test::run_text(model_text(s, act, opset, true), in, 2)[0];
        EXPECT_TRUE(fused.bit_equal(separate));
        size_t nans = 0;
        for (float v : std::span(fused.data<float>(), fused.numel())) nans += std::isnan(v) ? 1 : 0;
        EXPECT_GT(nans, 0u);
      }
      runtime::set_fast_kernels(true);
    }
  }
}

TEST(ActivationFusion, OnlyValuesNoObserverNeedsAreFusedAway) {
  const Shape s{4, 5, 5, 6, 3, 1};
  const ir::Model m = onnx_io::parse_model_text(model_text(s, "Relu (c)", 13, false));
  std::mt19937 rng(9);
  const std::map<std::string, Tensor> in = {{"x", test::random_floats(rng, {1, 4, 5, 5})},
                                            {"w", test::random_floats(rng, {6, 4, 3, 3})},
                                            {"bias", test::random_floats(rng, {6})}};
  const auto seen = [&](bool filtered) {
    std::set<std::string> names;
    runtime::InterpreterOptions o;
    o.threads = 1;
    o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) { names.insert(g.value(v).name); };
    if (filtered) o.observed = [](const ir::Graph& g, ir::ValueId v) { return g.value(v).name == "y"; };
    runtime::Interpreter(m, o).run(in);
    return names;
  };
  EXPECT_EQ(seen(false), (std::set<std::string>{"x", "w", "bias", "c", "y"}));  // every value
  EXPECT_EQ(seen(true), (std::set<std::string>{"x", "w", "bias", "y"}));  // c was never stored
}

// x · Sigmoid(x) (SiLU) written by the Sigmoid kernel: the same bits as the separate Mul, in
// either operand order, with fast kernels and with the reference ones; only where no observer
// needs the Sigmoid output.
TEST(ActivationFusion, SiluIsFusedIntoSigmoidBitForBit) {
  std::mt19937 rng(77);
  Tensor x = test::random_floats(rng, {2, 3, 37, 29});
  for (float& v : std::span(x.mutable_data<float>(), x.numel())) v *= 12.f;  // past exp's clamp
  x.mutable_data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  x.mutable_data<float>()[7] = std::numeric_limits<float>::infinity();
  x.mutable_data<float>()[8] = -std::numeric_limits<float>::infinity();
  const auto text = [](const std::string& mul, bool expose) {
    return std::string("<ir_version: 8, opset_import: [\"\" : 13]>\ng (float[2, 3, 37, 29] x) => (float[a, b, c, d] y") +
           (expose ? ", float[e, f, g, h] s" : "") + ") {\n  s = Sigmoid (x)\n  y = " + mul + "\n}";
  };
  for (const std::string mul : {"Mul (x, s)", "Mul (s, x)"}) {
    for (bool fast : {true, false}) {
      runtime::set_fast_kernels(fast);
      SCOPED_TRACE(mul + (fast ? " (fast)" : " (reference)"));
      const Tensor fused = test::run_text(text(mul, false), {{"x", x}}, 2)[0];
      const Tensor separate = test::run_text(text(mul, true), {{"x", x}}, 2)[0];
      EXPECT_TRUE(fused.bit_equal(separate));
    }
    runtime::set_fast_kernels(true);
  }
  const ir::Model m = onnx_io::parse_model_text(text("Mul (x, s)", false));
  std::set<std::string> names;
  runtime::InterpreterOptions o;
  o.threads = 1;
  o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) { names.insert(g.value(v).name); };
  o.observed = [](const ir::Graph& g, ir::ValueId v) { return g.value(v).name == "y"; };
  runtime::Interpreter(m, o).run({{"x", x}});
  EXPECT_EQ(names, (std::set<std::string>{"x", "y"}));  // s was never stored
  names.clear();
  o.observed = [](const ir::Graph& g, ir::ValueId v) { return g.value(v).name != "x"; };
  runtime::Interpreter(m, o).run({{"x", x}});
  EXPECT_EQ(names, (std::set<std::string>{"x", "s", "y"}));  // an observer needs s: not fused
}

// A zero Pad read only by a Conv is folded into the Conv's pads (ORT's PadFusion): the same bits as
// the separate Pad, for stride-1 and strided, depthwise and dense Convs and both pads forms (input
// and the opset-2 attribute), and only where it is exact and nobody needs the padded tensor.
TEST(PadFusion, ZeroPadIsFoldedIntoTheConvBitForBit) {
  std::mt19937 rng(5);
  const Tensor x = test::random_floats(rng, {1, 8, 13, 12});
  const Tensor wd = test::random_floats(rng, {8, 1, 3, 3}), wf = test::random_floats(rng, {6, 8, 3, 3});
  const auto text = [](const std::string& pad, const std::string& conv, bool expose, int opset = 13) {
    return "<ir_version: 8, opset_import: [\"\" : " + std::to_string(opset) +
           "]>\ng (float[1, 8, 13, 12] x, float[a, b, 3, 3] w) => (float[c, d, e, f] y" +
           (expose ? ", float[g, h, i, j] p" : "") +
           ") <int64[8] zeros = {0, 0, 1, 0, 0, 0, 2, 1}, int64[8] crop = "
           "{0, 0, -1, 0, 0, 0, 2, 1}, float zero = {0.0}, float one = {1.0}> {\n  p = " + pad + "\n  y = " + conv + "\n}";
  };
  const std::string depthwise = "Conv <group = 8, strides = [2, 2], pads = [1, 0, 0, 1]> (p, w)";
  const std::string dense = "Conv <pads = [0, 1, 1, 0]> (p, w)";
  struct Case {
    std::string pad;
    int opset;
    bool fused;
  };
  const Case cases[] = {{"Pad (x, zeros)", 13, true},
                        {"Pad (x, zeros, zero)", 13, true},
                        {"Pad <pads = [0, 0, 1, 0, 0, 0, 2, 1]> (x)", 2, true},
                        {"Pad (x, zeros, one)", 13, false},     // not zeros
                        {"Pad (x, crop)", 13, false},           // negative: cropping
                        {"Pad <mode = \"edge\"> (x, zeros)", 13, false}};
  for (const Case& c : cases) {
    for (const std::string& conv : {depthwise, dense}) {
      const Tensor& w = conv == depthwise ? wd : wf;
      SCOPED_TRACE(c.pad + " then " + conv);
      const std::map<std::string, Tensor> in = {{"x", x}, {"w", w}};
      const Tensor fused = test::run_text(text(c.pad, conv, false, c.opset), in, 2)[0];
      const Tensor separate = test::run_text(text(c.pad, conv, true, c.opset), in, 2)[0];
      EXPECT_TRUE(fused.bit_equal(separate));
      std::set<std::string> names;
      runtime::InterpreterOptions o;
      o.threads = 1;
      o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) { names.insert(g.value(v).name); };
      o.observed = [](const ir::Graph& g, ir::ValueId v) { return g.value(v).name == "y"; };
      runtime::Interpreter(onnx_io::parse_model_text(text(c.pad, conv, false, c.opset)), o).run(in);
      EXPECT_EQ(names.count("p") == 0, c.fused);  // a fused Pad's output is never stored
    }
  }
}

}  // namespace
}  // namespace ptq
