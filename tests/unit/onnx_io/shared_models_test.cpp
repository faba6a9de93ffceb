// Every real model in ../shared/models loads, verifies and round-trips to an identical graph.
#include <gtest/gtest.h>

#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "testutil.h"

namespace ptq::onnx_io {

TEST(SharedModels, LoadSaveLoadIsIdentical) {
  PTQ_REQUIRE_SHARED();
  const auto models = test::shared_models();
  ASSERT_GE(models.size(), 8u) << "expected the eight models of ../shared/models";
  for (const std::string& path : models) {
    SCOPED_TRACE(path);
    ir::Model m = load_model(path);
    ir::verify(m);
    test::TempDir tmp;
    save_model(m, tmp.file("model.onnx"));
    ir::Model again = load_model(tmp.file("model.onnx"));
    ir::verify(again);
    EXPECT_EQ(test::diff_graphs(m.graph, again.graph), "");
    EXPECT_EQ(again.ir_version, m.ir_version);
    EXPECT_EQ(again.opset_import, m.opset_import);
    EXPECT_EQ(again.metadata_props, m.metadata_props);
    EXPECT_EQ(again.functions, m.functions);
    // Saving is a fixed point: the second save is byte-identical to the first.
    EXPECT_EQ(serialize_model(again), serialize_model(m));
  }
}

}  // namespace ptq::onnx_io
