// Load -> save keeps every ModelProto field ptq did not change (compared message by message).
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "ptq/ir/verify.h"
#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "testutil.h"

namespace ptq::onnx_io {
namespace {

onnx::ModelProto rich_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("ptq-test");
  m.set_producer_version("1.0");
  m.set_domain("org.example");
  m.set_model_version(3);
  m.set_doc_string("a model with everything");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(13);
  op = m.add_opset_import();
  op->set_domain("com.example.custom");
  op->set_version(1);
  auto* md = m.add_metadata_props();
  md->set_key("author");
  md->set_value("ptq");
  // A local function: kept untouched.
  auto* fn = m.add_functions();
  fn->set_name("Twice");
  fn->set_domain("com.example.custom");
  fn->add_input("a");
  fn->add_output("b");
  auto* fnode = fn->add_node();
  fnode->set_op_type("Add");
  fnode->add_input("a");
  fnode->add_input("a");
  fnode->add_output("b");
  auto* fop = fn->add_opset_import();
  fop->set_version(13);

  auto* g = m.mutable_graph();
  g->set_name("main");
  g->set_doc_string("graph doc");
  auto* x = g->add_input();
  x->set_name("x");
  x->set_doc_string("input doc");
  auto* xt = x->mutable_type()->mutable_tensor_type();
  xt->set_elem_type(1);
  xt->mutable_shape()->add_dim()->set_dim_param("N");
  xt->mutable_shape()->add_dim()->set_dim_value(4);
  auto* c = g->add_input();
  c->set_name("cond");
  c->mutable_type()->mutable_tensor_type()->set_elem_type(9);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(1);
  w->add_dims(4);
  const float wv[4] = {0.5f, -1.f, 2.f, 1e-20f};
  w->set_raw_data(wv, sizeof(wv));

  auto* n1 = g->add_node();
  n1->set_name("mul");
  n1->set_op_type("Mul");
  n1->add_input("x");
  n1->add_input("w");
  n1->add_output("m");
  n1->set_doc_string("node doc");
  auto* n2 = g->add_node();
  n2->set_name("custom");
  n2->set_op_type("Twice");
  n2->set_domain("com.example.custom");
  n2->add_input("m");
  n2->add_output("t");
  auto* a = n2->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(0.25f);
  // An If whose branches read outer values, with a nested attribute graph.
  auto* n3 = g->add_node();
  n3->set_name("branch");
  n3->set_op_type("If");
  n3->add_input("cond");
  n3->add_output("y");
  for (const char* name : {"then_branch", "else_branch"}) {
    auto* ga = n3->add_attribute();
    ga->set_name(name);
    ga->set_type(onnx::AttributeProto::GRAPH);
    auto* sg = ga->mutable_g();
    sg->set_name(std::string(name) + "_g");
    auto* sn = sg->add_node();
    sn->set_op_type(name[0] == 't' ? "Neg" : "Identity");
    sn->add_input(name[0] == 't' ? "t" : "x");
    sn->add_output(std::string(name) + "_out");
    auto* so = sg->add_output();
    so->set_name(std::string(name) + "_out");
    // Exporters write both a typed output and an empty "type {}"; both must survive as written.
    if (name[0] == 't') so->mutable_type()->mutable_tensor_type()->set_elem_type(1);
    else so->mutable_type();
  }
  auto* y = g->add_output();
  y->set_name("y");
  y->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  auto* vi = g->add_value_info();
  vi->set_name("m");
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  vi->mutable_type()->set_denotation("TENSOR");
  return m;
}

}  // namespace

TEST(RoundTrip, EveryFieldSurvivesLoadAndSave) {
  const onnx::ModelProto original = rich_model();
  const std::string bytes = original.SerializeAsString();
  ir::Model m = load_model_from_bytes(bytes.data(), bytes.size(), "");
  ir::verify(m);
  EXPECT_EQ(m.ir_version, 8);
  EXPECT_EQ(m.opset("com.example.custom"), 1);
  EXPECT_EQ(m.graph.runtime_inputs().size(), 2u);
  onnx::ModelProto again;
  ASSERT_TRUE(again.ParseFromString(serialize_model(m)));
  std::string report;
  google::protobuf::util::MessageDifferencer diff;
  diff.ReportDifferencesToString(&report);
  EXPECT_TRUE(diff.Compare(original, again)) << report;
}

TEST(RoundTrip, UnknownFieldsFromNewerOnnxAreKept) {
  onnx::ModelProto original = rich_model();
  // Field 9 of NodeProto (metadata_props in onnx >= 1.16) is unknown to this onnx build.
  original.mutable_graph()->mutable_node(0)->GetReflection()
      ->MutableUnknownFields(original.mutable_graph()->mutable_node(0))
      ->AddLengthDelimited(9, "\x0a\x01k\x12\x01v");
  const std::string bytes = original.SerializeAsString();
  ir::Model m = load_model_from_bytes(bytes.data(), bytes.size(), "");
  EXPECT_EQ(serialize_model(m), bytes);
}

TEST(RoundTrip, SavedFileReloadsToTheSameGraph) {
  const std::string bytes = rich_model().SerializeAsString();
  ir::Model m = load_model_from_bytes(bytes.data(), bytes.size(), "");
  test::TempDir tmp;
  save_model(m, tmp.file("out.onnx"));
  ir::Model again = load_model(tmp.file("out.onnx"));
  EXPECT_EQ(test::diff_graphs(m.graph, again.graph), "");
  // No temp files are left beside the output.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp.path())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(RoundTrip, SaveIntoMissingDirectoryFailsCleanly) {
  const std::string bytes = rich_model().SerializeAsString();
  ir::Model m = load_model_from_bytes(bytes.data(), bytes.size(), "");
  test::TempDir tmp;
  EXPECT_THROW(save_model(m, tmp.file("nope/out.onnx")), IoError);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("nope")));
}

}  // namespace ptq::onnx_io
