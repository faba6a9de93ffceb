// Issue 12 regressions at library level: integer Div/Mod traps, hostile shape arithmetic,
// oversized outputs, zero-width Resize, unusable calibrated ranges, graph scaling.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/prepare.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/runtime/interpreter.h"
#include "testutil.h"

namespace ptq {
namespace {

std::vector<Tensor> run_text(const std::string& text, const std::map<std::string, Tensor>& in = {}) {
  const ir::Model m = onnx_io::parse_model_text(text);
  runtime::Interpreter interpreter(m, {.threads = 1});
  return interpreter.run(in);
}

// The error a run throws (with the node context the interpreter adds), or "" when it succeeds.
template <typename E>
std::string run_error(const std::string& text) {
  try {
    run_text(text);
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

TEST(HostileKernels, IntegerDivModOfMinByMinusOneWraps) {
  // INT_MIN / -1 and INT_MIN % -1 raised SIGFPE on x86.
  const auto out = run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (int32[2] q, int32[2] r, int64[1] q64, int64[1] r64)
      <int32[2] a = {-2147483648, 7}, int32[2] b = {-1, -1},
       int64[1] c = {-9223372036854775808}, int64[1] d = {-1}> {
      q = Div (a, b)
      r = Mod (a, b)
      q64 = Div (c, d)
      r64 = Mod <fmod = 1> (c, d)
    })");
  EXPECT_EQ(out[0].data<int32_t>()[0], std::numeric_limits<int32_t>::min());  // two's complement wrap
  EXPECT_EQ(out[0].data<int32_t>()[1], -7);
  EXPECT_EQ(out[1].data<int32_t>()[0], 0);
  EXPECT_EQ(out[1].data<int32_t>()[1], 0);
  EXPECT_EQ(out[2].data<int64_t>()[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(out[3].data<int64_t>()[0], 0);
}

TEST(HostileKernels, IntegerDivisionByZeroNamesTheNode) {
  const std::string m = run_error<ModelError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (int32[1] q) <int32[1] a = {-2147483648}, int32[1] b = {0}> {
      q = Div (a, b)
    })");
  EXPECT_NE(m.find("integer division by zero"), std::string::npos) << m;
  EXPECT_NE(m.find("(Div)"), std::string::npos) << m;
}

TEST(HostileKernels, SignedOverflowWrapsInAddMul) {
  const auto out = run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (int32[1] s, int32[1] p) <int32[1] a = {2147483647}, int32[1] b = {2}> {
      s = Add (a, b)
      p = Mul (a, b)
    })");
  EXPECT_EQ(out[0].data<int32_t>()[0], std::numeric_limits<int32_t>::min() + 1);
  EXPECT_EQ(out[1].data<int32_t>()[0], -2);
}

TEST(HostileKernels, HugeConstantOfShapeNamesNodeAndShape) {
  // A 200-byte model asking for 2^40 floats: a bare "out of memory" before.
  const std::string m = run_error<UnsupportedError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[1, 1099511627776] y) <int64[2] s = {1, 1099511627776}> {
      y = ConstantOfShape (s)
    })");
  EXPECT_NE(m.find("ConstantOfShape"), std::string::npos) << m;
  EXPECT_NE(m.find("[1,1099511627776]"), std::string::npos) << m;
}

TEST(HostileKernels, ShapeArithmeticOverflowIsAnError) {
  // Tile repeats whose product overflows int64 (UBSan: signed overflow in Tile).
  std::string m = run_error<ModelError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[?, ?] y) <float[2, 2] x = {1, 2, 3, 4}, int64[2] r = {4611686018427387904, 4611686018427387904}> {
      y = Tile (x, r)
    })");
  EXPECT_NE(m.find("overflows"), std::string::npos) << m;
  // Pad by 2^62 on both sides.
  m = run_error<ModelError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[?] y) <float[2] x = {1, 2}, int64[2] p = {4611686018427387904, 4611686018427387904}> {
      y = Pad (x, p)
    })");
  EXPECT_NE(m.find("overflows"), std::string::npos) << m;
  // MaxPool with dilations of 2^62.
  m = run_error<ModelError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[1, 1, ?] y) <float[1, 1, 4] x = {1, 2, 3, 4}> {
      y = MaxPool <kernel_shape = [3], dilations = [4611686018427387904]> (x)
    })");
  EXPECT_NE(m.find("overflows"), std::string::npos) << m;
  // Range from -1e30 to 1e30: too many elements, refused before the (undefined) cast.
  m = run_error<UnsupportedError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[?] y) <float s = {-1e30}, float l = {1e30}, float d = {1}> {
      y = Range (s, l, d)
    })");
  EXPECT_NE(m.find("Range"), std::string::npos) << m;
}

TEST(HostileKernels, SliceWithExtremeStartsEndsAndSteps) {
  const auto out = run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[?] a, float[?] b, float[?] c)
      <float[4] x = {1, 2, 3, 4}, int64[1] lo = {-9223372036854775808}, int64[1] hi = {9223372036854775807},
       int64[1] big = {9223372036854775807}, int64[1] small = {-9223372036854775808}> {
      a = Slice (x, lo, hi, , big)
      b = Slice (x, hi, lo, , small)
      c = Slice (x, lo, hi)
    })");
  ASSERT_EQ(out[0].numel(), 1u);  // step INT64_MAX: the first element only
  EXPECT_EQ(out[0].data<float>()[0], 1.f);
  ASSERT_EQ(out[1].numel(), 1u);  // step INT64_MIN from the end: the last element only
  EXPECT_EQ(out[1].data<float>()[0], 4.f);
  EXPECT_EQ(out[2].numel(), 4u);
}

TEST(HostileKernels, ResizeOfZeroWidthAxisIsAnError) {
  // A heap over-read before: the taps of a length-0 axis pointed before the data.
  const std::string m = run_error<ModelError>(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (float[?, ?] y) <float[2, 0] x = {}, int64[2] s = {2, 4}> {
      y = Resize <mode = "linear"> (x, , , s)
    })");
  EXPECT_NE(m.find("length 0"), std::string::npos) << m;
}

TEST(HostileKernels, CastOfHugeFloatToIntSaturates) {
  const auto out = run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g () => (int32[3] y) <float[3] x = {3e38, -3e38, 5.5}> {
      y = Cast <to = 6> (x)
    })");
  EXPECT_EQ(out[0].data<int32_t>()[0], std::numeric_limits<int32_t>::max());
  EXPECT_EQ(out[0].data<int32_t>()[1], std::numeric_limits<int32_t>::min());
  EXPECT_EQ(out[0].data<int32_t>()[2], 5);
}

TEST(HostilePlan, UnusableRangesStayFp32WithAWarningNamingTheTensor) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) {
      l = Log (x)
      a = Add (l, x)
      y = Mul (a, x)
    })");
  passes::prepare_for_quantization(m);
  const float inf = std::numeric_limits<float>::infinity();
  passes::RangeMap ranges = {{"x", {0.f, 1.f}}, {"l", {-inf, 0.f}}, {"a", {-3e38f, 3e38f}}, {"y", {-1.f, 1.f}}};
  const passes::QuantPlan plan = passes::plan_quantization(m.graph, quant::QuantConfig{}, ranges);
  std::string fp32;
  for (const std::string& s : plan.fp32) fp32 += s + "\n";
  // l's range reaches inf (a mask-like value): l and what carries its values (a, then y) stay fp32.
  EXPECT_NE(fp32.find("tensor 'l'"), std::string::npos) << fp32;
  EXPECT_NE(fp32.find("2 tensors computed from it"), std::string::npos) << fp32;
  for (ir::ValueId v : plan.activations) {
    EXPECT_NE(m.graph.value(v).name, "l");
    EXPECT_NE(m.graph.value(v).name, "a");
  }
  EXPECT_TRUE(plan.nodes.empty());  // Add reads l; Mul reads a
}

TEST(HostilePlan, NonFiniteOrHugeWeightsStayFp32) {
  for (const float w : {std::numeric_limits<float>::infinity(), 3e38f}) {
    SCOPED_TRACE(w);
    ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[1, 2] x) => (float[1, 2] y) <float[2, 2] w = {1, 0, 0, 1}> {
        y = MatMul (x, w)
      })");
    m.graph.set_initializer(m.graph.find("w"), Tensor::from_vector<float>({2, 2}, {1.f, w, 0.f, 1.f}));
    passes::prepare_for_quantization(m);
    const passes::RangeMap ranges = {{"x", {-1.f, 1.f}}, {"y", {-1.f, 1.f}}};
    const passes::QuantPlan plan = passes::plan_quantization(m.graph, quant::QuantConfig{}, ranges);
    EXPECT_TRUE(plan.nodes.empty());
  }
}

TEST(HostilePlan, LongNodeNamesAreRefusedByExcludeNodesNotMatchedRecursively) {
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) { y = Add (x, x) })");
  const std::string name = "n" + std::string(100000, 'c');
  m.graph.node(m.graph.node_ids()[0]).name = name;
  quant::QuantConfig c;
  c.quantize_elementwise = true;  // the Add is the node the regex must reach
  c.exclude_nodes = ".*c";
  const passes::RangeMap ranges = {{"x", {0.f, 1.f}}, {"y", {0.f, 2.f}}};
  try {
    passes::plan_quantization(m.graph, c, ranges);
    ADD_FAILURE() << "a 100k-character name was matched";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--exclude-nodes"), std::string::npos) << e.what();
  }
  m.graph.node(m.graph.node_ids()[0]).name = "n" + std::string(1000, 'c');  // within the bound
  const passes::QuantPlan plan = passes::plan_quantization(m.graph, c, ranges);
  EXPECT_TRUE(plan.nodes.empty());
}

TEST(GraphScaling, UniqueNameIsNotQuadratic) {
  // 20k names from one base: each call scanned _1, _2, ... before (10k Adds sharing one
  // constant took 46 s in the emitter). Counted, not timed: the names must be fresh and in order.
  ir::Graph g;
  g.add_input("c", {});
  for (int i = 1; i <= 20000; ++i) {
    const std::string n = g.unique_name("c");
    ASSERT_EQ(n, "c_" + std::to_string(i));
    g.add_value(n, ir::ValueKind::kNodeOutput);
  }
}

}  // namespace
}  // namespace ptq
