// Graph construction, mutation, constants, subgraph scopes and deterministic ordering.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "ptq/ir/stats.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"

namespace ptq::ir {
namespace {

Model conv_relu() {
  return onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 2, 4, 4] x) => (float[N, 2, 4, 4] y) <float[2, 2, 1, 1] w = {1, 0, 0, 1}> {
      shape = Constant <value = int64[2] {1, -1}> ()
      c = Conv (x, w)
      r = Relu (c)
      y = Identity (r)
    }
  )");
}

}  // namespace

TEST(Graph, LoadsProducersUsesAndConstants) {
  Model m = conv_relu();
  verify(m);
  const Graph& g = m.graph;
  EXPECT_EQ(g.num_nodes(), 4u);
  const ValueId w = g.find("w");
  ASSERT_NE(w, kNone);
  EXPECT_EQ(g.value(w).kind, ValueKind::kInitializer);
  ASSERT_NE(g.constant(w), nullptr);
  // A Constant node's output is a constant just like an initializer.
  const ValueId shape = g.find("shape");
  ASSERT_NE(g.constant(shape), nullptr);
  EXPECT_EQ(g.constant(shape)->data<int64_t>()[1], -1);
  EXPECT_EQ(g.producer(g.find("c"))->op_type, "Conv");
  ASSERT_EQ(g.value(g.find("c")).uses.size(), 1u);
  EXPECT_EQ(g.node(g.value(g.find("c")).uses[0].node).op_type, "Relu");
  // Symbolic dims are kept by name.
  const auto& xs = *g.value(g.find("x")).type.shape;
  EXPECT_EQ(xs[0].param, "N");
  EXPECT_EQ(xs[1].value, 2);
}

TEST(Graph, ReplaceAndRemoveKeepLinksConsistent) {
  Model m = conv_relu();
  Graph& g = m.graph;
  // Drop the Identity: the output keeps its name by renaming the Relu output.
  const NodeId ident = g.producer(g.find("y"))->id;
  const ValueId r = g.find("r");
  const ValueId y = g.find("y");
  g.outputs[0] = r;
  g.remove_node(ident);
  g.rename_value(r, "y");
  verify(g);
  EXPECT_EQ(g.num_nodes(), 3u);
  EXPECT_EQ(g.find("y"), r);
  EXPECT_FALSE(g.value(y).alive);
  EXPECT_TRUE(g.value(r).uses.empty());
}

TEST(Graph, RemovingAUsedOutputIsABug) {
  Model m = conv_relu();
  EXPECT_THROW(m.graph.remove_node(m.graph.producer(m.graph.find("c"))->id), InternalError);
}

TEST(Graph, TopologicalOrderIsStableAndSortsUnsortedInput) {
  // Nodes listed out of order in the file still load and sort deterministically.
  Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] z) {
      z = Relu (y)
      y = Neg (x)
    }
  )");
  verify(m);
  const auto order = m.graph.topological_order();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(m.graph.node(order[0]).op_type, "Neg");
  EXPECT_EQ(m.graph.node(order[1]).op_type, "Relu");
  EXPECT_EQ(order, m.graph.topological_order());
}

TEST(Graph, UndefinedInputIsAModelError) {
  EXPECT_THROW(onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] z) {
      z = Add (x, nowhere)
    }
  )"),
               ModelError);
}

TEST(Graph, CycleIsAModelError) {
  EXPECT_THROW(onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] z) {
      a = Add (x, b)
      b = Relu (a)
      z = Identity (b)
    }
  )"),
               ModelError);
}

TEST(Graph, SubgraphsCaptureOuterValues) {
  Model m = onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (bool c, float[2] x) => (float[2] z) {
      t = Relu (x)
      z = If (c) <
        then_branch = then_g () => (float[2] a) { a = Neg (t) },
        else_branch = else_g () => (float[2] b) { b = Identity (x) }>
    }
  )");
  verify(m);
  const Graph& g = m.graph;
  const NodeId iff = g.producer(g.find("z"))->id;
  const auto implicit = g.implicit_inputs(iff);
  ASSERT_EQ(implicit.size(), 2u);
  EXPECT_EQ(g.value(implicit[0]).name, "t");
  EXPECT_EQ(g.value(implicit[1]).name, "x");
  // The If must come after Relu because its branch reads t.
  const auto order = g.topological_order();
  EXPECT_EQ(g.node(order.back()).op_type, "If");
  const GraphStats s = graph_stats(g);
  EXPECT_EQ(s.node_count, 2u);
  EXPECT_EQ(s.subgraph_node_count, 2u);
  EXPECT_EQ(s.subgraph_op_histogram.at("Neg"), 1u);
  EXPECT_EQ(s.op_histogram.count("Neg"), 0u);
}

TEST(Graph, AddNodeWiresNewValues) {
  Model m = conv_relu();
  Graph& g = m.graph;
  const ValueId r = g.find("r");
  const NodeId n = g.add_node("Sigmoid", {r}, {g.unique_name("r")});
  EXPECT_EQ(g.value(g.node(n).outputs[0]).name, "r_1");
  EXPECT_EQ(g.value(r).uses.size(), 2u);
  verify(g);
  EXPECT_THROW(g.add_value("r", ValueKind::kNodeOutput), ModelError);
}

}  // namespace ptq::ir
