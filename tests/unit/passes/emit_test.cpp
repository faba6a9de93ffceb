// Planning + QDQ emission on small graphs: structure ORT needs, exact bias scales, numerics.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "ptq/emit/qdq_emitter.h"
#include "ptq/ir/stats.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/runtime/interpreter.h"
#include "qdq_fusion.h"  // src/runtime: the groups integer-kernel mode fuses
#include "testutil.h"

namespace ptq::emit {
namespace {

using test::random_tensor;

// Conv -> Relu -> MaxPool -> Flatten -> Gemm, weights declared as inputs then made initializers.
ir::Model small_cnn() {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x, float[3, 2, 3, 3] w, float[3] b, float[5, 12] fw, float[5] fb)
      => (float[1, 5] y) {
      c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
      r = Relu (c)
      p = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (r)
      f = Flatten (p)
      y = Gemm <transB = 1> (f, fw, fb)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w"), random_tensor({3, 2, 3, 3}, 1));
  g.set_initializer(g.find("b"), random_tensor({3}, 2));
  g.set_initializer(g.find("fw"), random_tensor({5, 12}, 3));
  g.set_initializer(g.find("fb"), random_tensor({5}, 4));
  passes::prepare_for_quantization(m);
  return m;
}

// Exact min/max of every float tensor over a few random inputs, through the runtime's observer.
passes::RangeMap observe_ranges(const ir::Model& m, const std::vector<Tensor>& inputs) {
  passes::RangeMap ranges;
  runtime::InterpreterOptions o;
  o.threads = 1;
  o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor& t) {
    if (t.dtype() != DType::kFloat || g.value(v).is_constant()) return;
    auto [it, fresh] = ranges.try_emplace(g.value(v).name, quant::Range{t.data<float>()[0], t.data<float>()[0]});
    for (size_t i = 0; i < t.numel(); ++i) {
      it->second.min = std::min(it->second.min, t.data<float>()[i]);
      it->second.max = std::max(it->second.max, t.data<float>()[i]);
    }
  };
  runtime::Interpreter in(m, o);
  for (const Tensor& x : inputs) in.run({{"x", x}});
  return ranges;
}

std::vector<Tensor> inputs() {
  std::vector<Tensor> xs;
  for (uint32_t s = 10; s < 14; ++s) xs.push_back(random_tensor({1, 2, 4, 4}, s));
  return xs;
}

const ir::Node& consumer_of(const ir::Graph& g, const std::string& op) {
  for (ir::NodeId id : g.node_ids())
    if (g.node(id).op_type == op) return g.node(id);
  throw std::runtime_error("no " + op);
}

Tensor run(const ir::Model& m, const Tensor& x) {
  runtime::Interpreter in(m, {.threads = 1});
  return in.run({{"x", x}})[0];
}

struct Emitted {
  ir::Model model;
  EmitSummary summary;
};

Emitted quantize(const quant::QuantConfig& config) {
  Emitted e{small_cnn(), {}};
  passes::RangeMap ranges = observe_ranges(e.model, inputs());
  passes::fold_activations_into_quantized_producers(e.model.graph, config, ranges);
  const passes::QuantPlan plan = passes::plan_quantization(e.model.graph, config, ranges);
  e.summary = emit_qdq(e.model, plan, ranges, config);
  ir::verify(e.model);
  return e;
}

}  // namespace

TEST(Emit, OrtProfileStructure) {
  const Emitted e = quantize(quant::config_for(quant::Target::kOrtX86));
  const ir::Graph& g = e.model.graph;
  const auto hist = ir::graph_stats(g).op_histogram;
  EXPECT_EQ(hist.count("Relu"), 0u) << "Relu folds into the Conv's Q (z = qmin)";
  // Every input of the Conv and the Gemm comes from a DequantizeLinear.
  for (const char* op : {"Conv", "Gemm"}) {
    const ir::Node& n = consumer_of(g, op);
    for (ir::ValueId in : n.inputs) EXPECT_EQ(g.producer(in)->op_type, "DequantizeLinear") << op;
  }
  // The Conv's output feeds only a QuantizeLinear; the Gemm writes the graph output in float
  // (ORT's QGemm without an output scale), under its own name.
  for (const ir::Use& u : g.value(consumer_of(g, "Conv").outputs[0]).uses)
    EXPECT_EQ(g.node(u.node).op_type, "QuantizeLinear");
  EXPECT_EQ(g.value(g.outputs[0]).name, "y");
  EXPECT_EQ(g.producer(g.outputs[0])->op_type, "Gemm");
  bool qgemm = false;  // ptq's integer-kernel mode runs it as ORT does: a QGemm writing float
  for (const runtime::FusedGroup& f : runtime::find_fused_groups(g))
    qgemm = qgemm || (f.op_type == "QGemm" && f.outputs == std::vector{g.outputs[0]});
  EXPECT_TRUE(qgemm);
  EXPECT_EQ(e.summary.weights, 2u);
  EXPECT_EQ(e.summary.biases, 2u);
}

TEST(Emit, WeightsAreInt8PerChannelWithExplicitAxisAndBiasScaleIsExact) {
  const Emitted e = quantize(quant::config_for(quant::Target::kOrtX86));
  const ir::Graph& g = e.model.graph;
  for (const auto& [op, axis, channels] : {std::tuple{"Conv", 0, 3}, std::tuple{"Gemm", 0, 5}}) {
    const ir::Node& n = consumer_of(g, op);
    const ir::Node* wdq = g.producer(n.inputs[1]);
    ASSERT_NE(wdq->attr("axis"), nullptr);
    EXPECT_EQ(wdq->attr_int("axis", -1), axis) << op;
    const Tensor* wq = g.constant(wdq->inputs[0]);
    ASSERT_NE(wq, nullptr);
    EXPECT_EQ(wq->dtype(), DType::kInt8);
    const Tensor* ws = g.constant(wdq->inputs[1]);
    ASSERT_EQ(ws->numel(), static_cast<size_t>(channels));
    // Bias: int32, zero point 0, scale exactly s_x * s_w[c] as float32 products.
    const ir::Node* bdq = g.producer(n.inputs[2]);
    EXPECT_EQ(g.constant(bdq->inputs[0])->dtype(), DType::kInt32);
    const Tensor* bs = g.constant(bdq->inputs[1]);
    const float sx = g.constant(g.producer(n.inputs[0])->inputs[1])->data<float>()[0];
    for (int c = 0; c < channels; ++c) EXPECT_EQ(bs->data<float>()[c], sx * ws->data<float>()[c]) << op << c;
    for (size_t c = 0; c < g.constant(bdq->inputs[2])->numel(); ++c)
      EXPECT_EQ(g.constant(bdq->inputs[2])->data<int32_t>()[c], 0);
  }
}

TEST(Emit, ReduceRangeKeepsWeightsWithinSevenBits) {
  quant::QuantConfig full = quant::config_for(quant::Target::kOrtX86);
  full.reduce_range = quant::ReduceRange::kOff;
  quant::QuantConfig reduced = full, automatic = full;
  reduced.reduce_range = quant::ReduceRange::kOn;
  automatic.reduce_range = quant::ReduceRange::kAuto;
  const Emitted ef = quantize(full), er = quantize(reduced), ea = quantize(automatic);
  for (const char* op : {"Conv", "Gemm"}) {
    const auto weights = [&](const Emitted& e) {
      const ir::Graph& g = e.model.graph;
      const ir::Node* wdq = g.producer(consumer_of(g, op).inputs[1]);
      return std::pair{g.constant(wdq->inputs[0]), g.constant(wdq->inputs[1])};
    };
    const auto [qf, sf] = weights(ef);
    const auto [qr, sr] = weights(er);
    int max_full = 0, max_reduced = 0;
    for (size_t i = 0; i < qr->numel(); ++i) {
      max_full = std::max(max_full, std::abs(int{qf->data<int8_t>()[i]}));
      max_reduced = std::max(max_reduced, std::abs(int{qr->data<int8_t>()[i]}));
    }
    // Each channel's largest |w| lands on 127 (full) or 64 (reduced): 255*64*2 fits int16.
    EXPECT_EQ(max_full, 127) << op;
    EXPECT_EQ(max_reduced, 64) << op;
    // Same absmax per channel, so the scale grows by exactly 127/64 (up to float rounding).
    for (size_t c = 0; c < sr->numel(); ++c)
      EXPECT_NEAR(sr->data<float>()[c] / sf->data<float>()[c], 127.0 / 64.0, 1e-5) << op << c;
    // The default (auto): 7 bits for the Conv that reads the model input; the Gemm keeps 8 bits
    // but no K pair of its codes can saturate int16 against uint8 codes up to 192 (each row
    // of B [5, 12] is one output's K), which the full-range codes do.
    const auto [qa, sa] = weights(ea);
    int max_auto = 0;
    for (size_t i = 0; i < qa->numel(); ++i) max_auto = std::max(max_auto, std::abs(int{qa->data<int8_t>()[i]}));
    if (std::string(op) == "Conv") {
      EXPECT_EQ(max_auto, 64);
      continue;
    }
    EXPECT_LE(max_auto, 127);
    const auto worst_pair = [](const Tensor* q) {
      int worst = 0;
      for (size_t i = 0; i + 1 < q->numel(); i += 2) {
        const int a = q->data<int8_t>()[i], b = q->data<int8_t>()[i + 1];
        worst = std::max({worst, std::max(a, 0) + std::max(b, 0), -(std::min(a, 0) + std::min(b, 0))});
      }
      return worst;
    };
    EXPECT_LE(worst_pair(qa), 170);
    EXPECT_GT(worst_pair(qf), 170);  // the case exists in this model: the check can fail
  }
}

// A classifier's MatMul -> Add(bias) -> output: the MatMul writes float and the Add reads the
// bias as int32 codes at scale s_x * s_w[column] (ORT fuses the two into a QGemm; with a float
// bias it ran them as a float Gemm on weights dequantized at every run). Where the Add's output
// is no graph output (a quantized MatMul reads it), the first MatMul's output keeps its Q.
TEST(Emit, ClassifierMatMulWritesFloatLogitsWithAnInt32Bias) {
  const auto build = [](bool logits_out) {
    ir::Model m = onnx_io::parse_model_text(logits_out ? R"(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[2, 4] x, float[4, 3] mw, float[3] mb) => (float[2, 3] y) {
        h = Relu (x)
        l = MatMul (h, mw)
        y = Add (l, mb)
      }
    )" : R"(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[2, 4] x, float[4, 3] mw, float[3] mb, float[3, 2] mw2) => (float[2, 2] y) {
        h = Relu (x)
        l = MatMul (h, mw)
        a = Add (l, mb)
        y = MatMul (a, mw2)
      }
    )");
    ir::Graph& g = m.graph;
    g.set_initializer(g.find("mw"), random_tensor({4, 3}, 5));
    g.set_initializer(g.find("mb"), random_tensor({3}, 6));
    if (!logits_out) g.set_initializer(g.find("mw2"), random_tensor({3, 2}, 7));
    passes::prepare_for_quantization(m);
    return m;
  };
  const quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
  const std::vector<Tensor> xs = {random_tensor({2, 4}, 8), random_tensor({2, 4}, 9)};
  const auto quantized = [&](ir::Model m) {
    const passes::RangeMap ranges = observe_ranges(m, xs);
    emit_qdq(m, passes::plan_quantization(m.graph, c, ranges), ranges, c);
    ir::verify(m);
    return m;
  };
  const ir::Model fp32 = build(true);
  const ir::Model q = quantized(build(true));
  const ir::Graph& g = q.graph;
  const ir::Node& mm = consumer_of(g, "MatMul");
  ASSERT_EQ(g.value(mm.outputs[0]).uses.size(), 1u);
  const ir::Node& add = g.node(g.value(mm.outputs[0]).uses.front().node);
  EXPECT_EQ(add.op_type, "Add") << "no Q/DQ between the MatMul and its bias Add";
  const ir::Node* bdq = g.producer(add.inputs[1]);
  ASSERT_NE(bdq, nullptr);
  ASSERT_EQ(bdq->op_type, "DequantizeLinear");
  EXPECT_EQ(g.constant(bdq->inputs[0])->dtype(), DType::kInt32);
  const Tensor& bs = *g.constant(bdq->inputs[1]);
  const Tensor& xs_ = *g.constant(g.producer(mm.inputs[0])->inputs[1]);
  const Tensor& ws = *g.constant(g.producer(mm.inputs[1])->inputs[1]);
  ASSERT_EQ(bs.numel(), 3u);
  ASSERT_EQ(ws.numel(), 3u);
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(bs.data<float>()[k], xs_.data<float>()[0] * ws.data<float>()[k]);
  EXPECT_EQ(g.producer(g.outputs[0])->op_type, "Add");
  for (const Tensor& x : xs) {
    const Tensor a = runtime::Interpreter(fp32, {.threads = 1}).run({{"x", x}})[0];
    const Tensor b = runtime::Interpreter(q, {.threads = 1}).run({{"x", x}})[0];
    for (size_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 0.05);
  }
  // ptq's integer-kernel mode runs that MatMul as ORT does (MatMulIntegerToFloat, not on
  // weights dequantized at every run), and agrees with the graph's own arithmetic.
  bool fused = false;
  for (const runtime::FusedGroup& f : runtime::find_fused_groups(g))
    fused = fused || (f.anchor == mm.id && f.op_type == "MatMulIntegerToFloat" && f.outputs == std::vector{mm.outputs[0]});
  EXPECT_TRUE(fused);
  for (const Tensor& x : xs) {
    const Tensor a = runtime::Interpreter(q, {.threads = 1}).run({{"x", x}})[0];
    const Tensor b =
        runtime::Interpreter(q, {.threads = 1, .qdq_mode = runtime::QdqMode::kIntegerKernel}).run({{"x", x}})[0];
    for (size_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.data<float>()[i], b.data<float>()[i], 1e-5);
  }
  // Not logits: the first MatMul's output is quantized as before.
  const ir::Model q2 = quantized(build(false));
  const ir::Node& mm1 = consumer_of(q2.graph, "MatMul");
  for (const ir::Use& u : q2.graph.value(mm1.outputs[0]).uses)
    EXPECT_EQ(q2.graph.node(u.node).op_type, "QuantizeLinear");
}

// Pairs follow ORT's kernel order: for Conv the NHWC im2col order k = (ky·kw + kx)·C + c, where
// W[0, :, 0, :] = [[1, 1], [-1, -1]] pairs (1, -1) twice (no raise; in NCHW order it would pair
// (1, 1)); for MatMul the rows of B in order, where B[:, 0] = [1, 1] is one same-sign pair
// (scale 2/169 instead of 1/127: its codes sum to at most 170) and B[:, 1] = [0.5, -0.5] is not.
TEST(Emit, PairSafeScalesFollowOrtsKernelOrder) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 3] x, float[2, 2, 1, 1] w0, float[1, 2, 1, 2] w, float[2, 2] mw) => (float[1, 1, 3, 2] y) {
      c0 = Conv (x, w0)
      c = Conv (c0, w)
      y = MatMul (c, mw)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w0"), Tensor::from_vector<float>({2, 2, 1, 1}, {1, 0.5f, -0.5f, 1}));
  g.set_initializer(g.find("w"), Tensor::from_vector<float>({1, 2, 1, 2}, {1, 1, -1, -1}));
  g.set_initializer(g.find("mw"), Tensor::from_vector<float>({2, 2}, {1, 0.5f, 1, -0.5f}));
  passes::prepare_for_quantization(m);
  passes::RangeMap ranges = {{"x", {0.f, 1.f}}, {"c0", {-1.f, 2.f}}, {"c", {-4.f, 4.f}}, {"y", {-8.f, 8.f}}};
  const quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
  emit_qdq(m, passes::plan_quantization(g, c, ranges), ranges, c);
  const auto scales = [&](const char* w_name) {
    for (ir::NodeId id : g.node_ids()) {
      const ir::Node& n = g.node(id);
      if (n.op_type != "Conv" && n.op_type != "MatMul") continue;
      const ir::Node* dq = g.producer(n.inputs[1]);
      if (g.value(dq->inputs[0]).name.rfind(w_name, 0) == 0) return *g.constant(dq->inputs[1]);
    }
    throw std::runtime_error(std::string("no weight ") + w_name);
  };
  const Tensor sw = scales("w_"), smw = scales("mw");
  ASSERT_EQ(sw.numel(), 1u);
  EXPECT_NEAR(sw.data<float>()[0], 1.0 / 127, 1e-6);
  ASSERT_EQ(smw.numel(), 2u);
  EXPECT_NEAR(smw.data<float>()[0], 2.0 / 169, 1e-6);
  EXPECT_NEAR(smw.data<float>()[1], 0.5 / 127, 1e-6);
}

// With per-channel maxima on the input's range, each K pair is bounded by its own channels'
// codes (at least 128, which never binds alone): c0's channels 0 and 1 reach code 255, channels 2
// and 3 code 32 (floored to 128). Output 0 = [1, 1, 1, 1] pairs two 255-code channels: its codes
// must sum to at most 32767 / 255, which the 192 rule's scale (2/169, codes 84 + 84) breaks.
// Output 1 = [0.01, 0.01, 1, 1] keeps the plain scale 1/127, which the 192 rule would raise.
TEST(Emit, PairSafeScalesFollowPerChannelMaxima) {
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 2, 2] x, float[4, 4, 1, 1] w0, float[2, 4, 1, 1] w) => (float[1, 2, 2, 2] y) {
      c0 = Conv (x, w0)
      y = Conv (c0, w)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w0"), Tensor::from_vector<float>({4, 4, 1, 1}, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  g.set_initializer(g.find("w"), Tensor::from_vector<float>({2, 4, 1, 1}, {1, 1, 1, 1, 0.01f, 0.01f, 1, 1}));
  passes::prepare_for_quantization(m);
  passes::RangeMap ranges = {
      {"x", {0.f, 4.f}}, {"c0", {0.f, 4.f, {4.f, 4.f, 0.5f, 0.5f}}}, {"y", {-8.f, 8.f}}};
  const quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
  emit_qdq(m, passes::plan_quantization(g, c, ranges), ranges, c);
  const ir::Node* dq = nullptr;
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    const ir::Node* p = n.op_type == "Conv" ? g.producer(n.inputs[1]) : nullptr;
    if (p && g.value(p->inputs[0]).name.rfind("w_", 0) == 0) dq = p;
  }
  ASSERT_NE(dq, nullptr);
  const Tensor& q = *g.constant(dq->inputs[0]);
  const Tensor& s = *g.constant(dq->inputs[1]);
  ASSERT_EQ(s.numel(), 2u);
  EXPECT_NEAR(s.data<float>()[0], 510.0 / 32512, 1e-6);
  EXPECT_NEAR(s.data<float>()[1], 1.0 / 127, 1e-7);
  // No pair of either output saturates int16 at its channels' codes.
  const int codes[4] = {255, 255, 128, 128};
  for (int o = 0; o < 2; ++o)
    for (int j = 0; j < 2; ++j) {
      int pos = 0, neg = 0;
      for (int k = 2 * j; k < 2 * j + 2; ++k) {
        const int w = q.data<int8_t>()[o * 4 + k];
        (w > 0 ? pos : neg) += codes[k] * std::abs(w);
      }
      EXPECT_LE(std::max(pos, neg), 32767) << "output " << o << " pair " << j;
    }
  EXPECT_EQ(q.data<int8_t>()[6], 127) << "output 1 keeps full-range codes";
}

TEST(Emit, MaxPoolSharesItsInputScale) {
  const Emitted e = quantize(quant::config_for(quant::Target::kOrtX86));
  const ir::Graph& g = e.model.graph;
  const ir::Node& pool = consumer_of(g, "MaxPool");
  const ir::Node* in_dq = g.producer(pool.inputs[0]);
  const ir::Node& out_q = g.node(g.value(pool.outputs[0]).uses.at(0).node);
  EXPECT_EQ(in_dq->inputs[1], out_q.inputs[1]) << "same scale initializer";
  EXPECT_EQ(in_dq->inputs[2], out_q.inputs[2]) << "same zero point initializer";
}

TEST(Emit, QdqModelStaysCloseToFp32) {
  const ir::Model fp32 = small_cnn();
  const Emitted e = quantize(quant::config_for(quant::Target::kOrtX86));
  for (const Tensor& x : inputs()) {
    const Tensor a = run(fp32, x), b = run(e.model, x);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.numel(); ++i) {
      const double d = a.data<float>()[i] - b.data<float>()[i];
      num += d * d;
      den += static_cast<double>(a.data<float>()[i]) * a.data<float>()[i];
    }
    EXPECT_GT(10 * std::log10(den / num), 25.0) << "SQNR in dB";
  }
}

TEST(Emit, TrtProfileUsesInt8SymmetricZeroPointsAndKeepsRelu) {
  const Emitted e = quantize(quant::config_for(quant::Target::kTrt));
  const ir::Graph& g = e.model.graph;
  EXPECT_EQ(ir::graph_stats(g).op_histogram.count("Relu"), 1u);
  size_t checked = 0;
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    if (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") continue;
    const Tensor* zp = g.constant(n.inputs[2]);
    ASSERT_NE(zp, nullptr);
    if (n.op_type == "QuantizeLinear") {
      EXPECT_EQ(zp->dtype(), DType::kInt8);
    }
    for (size_t i = 0; i < zp->numel(); ++i) {
      const int64_t v = zp->dtype() == DType::kInt32 ? zp->data<int32_t>()[i] : zp->data<int8_t>()[i];
      EXPECT_EQ(v, 0) << n.name;
    }
    ++checked;
  }
  EXPECT_GT(checked, 5u);
}

TEST(Emit, ExcludedNodesStayFp32) {
  quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
  c.exclude_ops = {"Gemm"};
  const Emitted e = quantize(c);
  const ir::Graph& g = e.model.graph;
  const ir::Node& gemm = consumer_of(g, "Gemm");
  EXPECT_TRUE(g.constant(gemm.inputs[1]) && g.constant(gemm.inputs[1])->dtype() == DType::kFloat);
}

TEST(Emit, ConcatAndPoolsReadOnlyByFp32NodesStayFp32) {
  // YOLOX's Focus stem: slices of the input concatenated for a Conv the placement search keeps
  // fp32. Quantized, the Concat would only round the image twice (its inputs and its output).
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x, float[2, 2, 3, 3] w1, float[2, 2, 3, 3] w2, float[3, 4, 3, 3] w3, int64[4] shape)
      => (float[1, 3, 2, 2] y) {
      a = Conv <pads = [1, 1, 1, 1]> (x, w1)
      b = Conv <pads = [1, 1, 1, 1]> (x, w2)
      k = Concat <axis = 1> (a, b)
      p = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (k)
      r = Reshape (p, shape)
      y = Conv <pads = [1, 1, 1, 1]> (r, w3)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w1"), random_tensor({2, 2, 3, 3}, 1));
  g.set_initializer(g.find("w2"), random_tensor({2, 2, 3, 3}, 2));
  g.set_initializer(g.find("w3"), random_tensor({3, 4, 3, 3}, 3));
  g.set_initializer(g.find("shape"), Tensor::from_vector<int64_t>({4}, {1, 4, 2, 2}));
  passes::prepare_for_quantization(m);
  const passes::RangeMap ranges = {{"x", {-1.f, 1.f}}, {"a", {-2.f, 2.f}}, {"b", {-2.f, 2.f}}, {"k", {-2.f, 2.f}},
                                   {"p", {-2.f, 2.f}}, {"r", {-2.f, 2.f}}, {"y", {-3.f, 3.f}}};
  const auto planned = [&](const passes::NodeFilter& f) {
    std::multiset<std::string> ops;
    const passes::QuantPlan plan = passes::plan_quantization(g, quant::config_for(quant::Target::kOrtX86), ranges, f);
    for (const passes::NodeQuant& q : plan.nodes) ops.insert(g.node(q.node).op_type);
    std::set<std::string> acts;
    for (ir::ValueId v : plan.activations) acts.insert(g.value(v).name);
    return std::make_pair(ops, acts);
  };
  // Everything quantized: the Concat and the MaxPool carry integers to the last Conv (through
  // the Reshape, a passthrough op).
  const auto all = planned({});
  EXPECT_EQ(all.first, (std::multiset<std::string>{"Conv", "Conv", "Concat", "MaxPool", "Conv"}));
  EXPECT_EQ(all.second, (std::set<std::string>{"x", "a", "b", "k", "p", "r", "y"}));
  // The last Conv fp32: the MaxPool and Concat feeding it stay fp32 too; the first Convs still
  // read a quantized x and write quantized outputs (QLinearConv's), which the Concat dequantizes.
  passes::NodeFilter f;
  f.fp32.insert(g.producer(g.find("y"))->id);
  const auto cut = planned(f);
  EXPECT_EQ(cut.first, (std::multiset<std::string>{"Conv", "Conv"}));
  EXPECT_EQ(cut.second, (std::set<std::string>{"x", "a", "b"}));
}

TEST(Emit, ReshapeBetweenQuantizedNodesSharesOneScale) {
  // YOLOX's head: Concat -> Reshape -> Concat -> Transpose. The Reshape's output is a quantized Concat's input
  // and its input a quantized Concat's output: one scale for both, or ORT runs DQ -> Reshape -> Q
  // in float to requantize the same values (it drops the pair only when the two match). A Slice
  // keeps part of its input's values: read by a quantized node, its output keeps its own range.
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x, float[2, 2, 3, 3] w1, float[2, 2, 3, 3] w2, int64[3] shape, int64[3] shape2,
       int64[1] st, int64[1] en, int64[1] ax) => (float[1, 40, 2] out) {
      a = Conv <pads = [1, 1, 1, 1]> (x, w1)
      b = Conv <pads = [1, 1, 1, 1]> (x, w2)
      k = Concat <axis = 1> (a, b)
      r = Reshape (k, shape)
      b2 = Reshape (x, shape2)
      c = Slice (b2, st, en, ax)
      y = Concat <axis = 2> (r, c)
      out = Transpose <perm = [0, 2, 1]> (y)
    }
  )");
  ir::Graph& g = m.graph;
  g.set_initializer(g.find("w1"), random_tensor({2, 2, 3, 3}, 1));
  g.set_initializer(g.find("w2"), random_tensor({2, 2, 3, 3}, 2));
  g.set_initializer(g.find("shape"), Tensor::from_vector<int64_t>({3}, {1, 2, -1}));
  g.set_initializer(g.find("shape2"), Tensor::from_vector<int64_t>({3}, {1, 2, -1}));
  g.set_initializer(g.find("st"), Tensor::from_vector<int64_t>({1}, {0}));
  g.set_initializer(g.find("en"), Tensor::from_vector<int64_t>({1}, {8}));
  g.set_initializer(g.find("ax"), Tensor::from_vector<int64_t>({1}, {2}));
  passes::prepare_for_quantization(m);
  const passes::RangeMap ranges = {{"x", {-1.f, 1.f}}, {"a", {-2.f, 2.f}}, {"b", {-3.f, 3.f}}, {"k", {-3.f, 3.f}},
                                   {"r", {-3.f, 3.f}},  {"b2", {-1.f, 1.f}}, {"c", {-1.f, 1.f}}, {"y", {-3.f, 3.f}},
                                   {"out", {-3.f, 3.f}}};
  const passes::QuantPlan plan = passes::plan_quantization(g, quant::config_for(quant::Target::kOrtX86), ranges);
  const auto group = [&](const char* name) {
    const ir::ValueId v = g.find(name);
    const auto it = plan.tied.find(v);
    return g.value(it == plan.tied.end() ? v : it->second).name;
  };
  EXPECT_EQ(group("r"), group("k"));
  EXPECT_EQ(group("y"), group("k"));
  EXPECT_EQ(group("a"), group("k"));
  EXPECT_EQ(group("c"), group("k"));   // the Concat's input
  EXPECT_EQ(group("b2"), group("x"));  // the Reshape nothing quantized reads: as before
  EXPECT_NE(group("x"), group("k"));   // the Slice's input keeps its own
}

TEST(Emit, AddAndMulAreInt8OnlyWithElementwiseInt8OrForTensorRt) {
  // Conv -> Mul by a constant -> residual Add: fp32 between the DQs and the next Q by default.
  // (The constant varies along the width, so preparation does not fold it into the Conv.)
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x, float[2, 2, 3, 3] w) => (float[1, 2, 4, 4] y) {
      s = Constant <value = float[4] {0.5, 0.25, 0.5, 0.25}> ()
      c = Conv <pads = [1, 1, 1, 1]> (x, w)
      m = Mul (c, s)
      y = Add (m, x)
    }
  )");
  m.graph.set_initializer(m.graph.find("w"), random_tensor({2, 2, 3, 3}, 1));
  passes::prepare_for_quantization(m);
  const passes::RangeMap ranges = {{"x", {-1.f, 1.f}}, {"c", {-2.f, 2.f}}, {"m", {-1.f, 1.f}}, {"y", {-2.f, 2.f}}};
  const auto planned_ops = [&](const quant::QuantConfig& c) {
    std::set<std::string> ops;
    for (const passes::NodeQuant& q : passes::plan_quantization(m.graph, c, ranges).nodes)
      ops.insert(m.graph.node(q.node).op_type);
    return ops;
  };
  quant::QuantConfig ort = quant::config_for(quant::Target::kOrtX86);
  EXPECT_EQ(planned_ops(ort), (std::set<std::string>{"Conv"}));
  ort.quantize_elementwise = true;
  EXPECT_EQ(planned_ops(ort), (std::set<std::string>{"Conv", "Mul", "Add"}));
  EXPECT_EQ(planned_ops(quant::config_for(quant::Target::kTrt)), (std::set<std::string>{"Conv", "Mul", "Add"}));
}

TEST(Emit, SiluMulStaysInt8WithElementwiseFp32) {
  // QLinearSigmoid -> QLinearMul keeps YOLOX's int8 model faster than fp32 in ORT.
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x, float[2, 2, 3, 3] w) => (float[1, 2, 4, 4] y) {
      c = Conv <pads = [1, 1, 1, 1]> (x, w)
      s = Sigmoid (c)
      y = Mul (s, c)
    }
  )");
  m.graph.set_initializer(m.graph.find("w"), random_tensor({2, 2, 3, 3}, 1));
  passes::prepare_for_quantization(m);
  const passes::RangeMap ranges = {{"x", {-1.f, 1.f}}, {"c", {-2.f, 2.f}}, {"s", {0.f, 1.f}}, {"y", {-0.3f, 2.f}}};
  std::set<std::string> ops;
  for (const passes::NodeQuant& q : passes::plan_quantization(m.graph, quant::config_for(quant::Target::kOrtX86), ranges).nodes)
    ops.insert(m.graph.node(q.node).op_type);
  EXPECT_EQ(ops, (std::set<std::string>{"Conv", "Sigmoid", "Mul"}));
}

// PP-OCRv4-rec's LCNet block: Conv -> HardSwish written out as Add(3), Clip(0, 6), Mul -> scale
// and shift -> Conv. The HardSwish runs as QLinearAdd (the Clip is its Q's range) and QLinearMul,
// whose Q takes the next Conv's input grid divided by the scale, the shift in its zero point and
// the Conv's bias: no float op is left between the pairs, and the output stays close.
TEST(Emit, WrittenOutHardSwishIsInt8AndItsAffineTailFoldsIntoTheQdqPair) {
  const char* text = R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 6, 6] x, float[4, 2, 3, 3] w, float[4] b, float[3, 4, 1, 1] w2, float[3] b2) => (float[1, 3, 6, 6] y)
        <float three = {3.0}, float zero = {0.0}, float six = {6.0}, float[1] s = {0.03}, float[1] t = {-0.2}> {
      c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
      a = Add (c, three)
      k = Clip (a, zero, six)
      h = Mul (c, k)
      m = Mul (h, s)
      o = Add (m, t)
      y = Conv (o, w2, b2)
    }
  )";
  const auto make = [&] {
    ir::Model m = onnx_io::parse_model_text(text);
    ir::Graph& g = m.graph;
    g.set_initializer(g.find("w"), random_tensor({4, 2, 3, 3}, 1));
    g.set_initializer(g.find("b"), random_tensor({4}, 2));
    g.set_initializer(g.find("w2"), random_tensor({3, 4, 1, 1}, 3));
    g.set_initializer(g.find("b2"), random_tensor({3}, 4));
    passes::prepare_for_quantization(m);
    return m;
  };
  std::vector<Tensor> xs;
  for (uint32_t seed = 20; seed < 28; ++seed) xs.push_back(random_tensor({1, 2, 6, 6}, seed, -2.f, 2.f));
  const ir::Model fp32 = make();
  const auto emitted = [&](const quant::QuantConfig& config) {
    Emitted e{make(), {}};
    passes::RangeMap ranges = observe_ranges(e.model, xs);
    passes::fold_activations_into_quantized_producers(e.model.graph, config, ranges);
    e.summary = emit_qdq(e.model, passes::plan_quantization(e.model.graph, config, ranges), ranges, config);
    ir::verify(e.model);
    return e;
  };
  const auto sqnr = [&](const ir::Model& q) {
    double signal = 0, noise = 0;
    for (const Tensor& x : xs) {
      const Tensor r = run(fp32, x), v = run(q, x);
      for (size_t i = 0; i < r.numel(); ++i) {
        signal += double(r.data<float>()[i]) * r.data<float>()[i];
        noise += std::pow(double(v.data<float>()[i]) - r.data<float>()[i], 2);
      }
    }
    return 10 * std::log10(signal / noise);
  };
  quant::QuantConfig config = quant::config_for(quant::Target::kOrtX86);
  const Emitted e = emitted(config);
  const ir::Graph& g = e.model.graph;
  EXPECT_EQ(e.summary.affine_tails, 1u);
  auto hist = ir::graph_stats(g).op_histogram;
  hist.erase("QuantizeLinear"), hist.erase("DequantizeLinear");
  EXPECT_EQ(hist, (std::map<std::string, size_t>{{"Conv", 2}, {"Add", 1}, {"Mul", 1}}));
  std::set<std::string> fused;
  for (const runtime::FusedGroup& f : runtime::find_fused_groups(g)) fused.insert(f.op_type);
  EXPECT_EQ(fused, (std::set<std::string>{"QLinearConv", "QLinearAdd", "QLinearMul"}));
  // The Mul's Q: the second Conv's input scale / 0.03, read back through that Conv's DQ.
  const ir::Node& mul = consumer_of(g, "Mul");
  const ir::Node& q = g.node(g.value(mul.outputs[0]).uses.at(0).node);
  ASSERT_EQ(q.op_type, "QuantizeLinear");
  const ir::Node& dq = g.node(g.value(q.outputs[0]).uses.at(0).node);
  ASSERT_EQ(dq.op_type, "DequantizeLinear");
  EXPECT_EQ(g.node(g.value(dq.outputs[0]).uses.at(0).node).op_type, "Conv");
  EXPECT_NEAR(g.constant(q.inputs[1])->data<float>()[0] * 0.03, g.constant(dq.inputs[1])->data<float>()[0], 1e-6);
  const double int8 = sqnr(e.model);
  EXPECT_GT(int8, 30.0);
  // The same graph with the HardSwish in float between the pairs is not closer (42.0 vs 42.6 dB; the
  // shift's rounding compensated with the wrong sign measured 40.8).
  config.quantize_hardswish = false;
  const Emitted f = emitted(config);
  EXPECT_GT(int8, sqnr(f.model) - 1.0);
  // Float, it runs as x·HardSigmoid(x) between the Conv's pair and the next Conv's: the Add and Clip
  // become one HardSigmoid, the 6 and the Mul's 0.03 go into the product's Q scale, and the shift
  // stays a float Add of -0.2 / (6·0.03) before it, out's grid in the product's terms (no rounding
  // moved into the Conv's bias, which would be wrong where a Conv reads padding).
  EXPECT_EQ(f.summary.float_hardswishes, 1u);
  EXPECT_EQ(f.summary.affine_tails, 0u);
  hist = ir::graph_stats(f.model.graph).op_histogram;
  hist.erase("QuantizeLinear"), hist.erase("DequantizeLinear");
  EXPECT_EQ(hist, (std::map<std::string, size_t>{{"Conv", 2}, {"HardSigmoid", 1}, {"Mul", 1}, {"Add", 1}}));
  const ir::Graph& fg = f.model.graph;
  const ir::Node& add = consumer_of(fg, "Add");
  EXPECT_NEAR(fg.constant(add.inputs[1])->data<float>()[0], -0.2 / (6 * 0.03), 1e-5);
  const ir::Node& fq = fg.node(fg.value(add.outputs[0]).uses.at(0).node);
  ASSERT_EQ(fq.op_type, "QuantizeLinear");
  const ir::Node& fdq = fg.node(fg.value(fq.outputs[0]).uses.at(0).node);
  EXPECT_NEAR(fg.constant(fq.inputs[1])->data<float>()[0] * 6 * 0.03, fg.constant(fdq.inputs[1])->data<float>()[0], 1e-6);
  EXPECT_EQ(fg.constant(fq.inputs[2])->data<uint8_t>()[0], fg.constant(fdq.inputs[2])->data<uint8_t>()[0]);
  EXPECT_GT(sqnr(f.model), 38.0);
}

TEST(Emit, HugeBiasRaisesTheWeightScaleInsteadOfOverflowing) {
  // Channel 0 is a "dead" channel after BatchNormalization folding: tiny weights, large bias.
  ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8, 2, 2] x, float[2, 8, 1, 1] w, float[2] b) => (float[1, 2, 2, 2] y) {
      y = Conv (x, w, b)
    }
  )");
  ir::Graph& g = m.graph;
  std::vector<float> wv(16, 2e-5f);
  std::fill(wv.begin() + 8, wv.end(), 0.5f);
  g.set_initializer(g.find("w"), Tensor::from_vector<float>({2, 8, 1, 1}, wv));
  g.set_initializer(g.find("b"), Tensor::from_vector<float>({2}, {50.f, 0.1f}));
  passes::prepare_for_quantization(m);
  passes::RangeMap ranges = {{"x", {0.f, 5.1f}}, {"y", {-1.f, 60.f}}};
  const quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
  const EmitSummary s = emit_qdq(m, passes::plan_quantization(g, c, ranges), ranges, c);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("raised the weight scale of 1 channel"), std::string::npos);
  const ir::Node& conv = consumer_of(g, "Conv");
  const Tensor* bq = g.constant(g.producer(conv.inputs[2])->inputs[0]);
  const Tensor* bs = g.constant(g.producer(conv.inputs[2])->inputs[1]);
  // The bias is represented, not clipped: q * scale gives back 50 within a step.
  EXPECT_NEAR(bq->data<int32_t>()[0] * static_cast<double>(bs->data<float>()[0]), 50.0, bs->data<float>()[0]);
  // And it leaves the int32 accumulator room for the 8 products of an output (|x - z| <= 255,
  // |w| <= 128): ORT's fused kernel adds them in int32, and a bias at the edge wrapped around.
  EXPECT_LE(std::abs(static_cast<int64_t>(bq->data<int32_t>()[0])) + 8 * 255 * 128, int64_t{2147483647});
  // Integer kernels (ORT's arithmetic) agree with the graph's meaning at the largest input
  // (with a bias at the edge of int32, channel 0 wrapped to a large negative value).
  Tensor x = Tensor::empty(DType::kFloat, {1, 8, 2, 2});
  for (size_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = 5.1f;
  runtime::Interpreter fake(m, {.threads = 1});
  runtime::Interpreter integer(m, {.threads = 1, .qdq_mode = runtime::QdqMode::kIntegerKernel});
  const Tensor yf = fake.run({{"x", x}})[0], yi = integer.run({{"x", x}})[0];
  for (size_t i = 0; i < yf.numel(); ++i) EXPECT_NEAR(yi.data<float>()[i], yf.data<float>()[i], 0.5) << i;
}


// --uint8-weights (quant_config.h): kOn stores the weights of every Conv and Gemm ORT runs through
// its u8×s8 GEMM as uint8 codes 0..254 at zero point 127 on the full grid (the stem's 7 bits and
// the pair-safe scales go: ORT's u8×u8 kernels cannot saturate), and leaves the depthwise Conv
// int8; kWhereCoarse takes the stem (7 bits cost 6 dB of weight noise); an unresolved kAuto is
// off. With the stem at 8 bits the output measures closer to fp32.
TEST(Emit, Uint8WeightsTakeTheFullGridOnGemmPathsOnly) {
  const auto model = [] {
    ir::Model m = onnx_io::parse_model_text(R"(
      <ir_version: 8, opset_import: ["" : 13]>
      g (float[1, 2, 6, 6] x, float[4, 2, 3, 3] w, float[4, 1, 3, 3] dw, float[3, 4, 1, 1] pw) => (float[1, 3, 6, 6] y) {
        c = Conv <pads = [1, 1, 1, 1]> (x, w)
        r = Relu (c)
        d = Conv <pads = [1, 1, 1, 1], group = 4> (r, dw)
        r2 = Relu (d)
        y = Conv (r2, pw)
      }
    )");
    ir::Graph& g = m.graph;
    g.set_initializer(g.find("w"), random_tensor({4, 2, 3, 3}, 21));
    g.set_initializer(g.find("dw"), random_tensor({4, 1, 3, 3}, 22));
    g.set_initializer(g.find("pw"), random_tensor({3, 4, 1, 1}, 23));
    passes::prepare_for_quantization(m);
    return m;
  };
  std::vector<Tensor> xs;
  for (uint32_t s = 30; s < 34; ++s) xs.push_back(random_tensor({1, 2, 6, 6}, s));
  const ir::Model fp32 = model();
  const passes::RangeMap observed = observe_ranges(fp32, xs);
  const auto build = [&](quant::Uint8Weights mode) {
    Emitted e{model(), {}};
    quant::QuantConfig c = quant::config_for(quant::Target::kOrtX86);
    c.uint8_weights = mode;
    passes::RangeMap ranges = observed;
    passes::fold_activations_into_quantized_producers(e.model.graph, c, ranges);
    e.summary = emit_qdq(e.model, passes::plan_quantization(e.model.graph, c, ranges), ranges, c);
    ir::verify(e.model);
    return e;
  };
  // The weight codes of the Conv whose weight initializer was named `w_name`, and their zero points.
  const auto weights = [](const Emitted& e, const std::string& w_name) {
    const ir::Graph& g = e.model.graph;
    for (ir::NodeId id : g.node_ids()) {
      const ir::Node& n = g.node(id);
      const ir::Node* dq = n.op_type == "Conv" ? g.producer(n.inputs[1]) : nullptr;
      if (dq && g.value(dq->inputs[0]).name.rfind(w_name + "_", 0) == 0)
        return std::pair{*g.constant(dq->inputs[0]), *g.constant(dq->inputs[2])};
    }
    throw std::runtime_error("no weight " + w_name);
  };
  const Emitted on = build(quant::Uint8Weights::kOn), coarse = build(quant::Uint8Weights::kWhereCoarse),
                off = build(quant::Uint8Weights::kOff), unresolved = build(quant::Uint8Weights::kAuto);
  EXPECT_EQ(on.summary.uint8_weights, 2u);
  for (const char* name : {"w", "pw"}) {
    const auto [q, z] = weights(on, name);
    ASSERT_EQ(q.dtype(), DType::kUint8) << name;
    for (size_t c = 0; c < z.numel(); ++c) EXPECT_EQ(z.data<uint8_t>()[c], 127) << name;
    // Per output channel the largest |w| lands on code 0 or 254: the full symmetric grid.
    const size_t per = q.numel() / z.numel();
    for (size_t c = 0; c < z.numel(); ++c) {
      int widest = 0;
      for (size_t i = c * per; i < (c + 1) * per; ++i) widest = std::max(widest, std::abs(q.data<uint8_t>()[i] - 127));
      EXPECT_EQ(widest, 127) << name << " channel " << c;
    }
  }
  EXPECT_EQ(weights(on, "dw").first.dtype(), DType::kInt8);
  EXPECT_EQ(weights(coarse, "w").first.dtype(), DType::kUint8);
  for (const Emitted* e : {&off, &unresolved}) {
    EXPECT_EQ(e->summary.uint8_weights, 0u);
    for (const char* name : {"w", "dw", "pw"}) EXPECT_EQ(weights(*e, name).first.dtype(), DType::kInt8) << name;
  }
  const auto sqnr = [&](const ir::Model& q) {
    double num = 0, den = 0;
    for (const Tensor& x : xs) {
      const Tensor a = run(fp32, x), b = run(q, x);
      for (size_t i = 0; i < a.numel(); ++i) {
        const double d = a.data<float>()[i] - b.data<float>()[i];
        num += d * d;
        den += static_cast<double>(a.data<float>()[i]) * a.data<float>()[i];
      }
    }
    return 10 * std::log10(den / num);
  };
  EXPECT_GT(sqnr(on.model), sqnr(off.model));
}

}  // namespace ptq::emit
