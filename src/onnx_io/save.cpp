// IR -> ModelProto, written atomically, with external data when asked or when over 2 GB.
#include "ptq/onnx_io/save.h"

#include <sys/stat.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <climits>
#include <cstring>
#include <filesystem>

#include "proto_convert.h"
#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"

namespace ptq::onnx_io {
namespace fs = std::filesystem;
namespace detail {
namespace {

using ir::Graph;
using ir::kNone;

void value_info_to_proto(const Graph& g, ir::ValueId v, onnx::ValueInfoProto* p) {
  const ir::Value& val = g.value(v);
  p->set_name(val.name);
  if (!val.doc_string.empty()) p->set_doc_string(val.doc_string);
  if (val.type.known) type_to_proto(val.type, p->mutable_type());
}

void graph_to_proto(const Graph& g, onnx::GraphProto* p, ExternalDataWriter* ext);

void attribute_to_proto(const ir::Attribute& a, onnx::AttributeProto* p, ExternalDataWriter* ext) {
  if (!a.opaque.empty()) {
    p->ParseFromString(a.opaque);
    return;
  }
  p->set_name(a.name);
  if (!a.doc_string.empty()) p->set_doc_string(a.doc_string);
  if (!a.ref_attr_name.empty()) p->set_ref_attr_name(a.ref_attr_name);
  p->set_type(static_cast<onnx::AttributeProto::AttributeType>(a.type));
  switch (a.type) {
    case ir::AttrType::kFloat: p->set_f(a.f); break;
    case ir::AttrType::kInt: p->set_i(a.i); break;
    case ir::AttrType::kString: p->set_s(a.s); break;
    case ir::AttrType::kTensor: if (a.t) tensor_to_proto(*a.t, p->mutable_t(), ext); break;
    case ir::AttrType::kGraph: if (a.g) graph_to_proto(*a.g, p->mutable_g(), ext); break;
    case ir::AttrType::kFloats: for (float f : a.floats) p->add_floats(f); break;
    case ir::AttrType::kInts: for (int64_t i : a.ints) p->add_ints(i); break;
    case ir::AttrType::kStrings: for (const auto& s : a.strings) p->add_strings(s); break;
    case ir::AttrType::kTensors:
      for (const Tensor& t : a.tensors) tensor_to_proto(t, p->add_tensors(), ext);
      break;
    case ir::AttrType::kGraphs:
      for (const auto& sub : a.graphs) graph_to_proto(*sub, p->add_graphs(), ext);
      break;
    default: break;
  }
}

void graph_to_proto(const Graph& g, onnx::GraphProto* p, ExternalDataWriter* ext) {
  p->set_name(g.name);
  if (!g.doc_string.empty()) p->set_doc_string(g.doc_string);
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    auto* np = p->add_node();
    for (ir::ValueId v : n.inputs) np->add_input(v == kNone ? "" : g.value(v).name);
    for (ir::ValueId v : n.outputs) np->add_output(v == kNone ? "" : g.value(v).name);
    if (!n.name.empty()) np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const ir::Attribute& a : n.attributes) attribute_to_proto(a, np->add_attribute(), ext);
    if (!n.doc_string.empty()) np->set_doc_string(n.doc_string);
    restore_unknown_fields(n.unknown_fields, np);
  }
  for (ir::ValueId v : g.initializers) {
    Tensor t = *g.value(v).constant;
    t.name = g.value(v).name;  // the value's name is authoritative (passes may rename)
    tensor_to_proto(t, p->add_initializer(), ext);
  }
  for (const auto& s : g.sparse_initializers) p->add_sparse_initializer()->ParseFromString(s);
  for (ir::ValueId v : g.inputs) value_info_to_proto(g, v, p->add_input());
  for (ir::ValueId v : g.outputs) value_info_to_proto(g, v, p->add_output());
  for (ir::ValueId v : g.value_info) value_info_to_proto(g, v, p->add_value_info());
  for (const auto& q : g.quantization_annotation) p->add_quantization_annotation()->ParseFromString(q);
  restore_unknown_fields(g.unknown_fields, p);
}

}  // namespace

void model_to_proto(const ir::Model& m, onnx::ModelProto* p, ExternalDataWriter* ext) {
  p->set_ir_version(m.ir_version);
  for (const ir::OpsetImport& o : m.opset_import) {
    auto* op = p->add_opset_import();
    op->set_domain(o.domain);
    op->set_version(o.version);
  }
  if (!m.producer_name.empty()) p->set_producer_name(m.producer_name);
  if (!m.producer_version.empty()) p->set_producer_version(m.producer_version);
  if (!m.domain.empty()) p->set_domain(m.domain);
  if (m.model_version) p->set_model_version(m.model_version);
  if (!m.doc_string.empty()) p->set_doc_string(m.doc_string);
  graph_to_proto(m.graph, p->mutable_graph(), ext);
  for (const auto& kv : m.metadata_props) {
    auto* e = p->add_metadata_props();
    e->set_key(kv.first);
    e->set_value(kv.second);
  }
  for (const auto& t : m.training_info) p->add_training_info()->ParseFromString(t);
  for (const auto& f : m.functions) p->add_functions()->ParseFromString(f);
  restore_unknown_fields(m.unknown_fields, p);
}

}  // namespace detail

namespace {

// Bytes of all constant tensors in a graph and its subgraphs.
size_t tensor_bytes(const ir::Graph& g) {
  size_t total = 0;
  for (ir::ValueId v : g.initializers) total += g.value(v).constant->nbytes();
  for (ir::NodeId id : g.node_ids()) {
    for (const ir::Attribute& a : g.node(id).attributes) {
      if (a.t) total += a.t->nbytes();
      for (const Tensor& t : a.tensors) total += t.nbytes();
    }
    for (const ir::Graph* sub : ir::Graph::subgraphs(g.node(id))) total += tensor_bytes(*sub);
  }
  return total;
}

// Protobuf cannot serialize messages of 2 GB or more; keep a margin for the graph itself.
constexpr size_t kInlineLimit = (size_t{1} << 31) - (size_t{64} << 20);

void write_proto(const onnx::ModelProto& proto, AtomicFile& out) {
  const size_t size = proto.ByteSizeLong();
  PTQ_CHECK(size < static_cast<size_t>(INT_MAX), IoError, "cannot write '", out.path(),
            "': the model is over 2 GB even with external data");
  google::protobuf::io::FileOutputStream stream(out.fd());
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    proto.SerializeWithCachedSizes(&coded);
    PTQ_CHECK(!coded.HadError(), IoError, "cannot write '", out.path(), "'");
  }
  PTQ_CHECK(stream.Flush(), IoError, "cannot write '", out.path(), "': ",
            std::strerror(stream.GetErrno()));
}

}  // namespace

std::string serialize_model(const ir::Model& model) {
  onnx::ModelProto proto;
  detail::model_to_proto(model, &proto, nullptr);
  PTQ_CHECK(proto.ByteSizeLong() < static_cast<size_t>(INT_MAX), IoError,
            "model is over 2 GB; save it with external data");
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  proto.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

uint64_t save_model(const ir::Model& model, const std::string& path, const SaveOptions& options) {
  return with_context(path, [&] {
    PTQ_CHECK(model.source_path.empty() || !same_file(model.source_path, path), UsageError,
              "the output would overwrite the input model");
    const bool external = options.external_data == ExternalData::kAlways ||
                          tensor_bytes(model.graph) > kInlineLimit;
    // The files this model was read from: no output of the run may replace them.
    if (!model.source_path.empty()) {
      note_input_file(model.source_path);
      for (const std::string& f : model.external_data_files)
        note_input_file((fs::path(model.source_path).parent_path() / f).string());
    }
    if (external) {
      // OUTPUT.data must not replace the input model or any external data file it was read from.
      const std::string data = path + ".data";
      const fs::path base = fs::path(model.source_path).parent_path();
      PTQ_CHECK(model.source_path.empty() || !same_file_or_path(model.source_path, data), UsageError,
                "the external data file '", data, "' would overwrite the input model");
      for (const std::string& f : model.external_data_files)
        PTQ_CHECK(!same_file_or_path((base / f).string(), data), UsageError, "the external data file '", data,
                  "' would overwrite the input's external data '", (base / f).string(), "'");
      require_regular_output("external data file", data);
    }
    AtomicFile out(path);
    onnx::ModelProto proto;
    uint64_t bytes = 0;
    if (external) {
      detail::ExternalDataWriter ext(path, options.min_external_bytes);
      detail::model_to_proto(model, &proto, &ext);
      write_proto(proto, out);
      struct stat st {};
      if (ext.used() && ::fstat(ext.fd(), &st) == 0) bytes += static_cast<uint64_t>(st.st_size);
      if (ext.used()) ext.commit();
    } else {
      detail::model_to_proto(model, &proto, nullptr);
      write_proto(proto, out);
    }
    bytes += proto.ByteSizeLong();
    out.commit();
    return bytes;
  });
}

}  // namespace ptq::onnx_io
