// Opset upgrades with onnx::version_conversion (runs on protobuf, so it lives in onnx_io).
#include "ptq/onnx_io/opset.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io {

int64_t min_ir_version_for_opset(int64_t opset) {
  // onnx helper.py VERSION_TABLE: the IR version released with each opset.
  if (opset <= 8) return 3;
  if (opset <= 9) return 4;
  if (opset <= 10) return 5;
  if (opset <= 11) return 6;
  if (opset <= 15) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

namespace {

// onnx 1.12's shape inference for Conv and ConvTranspose takes the kernel shape from W when the
// attribute is absent and then indexes the per-axis attributes and X's dims by W's rank, never
// checking it against X's: a W with more axes than X read out of bounds (found by the pipeline
// fuzz target). With kernel_shape spelled out (the spec defines it as W's spatial dims), onnx
// checks its length. Returns the nodes given the attribute, so it can be taken away again.
std::vector<onnx::NodeProto*> spell_out_kernel_shapes(onnx::GraphProto& graph,
                                                      std::map<std::string, std::vector<int64_t>> dims) {
  const auto static_dims = [](const onnx::TypeProto& t, std::vector<int64_t>* out) {
    if (!t.has_tensor_type() || !t.tensor_type().has_shape()) return false;
    for (const auto& d : t.tensor_type().shape().dim()) {
      if (!d.has_dim_value()) return false;
      out->push_back(d.dim_value());
    }
    return true;
  };
  for (const auto* infos : {&graph.input(), &graph.value_info()})
    for (const onnx::ValueInfoProto& v : *infos) {
      std::vector<int64_t> d;
      if (static_dims(v.type(), &d)) dims[v.name()] = d;
    }
  for (const auto& t : graph.initializer()) dims[t.name()] = {t.dims().begin(), t.dims().end()};
  std::vector<onnx::NodeProto*> given;
  for (onnx::NodeProto& n : *graph.mutable_node()) {
    for (onnx::AttributeProto& a : *n.mutable_attribute()) {
      if (a.has_g()) for (auto* p : spell_out_kernel_shapes(*a.mutable_g(), dims)) given.push_back(p);
      for (onnx::GraphProto& sub : *a.mutable_graphs())
        for (auto* p : spell_out_kernel_shapes(sub, dims)) given.push_back(p);
    }
    if ((n.domain() != "" && n.domain() != "ai.onnx") || (n.op_type() != "Conv" && n.op_type() != "ConvTranspose") ||
        n.input_size() < 2)
      continue;
    const auto w = dims.find(n.input(1));
    if (w == dims.end() || w->second.size() < 3) continue;
    const bool has_kernel_shape = std::any_of(n.attribute().begin(), n.attribute().end(),
                                              [](const onnx::AttributeProto& a) { return a.name() == "kernel_shape"; });
    if (has_kernel_shape) continue;
    onnx::AttributeProto* a = n.add_attribute();
    a->set_name("kernel_shape");
    a->set_type(onnx::AttributeProto::INTS);
    for (size_t i = 2; i < w->second.size(); ++i) a->add_ints(w->second[i]);
    given.push_back(&n);
  }
  return given;
}

// Names of the tensors whose shape onnx's shape inference (with data propagation) knows.
std::set<std::string> shaped_tensors(onnx::ModelProto& proto) {
  const std::vector<onnx::NodeProto*> given = spell_out_kernel_shapes(*proto.mutable_graph(), {});
  onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                     onnx::ShapeInferenceOptions(false, 0, /*data_prop=*/true));
  // The converter and the saved model see the node as written.
  for (onnx::NodeProto* n : given) n->mutable_attribute()->RemoveLast();
  std::set<std::string> names;
  const auto add = [&](const onnx::ValueInfoProto& v) {
    // A shape with no dims here means "unknown rank" to the Softmax adapter, not a scalar.
    if (v.type().has_tensor_type() && v.type().tensor_type().shape().dim_size() > 0) names.insert(v.name());
  };
  for (const auto& v : proto.graph().input()) add(v);
  for (const auto& v : proto.graph().value_info()) add(v);
  for (const auto& v : proto.graph().output()) add(v);
  for (const auto& t : proto.graph().initializer()) names.insert(t.name());
  return names;
}

// Before opset 13, Softmax/LogSoftmax/Hardmax(axis = a) flatten the input to 2-D at a; onnx's
// converter needs the input rank to rewrite that and gives up when shapes are unknown (PP-OCR).
// Spelling the old semantics out as Flatten(a) -> op(axis 1) -> Reshape(Shape(x)) is exact at
// any opset and leaves the converter nothing to infer.
int lower_unshaped_softmax(ir::Graph& g, const std::set<std::string>& shaped) {
  int lowered = 0;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!n.is_default_domain() || (n.op_type != "Softmax" && n.op_type != "LogSoftmax" && n.op_type != "Hardmax"))
      continue;
    if (n.inputs.empty() || n.inputs[0] == ir::kNone || shaped.count(g.value(n.inputs[0]).name)) continue;
    const ir::ValueId x = n.inputs[0];
    const int64_t axis = n.attr_int("axis", 1);
    const std::string base = n.name.empty() ? g.value(x).name : n.name;
    const ir::NodeId flat = g.add_node("Flatten", {x}, {g.unique_name(base + "_flat")},
                                       {ir::Attribute::make_int("axis", axis)}, g.unique_name(base + "_Flatten"));
    const ir::NodeId shape = g.add_node("Shape", {x}, {g.unique_name(base + "_shape")}, {},
                                        g.unique_name(base + "_Shape"));
    // Flatten's output is 2-D whatever its input: say so, since inference cannot without a rank.
    ir::Value& flat_out = g.value(g.node(flat).outputs[0]);
    flat_out.type.known = true;
    flat_out.type.dtype = g.value(x).type.known ? g.value(x).type.dtype : DType::kFloat;
    flat_out.type.shape = ir::Shape{ir::Dim{}, ir::Dim{}};
    g.value_info.push_back(flat_out.id);
    g.set_node_input(id, 0, flat_out.id);
    g.node(id).set_attr(ir::Attribute::make_int("axis", 1));
    // The op now yields the 2-D result; a Reshape restores the original shape under the old name.
    const ir::ValueId out = g.node(id).outputs[0];
    const std::string out_name = g.value(out).name;
    const std::vector<ir::Use> uses = g.value(out).uses;
    g.rename_value(out, g.unique_name(out_name + "_2d"));
    const ir::NodeId reshape = g.add_node("Reshape", {out, g.node(shape).outputs[0]}, {out_name}, {},
                                          g.unique_name(base + "_Reshape"));
    const ir::ValueId restored = g.node(reshape).outputs[0];
    for (const ir::Use& u : uses) g.set_node_input(u.node, u.slot, restored);
    std::replace(g.outputs.begin(), g.outputs.end(), out, restored);
    g.value(restored).type = g.value(out).type;
    ++lowered;
  }
  return lowered;
}

// onnx's adapters index inputs without checking (an opset-1 Add with no inputs segfaulted in
// BroadcastForwardCompatibility: found by the pipeline fuzz target): nodes must have at least
// the inputs their schema requires before conversion.
void check_input_counts(const ir::Graph& g, int64_t opset) {
  for (ir::NodeId id : g.node_ids()) {
    const ir::Node& n = g.node(id);
    if (!n.is_default_domain()) continue;
    const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type, static_cast<int>(opset), "");
    if (!schema) continue;
    PTQ_CHECK(n.inputs.size() >= static_cast<size_t>(schema->min_input()), ModelError, n.label(), " has ",
              n.inputs.size(), " inputs; ", n.op_type, " at opset ", opset, " needs at least ", schema->min_input());
    PTQ_CHECK(n.outputs.size() >= static_cast<size_t>(schema->min_output()), ModelError, n.label(), " has ",
              n.outputs.size(), " outputs; ", n.op_type, " at opset ", opset, " needs at least ", schema->min_output());
  }
}

}  // namespace

void convert_opset(ir::Model& model, int64_t target) {
  const int64_t from = model.opset();
  if (from == target) return;
  check_input_counts(model.graph, from);
  onnx::ModelProto in;
  detail::model_to_proto(model, &in, nullptr);
  onnx::ModelProto out;
  try {
    // Some adapters (Softmax 12 -> 13) need input shapes: infer them, and spell out the ops
    // whose shapes stay unknown.
    if (from < 13 && lower_unshaped_softmax(model.graph, shaped_tensors(in)) > 0) {
      in.Clear();
      detail::model_to_proto(model, &in, nullptr);
      shaped_tensors(in);
    }
    out = onnx::version_conversion::ConvertVersion(in, static_cast<int>(target));
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    throw UnsupportedError(str_cat("cannot convert the model from opset ", from, " to ", target,
                                   ": ", what));
  }
  ir::Model converted = detail::model_from_proto(out, nullptr, {});
  // The converter rebuilds the graph; keep what it does not know about from the original.
  converted.ir_version = std::max(model.ir_version, min_ir_version_for_opset(target));
  converted.producer_name = model.producer_name;
  converted.producer_version = model.producer_version;
  converted.domain = model.domain;
  converted.model_version = model.model_version;
  converted.doc_string = model.doc_string;
  converted.metadata_props = model.metadata_props;
  converted.functions = model.functions;
  converted.source_path = model.source_path;
  converted.external_data_files = model.external_data_files;
  for (const ir::OpsetImport& o : model.opset_import)
    if (!o.domain.empty() && o.domain != "ai.onnx") {
      bool present = false;
      for (const auto& c : converted.opset_import) present = present || c.domain == o.domain;
      if (!present) converted.opset_import.push_back(o);
    }
  model = std::move(converted);
}

}  // namespace ptq::onnx_io
