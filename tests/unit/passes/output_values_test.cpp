// Which tensors reach a graph output unchanged (their calibration keeps the exact min/max).
#include <gtest/gtest.h>

#include "ptq/onnx_io/load.h"
#include "ptq/passes/output_values.h"

namespace ptq::passes {
namespace {

TEST(OutputValues, FollowsConcatAndReshapeBackButStopsAtArithmetic) {
  // YOLOX's head: raw box regressions and sigmoid scores concatenated, reshaped, output.
  const ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 2, 2] box, float[1, 2, 2, 2] logit) => (float[1, 24] y) {
      shape = Constant <value = int64[2] {1, 24}> ()
      r = Relu (box)
      s = Sigmoid (logit)
      c = Concat <axis = 1> (r, s)
      y = Reshape (c, shape)
    }
  )");
  const ir::Graph& g = m.graph;
  const std::set<ir::ValueId> out = output_values(g);
  for (const char* v : {"y", "c", "r", "s"}) EXPECT_TRUE(out.count(g.find(v))) << v;
  for (const char* v : {"box", "logit", "shape"}) EXPECT_FALSE(out.count(g.find(v))) << v;
}

TEST(OutputValues, FollowsABiasAddButNotAnAddOfTwoTensors) {
  // A classifier's logits: MatMul, then a constant bias added; and a residual Add of two tensors.
  const ir::Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x, float[1, 3] r) => (float[1, 3] y, float[1, 3] z) {
      w = Constant <value = float[4, 3] {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}> ()
      b = Constant <value = float[3] {0.5, -1, 2}> ()
      mm = MatMul (x, w)
      y = Add (b, mm)
      mm2 = MatMul (x, w)
      z = Add (mm2, r)
    }
  )");
  const ir::Graph& g = m.graph;
  const std::set<ir::ValueId> out = output_values(g);
  for (const char* v : {"y", "mm", "z"}) EXPECT_TRUE(out.count(g.find(v))) << v;
  for (const char* v : {"mm2", "r", "x", "b"}) EXPECT_FALSE(out.count(g.find(v))) << v;
}

}  // namespace
}  // namespace ptq::passes
