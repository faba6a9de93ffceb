// Dynamic quantization job: prepare, smooth (measured or data-free), plan, emit int8 weights + DynamicQuantizeLinear.
#include "dynamic.h"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/emit/dynamic_emitter.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/opset.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/passes/smoothquant.h"
#include "smoothing.h"

namespace ptq::pipeline {
namespace {

// Only the plan's Gather tables: they need no activation range (the output shares the table's
// scale), so they are emitted as QDQ as in static mode.
passes::NodeFilter gathers_only(const ir::Graph& g, const passes::QuantPlan& plan, const passes::NodeFilter& filter) {
  passes::NodeFilter f = filter;
  f.use_only = true;
  f.only.clear();
  for (const passes::NodeQuant& q : plan.nodes)
    if (g.node(q.node).op_type == "Gather" && filter.admits(q.node)) f.only.insert(q.node);
  return f;
}

bool activation_function(const ir::Node& n) {
  static const char* kOps[] = {"Mul", "Div", "Add", "Sub", "Erf", "Tanh", "Sigmoid", "Relu", "Gelu", "Pow"};
  return std::any_of(std::begin(kOps), std::end(kOps), [&](const char* op) { return n.op_type == op; });
}

// MatMul/Gemm reading an activation function's output (GELU's x·Φ(x) ends in a Mul) that has no
// per-channel statistics to smooth with: MiniLM's FFN down-projections, whose GELU outputs
// carry channel outliers one per-tensor run-time scale does not hold (cosine 0.9943 -> 0.9973
// with them fp32; docs/results.md). With --calib they are smoothed and quantized instead.
std::set<ir::NodeId> unsmoothable_readers(const ir::Graph& g, const std::map<std::string, std::vector<float>>& stats) {
  std::set<ir::NodeId> out;
  for (const passes::SmoothGroup& grp : passes::smoothquant_groups(g)) {
    const ir::Node* p = g.producer(grp.activation);
    if (stats.count(g.value(grp.activation).name) || !p || !p->is_default_domain() || !activation_function(*p))
      continue;
    out.insert(grp.consumers.begin(), grp.consumers.end());
  }
  return out;
}

struct DynamicBuild {
  report::BuiltModel built;
  emit::EmitSummary summary;
  std::vector<std::string> fp32;
  std::string placement;
};

DynamicBuild build_dynamic(const ir::Model& prepared, const quant::QuantConfig& config,
                           passes::NodeFilter filter, const std::set<ir::NodeId>& keep_fp32) {
  filter.fp32.insert(keep_fp32.begin(), keep_fp32.end());
  DynamicBuild b;
  b.built.model = prepared;
  ir::Model& model = b.built.model;
  const passes::RangeMap ranges = placeholder_ranges(model.graph);
  const passes::QuantPlan plan = passes::plan_quantization(model.graph, config, ranges, filter);
  b.placement = plan.placement;
  b.fp32 = plan.fp32;
  for (const passes::NodeQuant& q : plan.nodes) {
    const ir::Node& n = model.graph.node(q.node);
    if (!emit::dynamic_candidate(model.graph, q)) continue;
    const std::string out = model.graph.value(n.outputs[0]).name;
    b.built.nodes.push_back({q.node, n.name.empty() ? str_cat(n.op_type, " -> ", out) : n.name, n.op_type, out, out, {}});
  }
  const passes::QuantPlan tables =
      passes::plan_quantization(model.graph, config, ranges, gathers_only(model.graph, plan, filter));
  const emit::EmitSummary t = emit::emit_qdq(model, tables, ranges, config);
  b.summary = emit::emit_dynamic(model, plan, config);
  b.summary.weights += t.weights;
  b.summary.quantized_nodes += t.quantized_nodes;
  b.summary.notes.insert(b.summary.notes.end(), t.notes.begin(), t.notes.end());
  model.ir_version = std::max(model.ir_version, onnx_io::min_ir_version_for_opset(model.opset()));
  ir::verify(model);
  return b;
}

}  // namespace

QuantizeResult quantize_dynamic(const QuantizeOptions& o) {
  QuantizeResult result;
  PTQ_CHECK(!same_file(o.model_path, o.output_path), UsageError, "the output '", o.output_path,
            "' would overwrite the input model");
  PTQ_CHECK(o.load_calib.empty() && o.save_calib.empty(), UsageError,
            "--mode dynamic has no calibration table (--load-calib / --save-calib)");
  if (o.check_accuracy) report::validate(o.accuracy);
  ir::Model model = load_prepared(o.model_path);
  result.fp32_bytes = model_bytes(model, o.model_path);
  // DynamicQuantizeLinear maps each tensor's own range onto all 256 codes, so adjacent u8 x s8
  // products saturate ORT's vpmaddubsw pairs as an image input does in static mode: 7-bit
  // weights by default (MiniLM 0.9958 -> 0.9973, docs/results.md); --no-reduce-range: 8 bits.
  quant::QuantConfig config = o.config;
  if (config.reduce_range == quant::ReduceRange::kAuto) config.reduce_range = quant::ReduceRange::kOn;
  // SmoothQuant as in static mode (on by default for transformers), with the per-channel
  // activation maxima measured on --calib when given, else estimated from the norms' weights.
  std::optional<float> smooth = o.smoothquant;
  const bool transformer = passes::transformer_placement(model.graph, config);
  if (!smooth && !o.no_smoothquant && transformer) smooth = passes::kDefaultSmoothQuantAlpha;
  std::map<std::string, std::vector<float>> channel_max;
  if (smooth && !o.calib_data.empty()) {
    data::Dataset ds = open_calib(o, model.graph);
    channel_max = smoothing_statistics(model, ds, o.threads);
  } else if (smooth) {
    channel_max = estimated_smoothing_statistics(model);
  }
  std::set<ir::NodeId> keep_fp32;
  if (transformer) keep_fp32 = unsmoothable_readers(model.graph, channel_max);
  if (smooth) apply_smoothquant(model, channel_max, *smooth);
  passes::NodeFilter final_filter;
  if (o.check_accuracy) {
    const report::AccuracyOptions acc = accuracy_setup(o);
    const report::Builder builder = [&](const report::NodeSelection& sel) {
      return build_dynamic(model, config, to_filter(sel), keep_fp32).built;
    };
    report::AccuracyOutcome outcome = report::check_accuracy(model, builder, acc);
    final_filter = to_filter(outcome.selection);
    result.report = std::move(outcome.report);
  }
  DynamicBuild b = build_dynamic(model, config, final_filter, keep_fp32);
  result.fp32 = b.fp32;
  result.placement = b.placement;
  result.quantized_nodes = b.summary.quantized_nodes;
  result.activation_pairs = b.summary.activation_pairs;
  result.weights = b.summary.weights;
  result.notes = b.summary.notes;
  for (std::string& n : passes::unmatched_exclusions(model.graph, o.config)) result.notes.push_back(std::move(n));
  result.int8_bytes = onnx_io::save_model(b.built.model, o.output_path, o.save);
  return result;
}

}  // namespace ptq::pipeline
