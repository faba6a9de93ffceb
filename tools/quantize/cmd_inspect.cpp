// `quantize inspect MODEL [--json]`: IR version, opsets, inputs/outputs, op histogram, size.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "ptq/ir/stats.h"
#include "ptq/core/error.h"
#include "ptq/onnx_io/check.h"
#include "ptq/onnx_io/load.h"

namespace ptq::cli {
namespace {

using nlohmann::json;

json shape_json(const ir::TypeInfo& t) {
  if (!t.shape) return nullptr;
  json dims = json::array();
  for (const ir::Dim& d : *t.shape) {
    if (!d.param.empty()) dims.push_back(d.param);
    else if (d.value >= 0) dims.push_back(d.value);
    else dims.push_back(nullptr);
  }
  return dims;
}

std::string shape_text(const ir::TypeInfo& t) {
  if (!t.shape) return "[?]";
  std::string s = "[";
  for (size_t i = 0; i < t.shape->size(); ++i) {
    const ir::Dim& d = (*t.shape)[i];
    s += i ? "," : "";
    s += !d.param.empty() ? d.param : d.value >= 0 ? std::to_string(d.value) : "?";
  }
  return s + "]";
}

json io_json(const ir::Graph& g, const std::vector<ir::ValueId>& ids) {
  json arr = json::array();
  for (ir::ValueId id : ids) {
    const ir::Value& v = g.value(id);
    arr.push_back({{"name", v.name},
                   {"dtype", v.type.known ? dtype_name(v.type.dtype) : "unknown"},
                   {"shape", shape_json(v.type)}});
  }
  return arr;
}

json inspect_json(const ir::Model& m, const ir::GraphStats& s) {
  json opsets = json::object();
  for (const auto& o : m.opset_import) opsets[o.domain.empty() ? "ai.onnx" : o.domain] = o.version;
  return {
      {"model", m.source_path},
      {"ir_version", m.ir_version},
      {"opset_import", opsets},
      {"producer_name", m.producer_name},
      {"producer_version", m.producer_version},
      {"inputs", io_json(m.graph, m.graph.runtime_inputs())},
      {"outputs", io_json(m.graph, m.graph.outputs)},
      {"node_count", s.node_count},
      {"op_histogram", s.op_histogram},
      {"subgraph_node_count", s.subgraph_node_count},
      {"subgraph_op_histogram", s.subgraph_op_histogram},
      {"initializer_count", s.initializer_count},
      {"constant_node_count", s.constant_node_count},
      {"parameter_count", s.parameter_count},
      {"parameter_bytes", s.parameter_bytes},
      {"external_data_files", m.external_data_files},
  };
}

std::string histogram_text(const std::map<std::string, size_t>& h) {
  std::string s;
  for (const auto& [op, n] : h) s += (s.empty() ? "" : ", ") + op + " " + std::to_string(n);
  return s.empty() ? "-" : s;
}

void print_text(const ir::Model& m, const ir::GraphStats& s) {
  std::string opsets;
  for (const auto& o : m.opset_import)
    opsets += (opsets.empty() ? "" : ", ") + (o.domain.empty() ? std::string("ai.onnx") : o.domain) +
              " " + std::to_string(o.version);
  std::printf("model:       %s\n", m.source_path.c_str());
  std::printf("ir_version:  %lld\n", static_cast<long long>(m.ir_version));
  std::printf("opsets:      %s\n", opsets.c_str());
  if (!m.producer_name.empty())
    std::printf("producer:    %s %s\n", m.producer_name.c_str(), m.producer_version.c_str());
  auto io = [&](const char* title, const std::vector<ir::ValueId>& ids) {
    std::printf("%s\n", title);
    for (ir::ValueId id : ids) {
      const ir::Value& v = m.graph.value(id);
      std::printf("  %-24s %-8s %s\n", v.name.c_str(),
                  v.type.known ? dtype_name(v.type.dtype).c_str() : "?", shape_text(v.type).c_str());
    }
  };
  io("inputs:", m.graph.runtime_inputs());
  io("outputs:", m.graph.outputs);
  std::printf("nodes:       %zu\n", s.node_count);
  std::printf("ops:         %s\n", histogram_text(s.op_histogram).c_str());
  if (s.subgraph_node_count)
    std::printf("subgraphs:   %zu nodes: %s\n", s.subgraph_node_count,
                histogram_text(s.subgraph_op_histogram).c_str());
  std::printf("parameters:  %zu (%.2f MB) in %zu initializers and %zu Constant nodes\n",
              s.parameter_count, static_cast<double>(s.parameter_bytes) / 1e6, s.initializer_count,
              s.constant_node_count);
  std::string ext;
  for (const auto& f : m.external_data_files) ext += (ext.empty() ? "" : ", ") + f;
  std::printf("external:    %s\n", ext.empty() ? "none" : ext.c_str());
}

}  // namespace

void add_inspect(CLI::App& sub, Run& run) {
  struct Options {
    std::string model;
    bool json = false;
    bool check = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("model", o->model, "ONNX model to describe")->required();
  sub.add_flag("--json", o->json, "Print JSON instead of text");
  sub.add_flag("--check", o->check,
               "Also run the onnx checker (exit 2 when it rejects the model; skipped for IR/opsets "
               "newer than the installed onnx knows)");
  sub.callback([o, &run] {
    run = [o] {
      check_output_safety({{"model", o->model}}, {});  // refuses a FIFO or device as the model
      const ir::Model m = onnx_io::load_model(o->model);
      const ir::GraphStats s = ir::graph_stats(m.graph);
      std::string check;
      if (o->check) check = with_context(o->model, [&] { return onnx_io::check_model(m); });
      if (o->json) {
        nlohmann::json j = inspect_json(m, s);
        if (o->check) j["checker"] = check.empty() ? "ok" : check;
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        print_text(m, s);
        if (o->check) std::printf("checker:     %s\n", check.empty() ? "ok" : check.c_str());
      }
      return 0;
    };
  });
}

}  // namespace ptq::cli
