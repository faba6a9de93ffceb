// verify() notices each kind of broken invariant.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"

namespace ptq::ir {
namespace {

Model small() {
  return onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] z) {
      a = Neg (x)
      b = Relu (a)
      z = Abs (b)
    }
  )");
}

}  // namespace

TEST(Verify, AcceptsAWellFormedGraph) { EXPECT_NO_THROW(verify(small())); }

TEST(Verify, CatchesAnInputMissingFromItsUseList) {
  Model m = small();
  Graph& g = m.graph;
  // Bypass the API: rewire a node input without updating use lists.
  g.node(g.producer(g.find("z"))->id).inputs[0] = g.find("x");
  EXPECT_THROW(verify(g), InternalError);
}

TEST(Verify, CatchesAStaleProducer) {
  Model m = small();
  Graph& g = m.graph;
  g.value(g.find("b")).producer = g.producer(g.find("a"))->id;
  EXPECT_THROW(verify(g), InternalError);
}

TEST(Verify, CatchesACycle) {
  Model m = small();
  Graph& g = m.graph;
  const NodeId neg = g.producer(g.find("a"))->id;
  g.set_node_input(neg, 0, g.find("b"));  // a = Neg(b), b = Relu(a)
  EXPECT_THROW(verify(g), InternalError);
}

TEST(Verify, CatchesARemovedGraphOutput) {
  Model m = small();
  Graph& g = m.graph;
  g.value(g.find("z")).alive = false;
  EXPECT_THROW(verify(g), InternalError);
}

}  // namespace ptq::ir
