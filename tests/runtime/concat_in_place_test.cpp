// A Concat of Conv outputs run as one step that writes each Conv's output into its slice
// (CompiledGraph's in-place Concat) gives the same bits as the separate nodes; batches and other
// axes fall back to separate runs; values an observer needs are never fused away.
#include <gtest/gtest.h>

#include <set>

#include "ptq/onnx_io/load.h"
#include "ptq/runtime/interpreter.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

// squeezenet1.1's fire module: a = Relu(Conv1x1(x)), b = Relu(Conv3x3(x)), y = Concat(a, b).
// `expose`: a is a graph output too, which keeps the Concat a separate copy.
std::string fire(int64_t n, int64_t axis, bool expose) {
  return "<ir_version: 8, opset_import: [\"\" : 13]>\n"
         "g (float[" + std::to_string(n) + ", 16, 13, 15] x, float[24, 16, 1, 1] w1, float[24] b1, "
         "float[24, 16, 3, 3] w3, float[24] b3) => (float[n, c, h, w] y" + (expose ? ", float[p, q, r, s] a" : "") + ") {\n"
         "  c1 = Conv (x, w1, b1)\n  a = Relu (c1)\n"
         "  c3 = Conv <pads = [1, 1, 1, 1]> (x, w3, b3)\n  b = Relu (c3)\n"
         "  y = Concat <axis = " + std::to_string(axis) + "> (a, b)\n}";
}

std::map<std::string, Tensor> fire_inputs(int64_t n) {
  std::mt19937 rng(31337 + static_cast<unsigned>(n));
  return {{"x", test::random_floats(rng, {n, 16, 13, 15})}, {"w1", test::random_floats(rng, {24, 16, 1, 1})},
          {"b1", test::random_floats(rng, {24})},         {"w3", test::random_floats(rng, {24, 16, 3, 3})},
          {"b3", test::random_floats(rng, {24})}};
}

TEST(ConcatInPlace, ConvOutputsWrittenIntoTheConcatAreBitIdentical) {
  // Axis 1 and -3 of a batch of 1 run in place; a batch of 2 and axis 2 fall back.
  const std::pair<int64_t, int64_t> cases[] = {{1, 1}, {1, -3}, {2, 1}, {1, 2}};
  for (const auto& [n, axis] : cases) {
    SCOPED_TRACE("batch " + std::to_string(n) + ", axis " + std::to_string(axis));
    const std::map<std::string, Tensor> in = fire_inputs(n);
    for (int threads : {1, 3}) {
      const Tensor fused = test::run_text(fire(n, axis, false), in, threads)[0];
      const Tensor separate = test::run_text(fire(n, axis, true), in, threads)[0];
      EXPECT_TRUE(fused.bit_equal(separate));
      EXPECT_EQ(fused.dims()[static_cast<size_t>(axis < 0 ? axis + 4 : axis)], axis == 2 ? 26 : 48);
    }
  }
}

TEST(ConcatInPlace, ValuesAnObserverNeedsAreNotFusedAway) {
  const ir::Model m = onnx_io::parse_model_text(fire(1, 1, false));
  const auto seen = [&](bool want_a) {
    std::set<std::string> names;
    runtime::InterpreterOptions o;
    o.threads = 1;
    o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) { names.insert(g.value(v).name); };
    o.observed = [want_a](const ir::Graph& g, ir::ValueId v) {
      return g.value(v).name == "y" || (want_a && g.value(v).name == "a");
    };
    runtime::Interpreter(m, o).run(fire_inputs(1));
    return names;
  };
  // a observed: produced, and the Concat copies it (b too: a Concat runs in place only whole).
  EXPECT_EQ(seen(true), (std::set<std::string>{"x", "w1", "b1", "w3", "b3", "a", "b", "y"}));
  // Neither observed: both written straight into y, never stored on their own.
  EXPECT_EQ(seen(false), (std::set<std::string>{"x", "w1", "b1", "w3", "b3", "y"}));
}

}  // namespace
}  // namespace ptq
