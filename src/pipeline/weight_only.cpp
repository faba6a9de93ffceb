// Weight-only job: prepare, plan, emit blockwise 4/8-bit MatMul/Gemm weights and Gather tables, report, save.
#include "weight_only.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/data/ordered_parallel.h"
#include "ptq/emit/weight_only_emitter.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/opset.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/runtime/interpreter.h"
#include "smoothing.h"

namespace ptq::pipeline {
namespace {

struct WeightOnlyBuild {
  report::BuiltModel built;
  emit::EmitSummary summary;
  std::vector<std::string> fp32;
  std::string placement;
};

// The weight a weight-only rewrite would store: MatMul/Gemm B, Gather's table, Conv W.
bool has_float_weight(const ir::Graph& g, const ir::Node& n) {
  const size_t slot = n.op_type == "Gather" ? 0 : 1;
  if (n.op_type != "MatMul" && n.op_type != "Gemm" && n.op_type != "Gather" && n.op_type != "Conv") return false;
  if (!n.is_default_domain() || n.inputs.size() <= slot || n.inputs[slot] == ir::kNone) return false;
  const Tensor* t = g.constant(n.inputs[slot]);
  return t && t->dtype() == DType::kFloat;
}

WeightOnlyBuild build_weight_only(const ir::Model& prepared, const quant::QuantConfig& config,
                                  const emit::WeightOnlyConfig& wo, const passes::NodeFilter& filter) {
  WeightOnlyBuild b;
  b.built.model = prepared;
  ir::Model& model = b.built.model;
  const passes::QuantPlan plan = passes::plan_quantization(model.graph, config, placeholder_ranges(model.graph), filter);
  b.placement = plan.placement;
  std::set<ir::NodeId> planned;
  for (const passes::NodeQuant& q : plan.nodes) {
    const ir::Node& n = model.graph.node(q.node);
    planned.insert(q.node);
    const std::string reason = emit::weight_only_reason(model.graph, q.node, wo);
    if (!reason.empty()) {
      if (has_float_weight(model.graph, n)) b.fp32.push_back(str_cat(n.label(), ": ", reason));
      continue;
    }
    const std::string out = model.graph.value(n.outputs[0]).name;
    b.built.nodes.push_back({q.node, n.name.empty() ? str_cat(n.op_type, " -> ", out) : n.name, n.op_type, out, out, {}});
  }
  // Only the weighted nodes the plan left fp32 are worth a note: activations are never quantized here.
  for (ir::NodeId id : model.graph.topological_order()) {
    const ir::Node& n = model.graph.node(id);
    if (planned.count(id) || !has_float_weight(model.graph, n)) continue;
    const std::string label = n.label();
    const auto it = std::find_if(plan.fp32.begin(), plan.fp32.end(),
                                 [&](const std::string& s) { return s.rfind(label + ":", 0) == 0; });
    if (it != plan.fp32.end()) b.fp32.push_back(*it);
  }
  b.summary = emit::emit_weight_only(model, plan, wo);
  model.ir_version = std::max(model.ir_version, onnx_io::min_ir_version_for_opset(model.opset()));
  ir::verify(model);
  return b;
}

using Grams = std::map<ir::ValueId, std::vector<double>>;

// K×K sums of x·xᵀ (every row of x, the last axis K) over the dataset for the inputs of the
// MatMul/Gemm nodes weight-only mode rewrites: GPTQ's Hessians. Forward passes run on `threads`
// workers; their tensors are folded in sample order, so the sums are the same for any thread count.
Grams input_grams(const ir::Model& model, data::Dataset& ds, const emit::WeightOnlyConfig& wo, size_t threads) {
  const ir::Graph& g = model.graph;
  std::map<ir::ValueId, int64_t> wanted;  // input -> K
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if ((n.op_type != "MatMul" && n.op_type != "Gemm") || !emit::weight_only_reason(g, id, wo).empty()) continue;
    const Tensor& w = *g.constant(n.inputs[1]);
    wanted[n.inputs[0]] = n.op_type == "Gemm" && n.attr_int("transB", 0) ? w.dims()[1] : w.dims()[0];
  }
  Grams grams;
  if (wanted.empty()) return grams;
  using Captured = std::map<ir::ValueId, Tensor>;
  size_t workers = threads ? threads : std::max<unsigned>(1, std::thread::hardware_concurrency());
  workers = std::max<size_t>(1, std::min(workers, ds.size()));
  struct Worker {
    std::unique_ptr<runtime::Interpreter> interpreter;
    Captured* current = nullptr;
  };
  std::vector<Worker> ws(workers);
  const std::function<Captured(size_t, const data::Sample&)> work = [&](size_t wi, const data::Sample& sample) {
    Worker& wk = ws[wi];
    if (!wk.interpreter) {
      runtime::InterpreterOptions ro;
      ro.threads = 1;
      ro.observer = [&g, &wk, &wanted](const ir::Graph& graph, ir::ValueId v, const Tensor& t) {
        const auto it = wanted.find(v);
        if (&graph != &g || it == wanted.end() || t.dtype() != DType::kFloat || t.rank() == 0 || t.dims().back() != it->second)
          return;
        (*wk.current)[v] = t;
      };
      wk.interpreter = std::make_unique<runtime::Interpreter>(model, ro);
    }
    Captured out;
    wk.current = &out;
    with_context(str_cat("weight-only statistics, sample ", sample.source_str()), [&] { wk.interpreter->run(sample.inputs); });
    return out;
  };
  const std::function<void(const data::Sample&, Captured&)> consume = [&](const data::Sample&, Captured& part) {
    for (const auto& [v, t] : part) {
      const int64_t k = t.dims().back(), rows = static_cast<int64_t>(t.numel()) / k;
      std::vector<double>& h = grams[v];
      h.resize(static_cast<size_t>(k * k), 0.0);
      const float* x = t.data<float>();
      for (int64_t r = 0; r < rows; ++r, x += k)
        for (int64_t i = 0; i < k; ++i) {
          const double xi = x[i];
          if (xi == 0) continue;
          double* row = h.data() + i * k;
          for (int64_t j = i; j < k; ++j) row[j] += xi * static_cast<double>(x[j]);
        }
    }
  };
  const size_t done = data::for_each_ordered<Captured>(ds, workers, 0, work, consume);
  PTQ_CHECK(done > 0, IoError, "no calibration samples (all were skipped or the data set is empty)");
  for (auto& [v, h] : grams) {  // mirror the upper triangle
    const int64_t k = wanted[v];
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < i; ++j) h[static_cast<size_t>(i * k + j)] = h[static_cast<size_t>(j * k + i)];
  }
  return grams;
}

}  // namespace

QuantizeResult quantize_weight_only(const QuantizeOptions& o) {
  QuantizeResult result;
  PTQ_CHECK(!same_file(o.model_path, o.output_path), UsageError, "the output '", o.output_path,
            "' would overwrite the input model");
  PTQ_CHECK(o.load_calib.empty() && o.save_calib.empty(), UsageError,
            "--mode weight-only has no calibration table (--load-calib / --save-calib)");
  if (o.check_accuracy) report::validate(o.accuracy);
  emit::WeightOnlyConfig wo;
  wo.bits = o.bits;
  wo.block_size = o.block_size;
  // Asymmetric (zero points) and, for 4 bits, the per-block clip search: measured on MiniLM-L6
  // (docs/results.md#weight-only-mode), symmetric loses 0.004-0.006 cosine at 4 bits.
  wo.symmetric = false;
  wo.clip_search = o.bits == 4;
  ir::Model model = load_prepared(o.model_path);
  result.fp32_bytes = model_bytes(model, o.model_path);
  // --calib: GPTQ from the MatMul inputs' statistics (MiniLM int4 cosine 0.9825 -> 0.9912, docs/results.md).
  Grams grams;
  if (!o.calib_data.empty()) {
    data::Dataset ds = open_calib(o, model.graph);
    grams = input_grams(model, ds, wo, o.threads);
    wo.grams = &grams;
  }
  passes::NodeFilter final_filter;
  if (o.check_accuracy) {
    const report::AccuracyOptions acc = accuracy_setup(o);
    const report::Builder builder = [&](const report::NodeSelection& sel) {
      return build_weight_only(model, o.config, wo, to_filter(sel)).built;
    };
    report::AccuracyOutcome outcome = report::check_accuracy(model, builder, acc);
    final_filter = to_filter(outcome.selection);
    result.report = std::move(outcome.report);
  }
  WeightOnlyBuild b = build_weight_only(model, o.config, wo, final_filter);
  result.fp32 = b.fp32;
  result.placement = b.placement;
  result.quantized_nodes = b.summary.quantized_nodes;
  result.weights = b.summary.weights;
  result.notes = b.summary.notes;
  for (std::string& n : passes::unmatched_exclusions(model.graph, o.config)) result.notes.push_back(std::move(n));
  result.int8_bytes = onnx_io::save_model(b.built.model, o.output_path, o.save);
  return result;
}

}  // namespace ptq::pipeline
