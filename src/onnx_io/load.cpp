// ModelProto -> IR: graphs (with subgraphs and outer-scope references), nodes, attributes.
#include "ptq/onnx_io/load.h"

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "proto_convert.h"
#include "ptq/core/error.h"

namespace ptq::onnx_io {
namespace detail {
namespace {

using ir::Graph;
using ir::kNone;
using ir::ValueId;
using ir::ValueKind;

// Names visible from enclosing graphs while a subgraph loads.
using Scope = std::vector<const Graph*>;

bool in_scope(const Scope& scope, const std::string& name) {
  for (const Graph* g : scope)
    if (g->find(name) != kNone) return true;
  return false;
}

struct GraphLoader {
  ExternalDataReader* ext;
  const LoadLimits& limits;

  std::shared_ptr<Graph> load(const onnx::GraphProto& gp, const Scope& scope);

 private:
  ir::Attribute attribute(const onnx::AttributeProto& ap, const Graph& g, const Scope& scope);
  // The value for a name a node or output reads: local, or captured from an enclosing graph.
  ValueId resolve(Graph& g, const std::string& name, const Scope& scope, const std::string& who);
};

ValueId GraphLoader::resolve(Graph& g, const std::string& name, const Scope& scope,
                             const std::string& who) {
  ValueId v = g.find(name);
  if (v != kNone) return v;
  PTQ_CHECK(in_scope(scope, name), ModelError, who, " reads '", name,
            "', which no node, initializer or graph input defines");
  return g.add_value(name, ValueKind::kOuterScope);
}

ir::Attribute GraphLoader::attribute(const onnx::AttributeProto& ap, const Graph& g,
                                     const Scope& scope) {
  ir::Attribute a;
  a.name = ap.name();
  a.doc_string = ap.doc_string();
  a.ref_attr_name = ap.ref_attr_name();
  a.type = static_cast<ir::AttrType>(ap.type());
  if (a.type == ir::AttrType::kUndefined) {
    // IR < 2 attributes carry no type: infer it from the field that is set.
    if (ap.has_f()) a.type = ir::AttrType::kFloat;
    else if (ap.has_i()) a.type = ir::AttrType::kInt;
    else if (ap.has_s()) a.type = ir::AttrType::kString;
    else if (ap.has_t()) a.type = ir::AttrType::kTensor;
    else if (ap.has_g()) a.type = ir::AttrType::kGraph;
    else if (ap.floats_size()) a.type = ir::AttrType::kFloats;
    else if (ap.ints_size()) a.type = ir::AttrType::kInts;
    else if (ap.strings_size()) a.type = ir::AttrType::kStrings;
    else if (ap.tensors_size()) a.type = ir::AttrType::kTensors;
    else if (ap.graphs_size()) a.type = ir::AttrType::kGraphs;
  }
  Scope inner = scope;
  inner.push_back(&g);
  switch (a.type) {
    case ir::AttrType::kFloat: a.f = ap.f(); break;
    case ir::AttrType::kInt: a.i = ap.i(); break;
    case ir::AttrType::kString: a.s = ap.s(); break;
    case ir::AttrType::kTensor:
      a.t = std::make_shared<Tensor>(tensor_from_proto(ap.t(), ext, limits));
      break;
    case ir::AttrType::kGraph: a.g = load(ap.g(), inner); break;
    case ir::AttrType::kFloats: a.floats.assign(ap.floats().begin(), ap.floats().end()); break;
    case ir::AttrType::kInts: a.ints.assign(ap.ints().begin(), ap.ints().end()); break;
    case ir::AttrType::kStrings: a.strings.assign(ap.strings().begin(), ap.strings().end()); break;
    case ir::AttrType::kTensors:
      for (const auto& t : ap.tensors()) a.tensors.push_back(tensor_from_proto(t, ext, limits));
      break;
    case ir::AttrType::kGraphs:
      for (const auto& sub : ap.graphs()) a.graphs.push_back(load(sub, inner));
      break;
    default: ap.SerializeToString(&a.opaque); break;  // sparse tensors, type protos, unknown
  }
  return a;
}

std::shared_ptr<Graph> GraphLoader::load(const onnx::GraphProto& gp, const Scope& scope) {
  auto gptr = std::make_shared<Graph>();
  Graph& g = *gptr;
  g.name = gp.name();
  g.doc_string = gp.doc_string();
  g.unknown_fields = unknown_fields_of(gp);
  return with_context(gp.name().empty() ? std::string() : "graph '" + gp.name() + "'", [&] {
    for (const auto& t : gp.initializer()) {
      PTQ_CHECK(!t.name().empty(), ModelError, "an initializer has no name");
      g.add_initializer(t.name(), tensor_from_proto(t, ext, limits));
    }
    for (const auto& s : gp.sparse_initializer()) g.sparse_initializers.push_back(s.SerializeAsString());
    for (const auto& q : gp.quantization_annotation())
      g.quantization_annotation.push_back(q.SerializeAsString());
    for (const auto& vi : gp.input()) {
      PTQ_CHECK(!vi.name().empty(), ModelError, "a graph input has no name");
      ValueId v = g.find(vi.name());
      if (v != kNone && g.value(v).kind == ValueKind::kInitializer) {
        g.inputs.push_back(v);  // IR < 4: initializers are listed as inputs too
      } else {
        v = g.add_input(vi.name(), {});
      }
      if (vi.has_type()) g.value(v).type = type_from_proto(vi.type());
      g.value(v).doc_string = vi.doc_string();
    }
    // Create every node output first, so node order in the file does not matter.
    for (const auto& np : gp.node())
      for (const std::string& o : np.output())
        if (!o.empty())
          with_context("node '" + np.name() + "' (" + np.op_type() + ")",
                       [&] { return g.add_value(o, ValueKind::kNodeOutput); });
    for (const auto& np : gp.node()) {
      const std::string who = "node '" + np.name() + "' (" + np.op_type() + ")";
      with_context(who, [&] {
        ir::Node n;
        n.name = np.name();
        n.op_type = np.op_type();
        n.domain = np.domain();
        n.doc_string = np.doc_string();
        for (const auto& ap : np.attribute()) n.attributes.push_back(attribute(ap, g, scope));
        // Subgraphs may read values this graph takes from further out: capture them here too.
        for (const Graph* sub : Graph::subgraphs(n))
          for (const std::string& name : sub->captured_names()) resolve(g, name, scope, who);
        for (const std::string& in : np.input())
          n.inputs.push_back(in.empty() ? kNone : resolve(g, in, scope, who));
        for (const std::string& out : np.output()) n.outputs.push_back(out.empty() ? kNone : g.find(out));
        n.unknown_fields = unknown_fields_of(np);
        const ir::Node& added = g.node(g.add_node(std::move(n)));
        // A Constant must yield its tensor (found by fuzzing: a corrupted attribute left the IR
        // with a Constant output without one, an internal error later).
        if (added.op_type == "Constant" && added.is_default_domain() && !added.attr("sparse_value") &&
            !added.outputs.empty() && added.outputs[0] != kNone)
          PTQ_CHECK(g.value(added.outputs[0]).constant, ModelError,
                    "Constant has no value attribute (value, value_float(s), value_int(s) or "
                    "value_string(s)) with a tensor");
      });
    }
    for (const auto& vi : gp.output()) {
      PTQ_CHECK(!vi.name().empty(), ModelError, "a graph output has no name");
      const ValueId v = resolve(g, vi.name(), scope, "graph output");
      if (vi.has_type()) g.value(v).type = type_from_proto(vi.type());
      g.value(v).doc_string = vi.doc_string();
      g.outputs.push_back(v);
    }
    for (const auto& vi : gp.value_info()) {
      const ValueId v = g.find(vi.name());
      if (v == kNone) continue;  // describes nothing in this graph; runtimes ignore it too
      if (vi.has_type()) g.value(v).type = type_from_proto(vi.type());
      if (!vi.doc_string().empty()) g.value(v).doc_string = vi.doc_string();
      g.value(v).has_value_info = true;
      g.value_info.push_back(v);
    }
    (void)g.topological_order();  // a cycle is a malformed model
    return gptr;
  });
}

}  // namespace

ir::Model model_from_proto(const onnx::ModelProto& p, ExternalDataReader* ext,
                           const LoadLimits& limits) {
  PTQ_CHECK(p.has_graph(), ModelError, "not an ONNX model (no graph)");
  PTQ_CHECK(p.ir_version() > 0, ModelError, "not an ONNX model (no ir_version)");
  // IR 10 goes with opset 21, the newest ptq handles; a newer IR may change what fields mean, and
  // copying it to the output would label ptq's file with a version it does not follow.
  constexpr int64_t kMaxIrVersion = 10;
  PTQ_CHECK(p.ir_version() <= kMaxIrVersion, UnsupportedError, "ir_version ", p.ir_version(),
            " is newer than ptq supports (", kMaxIrVersion, ")");
  ir::Model m;
  m.ir_version = p.ir_version();
  for (const auto& o : p.opset_import()) m.opset_import.push_back({o.domain(), o.version()});
  m.producer_name = p.producer_name();
  m.producer_version = p.producer_version();
  m.domain = p.domain();
  m.model_version = p.model_version();
  m.doc_string = p.doc_string();
  for (const auto& kv : p.metadata_props()) m.metadata_props.emplace_back(kv.key(), kv.value());
  for (const auto& f : p.functions()) m.functions.push_back(f.SerializeAsString());
  for (const auto& t : p.training_info()) m.training_info.push_back(t.SerializeAsString());
  m.unknown_fields = unknown_fields_of(p);
  GraphLoader loader{ext, limits};
  m.graph = std::move(*loader.load(p.graph(), {}));
  if (ext) m.external_data_files = ext->files();
  return m;
}

}  // namespace detail

namespace {

ir::Model parse_bytes(const void* data, size_t size, detail::ExternalDataReader* ext,
                      const LoadLimits& limits) {
  PTQ_CHECK(size > 0, ModelError, "empty file");
  PTQ_CHECK(size < static_cast<size_t>(INT_MAX), ModelError,
            "model file is larger than protobuf's 2 GB limit (large weights must use external data)");
  onnx::ModelProto proto;
  google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data), static_cast<int>(size));
  in.SetTotalBytesLimit(INT_MAX);
  PTQ_CHECK(proto.ParseFromCodedStream(&in) && in.ConsumedEntireMessage(), ModelError,
            "not a valid ONNX model (protobuf parse failed: truncated or not ONNX)");
  return detail::model_from_proto(proto, ext, limits);
}

}  // namespace

ir::Model load_model(const std::string& path, const LoadLimits& limits) {
  namespace fs = std::filesystem;
  return with_context(path, [&] {
    std::error_code ec;
    PTQ_CHECK(fs::exists(path, ec), IoError, "no such file");
    PTQ_CHECK(!fs::is_directory(path, ec), IoError, "is a directory, not a model file");
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    PTQ_CHECK(f, IoError, "cannot open file");
    const std::streamoff size = f.tellg();
    PTQ_CHECK(size >= 0, IoError, "cannot read file");
    PTQ_CHECK(static_cast<uintmax_t>(size) < static_cast<uintmax_t>(INT_MAX), ModelError,
              "model file is larger than protobuf's 2 GB limit (large weights must use external data)");
    std::string bytes(static_cast<size_t>(size), '\0');
    f.seekg(0);
    f.read(bytes.data(), size);
    PTQ_CHECK(f.gcount() == size, IoError, "short read");
    fs::path dir = fs::path(path).parent_path();
    detail::ExternalDataReader ext(dir.empty() ? "." : dir.string(), limits);
    ir::Model m = parse_bytes(bytes.data(), bytes.size(), &ext, limits);
    m.source_path = path;
    return m;
  });
}

ir::Model load_model_from_bytes(const void* data, size_t size, const std::string& base_dir,
                                const LoadLimits& limits) {
  if (base_dir.empty()) return parse_bytes(data, size, nullptr, limits);
  detail::ExternalDataReader ext(base_dir, limits);
  return parse_bytes(data, size, &ext, limits);
}

}  // namespace ptq::onnx_io
