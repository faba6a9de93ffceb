// Accuracy check orchestration: sensitivity on a sample subset, full evaluation with per-layer
// probes, budget gate, and greedy fallback of the most sensitive nodes to fp32.
#include "ptq/report/accuracy.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "ptq/core/error.h"
#include "ptq/report/padding.h"
#include "ptq/report/sensitivity.h"
#include "fixed.h"

namespace ptq::report {
namespace {

// The evaluation data: the folder or list file, or the samples in memory.
data::Dataset open_data(const AccuracyOptions& o, const ir::Graph& graph) {
  if (o.samples) return data::memory_dataset(o.samples, o.data_path, graph, o.data);
  return data::open_dataset(o.data_path, graph, o.data);
}

void say(const AccuracyOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

Report base_report(const AccuracyOptions& o, const char* command) {
  Report r;
  r.command = command;
  r.model_a = o.model_a;
  r.model_b = o.model_b;
  r.b_execution = o.int8_execution;
  r.data = o.data_path;
  r.data_is_calibration = o.data_is_calibration;
  r.labels = o.labels_path;
  r.budget = o.budget;
  r.auto_fallback = o.auto_fallback;
  r.max_fallback = o.auto_fallback ? o.max_fallback : 0;
  if (o.data_is_calibration)
    r.notes.push_back("evaluated on the calibration data (no --eval): figures are optimistic");
  return r;
}

// Outputs whose SQNR is below kLowOutputSqnrDb: a note naming them, the layers with the lowest
// SQNR, and what to try. (yolox-nano's 6.9 dB output lost a third of its detections silently.)
constexpr double kLowOutputSqnrDb = 10.0;

void note_low_sqnr(Report& r) {
  std::string low;
  for (const OutputReport& o : r.measure.outputs) {
    const std::optional<double> db = o.compared ? o.stats.sqnr_db() : std::nullopt;
    if (db && *db < kLowOutputSqnrDb) low += str_cat(low.empty() ? "" : ", ", "'", o.name, "' ", format_db(db), " dB");
  }
  if (low.empty()) return;
  std::vector<const LayerReport*> layers;
  for (const LayerReport& l : r.layers)
    if (l.measured && l.sqnr_db) layers.push_back(&l);
  std::stable_sort(layers.begin(), layers.end(), [](const LayerReport* a, const LayerReport* b) { return *a->sqnr_db < *b->sqnr_db; });
  std::string worst;
  for (size_t i = 0; i < std::min<size_t>(3, layers.size()); ++i)
    worst += str_cat(i ? ", " : "", layers[i]->node, " (", format_db(layers[i]->sqnr_db), " dB)");
  r.notes.push_back(str_cat("warning: low output SQNR (", low, ", below ", kLowOutputSqnrDb, " dB)",
                            worst.empty() ? "" : "; lowest layers: " + worst,
                            "; try --method entropy or mse, --exclude-nodes for those layers, or --auto-fallback --min-sqnr 20"));
}

// The padded-batch check when the data has an attention mask, with a warning when padding
// changes the test model's outputs (a quantized mask path) but not the reference's.
void note_padding(Report& r, const ir::Model& a, const ir::Model& b, data::Dataset& ds, const AccuracyOptions& o) {
  try {
    r.padding = check_padding(a, b, ds, o.max_samples, o.fp32_runtime, o.int8_runtime);
  } catch (const Error& e) {  // e.g. a fixed sequence length: the models cannot run a longer one
    ds.rewind();
    r.notes.push_back(str_cat("padded-batch check skipped: the padded sample did not run (", e.what(), ")"));
    return;
  }
  if (!r.padding) return;
  std::string bad;
  for (const PaddingOutput& p : r.padding->outputs)
    if (p.b_min_cosine < kPaddingMinCosine && p.a_min_cosine >= kPaddingMinCosine)
      bad += str_cat(bad.empty() ? "" : ", ", "'", p.name, "' ", fixed(p.b_min_cosine, 4));
  if (bad.empty()) return;
  r.notes.push_back(str_cat("warning: padding changes the ", r.b_kind, " outputs: ", bad, " (min cosine between a sample and itself padded with '",
                            r.padding->mask_input, "' = 0; ", r.a_kind, " >= ", kPaddingMinCosine,
                            "); a mask or attention path is quantized: keep it fp32 (--exclude-nodes) or calibrate with padded batches"));
}

EvalOptions eval_options(const AccuracyOptions& o, const Labels* labels) {
  EvalOptions e;
  e.task = o.task;
  e.labels = labels;
  e.max_samples = o.max_samples;
  e.probe_samples = o.layer_samples;
  e.a_runtime = o.fp32_runtime;
  e.b_runtime = o.int8_runtime;
  e.threads = o.fp32_runtime.threads;
  return e;
}

void finish_measure(Report& r, const EvalResult& e, const std::vector<Probe>& probes, size_t layer_samples) {
  r.measure = e.measure;
  r.layer_samples = layer_samples ? std::min(layer_samples, e.measure.samples) : e.measure.samples;
  r.task = e.measure.classification ? "classify" : "generic";
  for (size_t i = 0; i < probes.size() && i < r.layers.size(); ++i) {
    r.layers[i].measured = e.probes[i].has_value();
    if (e.probes[i]) r.layers[i].sqnr_db = e.probes[i]->sqnr_db();
    r.layers[i].histogram = i < e.histograms.size() ? e.histograms[i] : std::nullopt;
  }
  r.gate = check_budget(r.budget, r.measure);
}

std::optional<double> finite_or_null(double v) { return std::isfinite(v) ? std::optional<double>(v) : std::nullopt; }

std::string node_label(const ir::Node& n, const ir::Graph& g) {
  if (!n.name.empty()) return n.name;
  return str_cat(n.op_type, " -> ", n.outputs.empty() ? std::string("?") : g.value(n.outputs[0]).name);
}

// The node's output in a test graph: the fp32 name when the graph still has it (no folded
// activation, or the node went back to fp32 with its Relu), else the name it had before Q/DQ.
Probe test_probe(const ir::Graph& g, const QuantNode& n) {
  Probe p = make_probe(g, n.output, g.find(n.output) != ir::kNone ? n.output : n.test_output);
  p.channel_scale = n.channel_scale;
  return p;
}

}  // namespace

void validate(const AccuracyOptions& o) {
  PTQ_CHECK(!o.budget.max_drop || !o.labels_path.empty(), UsageError, "--max-drop needs --labels FILE.tsv");
  PTQ_CHECK(!o.auto_fallback || o.budget.any(), UsageError,
            "--auto-fallback needs a budget: --max-drop, --min-agreement or --min-sqnr");
  PTQ_CHECK(!o.budget.max_drop || o.task != Task::kGeneric, UsageError, "--max-drop needs a classifier (--task)");
  PTQ_CHECK(!o.budget.min_agreement || o.task != Task::kGeneric, UsageError,
            "--min-agreement needs a classifier (--task)");
}

void preflight(const ir::Model& fp32, const AccuracyOptions& o) {
  validate(o);
  if (!o.labels_path.empty()) Labels::load(o.labels_path);
  data::Dataset ds = open_data(o, fp32.graph);
  PTQ_CHECK(ds.size() > 0, IoError, o.data_path, ": no samples to evaluate");
}

AccuracyOutcome check_accuracy(const ir::Model& fp32, const Builder& build, const AccuracyOptions& o) {
  validate(o);
  std::unique_ptr<Labels> labels;
  if (!o.labels_path.empty()) labels = std::make_unique<Labels>(Labels::load(o.labels_path));
  data::Dataset ds = open_data(o, fp32.graph);
  Report r = base_report(o, "quantize");
  AccuracyOutcome out{r, build({}), {}};
  const std::vector<QuantNode> nodes = out.model.nodes;
  for (const QuantNode& n : nodes) {
    LayerReport l;
    l.node = n.label;
    l.op = n.op;
    l.tensor = n.output;
    r.layers.push_back(l);
  }

  // Sensitivity: only node i quantized, on the first N samples (sensitivity.h).
  std::vector<size_t> ranking;  // indices into nodes, most sensitive first
  const size_t sens_n = std::min(o.sensitivity_samples, o.max_samples ? o.max_samples : ds.size());
  if (sens_n > 0 && !nodes.empty()) {
    say(o, str_cat("sensitivity: ", nodes.size(), " nodes, one at a time, on ", sens_n, " samples"));
    const std::vector<Fp32Sample> kept = fp32_values(fp32, ds, sens_n, o);
    PTQ_CHECK(!kept.empty(), IoError, "no samples to evaluate");
    const std::vector<double> sqnr = node_sensitivity(fp32, build, nodes, kept, o);
    for (size_t i = 0; i < nodes.size(); ++i) {
      r.layers[i].sensitivity_measured = true;
      r.layers[i].sensitivity_db = finite_or_null(sqnr[i]);
      ranking.push_back(i);
    }
    r.sensitivity_samples = kept.size();
    std::stable_sort(ranking.begin(), ranking.end(), [&](size_t a, size_t b) {
      return sqnr_or_inf(r.layers[a].sensitivity_db) < sqnr_or_inf(r.layers[b].sensitivity_db);
    });
    for (size_t k = 0; k < ranking.size(); ++k) r.layers[ranking[k]].sensitivity_rank = static_cast<int>(k + 1);
  }

  // The full int8 model on all evaluation data, with the per-layer probes.
  std::vector<Probe> probes;
  for (const QuantNode& n : nodes) probes.push_back(test_probe(out.model.model.graph, n));
  ReferenceCache ref;
  EvalOptions e = eval_options(o, labels.get());
  e.probes = probes;
  say(o, str_cat("evaluating fp32 vs int8 on ", o.max_samples ? std::min(o.max_samples, ds.size()) : ds.size(),
                 " samples"));
  finish_measure(r, evaluate(fp32, out.model.model, ds, e, &ref), probes, o.layer_samples);

  if (o.auto_fallback && !r.gate.passed && r.gate.sanity.empty()) {  // fp32 returns cannot fix the setup
    PTQ_CHECK(!ranking.empty(), UsageError, "--auto-fallback needs the sensitivity ranking (--sensitivity-samples > 0)");
    NodeSelection sel;
    EvalOptions step_opts = eval_options(o, labels.get());
    double prev_sqnr = r.measure.min_sqnr();
    std::optional<double> prev_agree;
    if (r.measure.classification) prev_agree = r.measure.classification->agreement_top1();
    std::optional<BuiltModel> last;
    for (size_t k = 0; k < std::min(o.max_fallback, ranking.size()); ++k) {
      const QuantNode& n = nodes[ranking[k]];
      sel.fp32.insert(n.id);
      r.layers[ranking[k]].kept_fp32 = true;
      r.kept_fp32.push_back(n.label);
      last = build(sel);
      const EvalResult res = evaluate(fp32, last->model, ds, step_opts, &ref);
      const Gate g = check_budget(r.budget, res.measure);
      FallbackStep st;
      st.step = static_cast<int>(k + 1);
      st.node = n.label;
      st.op = n.op;
      st.sensitivity_db = r.layers[ranking[k]].sensitivity_db;
      st.min_sqnr_db = finite_or_null(res.measure.min_sqnr());
      const double now = res.measure.min_sqnr();
      if (std::isfinite(now) && std::isfinite(prev_sqnr)) st.sqnr_gain_db = now - prev_sqnr;
      prev_sqnr = now;
      if (const auto& c = res.measure.classification) {
        st.agreement_top1 = c->agreement_top1();
        if (prev_agree) st.agreement_gain = *st.agreement_top1 - *prev_agree;
        prev_agree = st.agreement_top1;
        if (c->has_labels && c->labeled) st.b_top1 = c->b_top1_pct();
      }
      st.passed = g.passed;
      r.fallback.push_back(st);
      say(o, str_cat("auto-fallback step ", k + 1, ": ", n.label, " back to fp32 -> ", g.passed ? "budget holds" : g.line()));
      if (g.passed) break;
    }
    if (last) {
      out.model = std::move(*last);
      out.selection = sel;
      // The written model's figures, with per-layer probes (tensor names follow the new graph).
      for (size_t i = 0; i < probes.size(); ++i)
        probes[i] = test_probe(out.model.model.graph, nodes[i]);
      e.probes = probes;
      finish_measure(r, evaluate(fp32, out.model.model, ds, e, &ref), probes, o.layer_samples);
    }
  }
  note_low_sqnr(r);
  note_padding(r, fp32, out.model.model, ds, o);
  out.report = std::move(r);
  return out;
}

// The Relu or Clip that is the only reader of `x` in `a` when `b` has `x` but not the
// activation's output (ptq folds such activations into the producer's Q range); else nullptr.
const ir::Node* folded_activation(const ir::Graph& a, const ir::Graph& b, ir::ValueId x) {
  const ir::Value& v = a.value(x);
  if (v.uses.size() != 1) return nullptr;
  const ir::Node& c = a.node(v.uses[0].node);
  if (!c.is_default_domain() || (c.op_type != "Relu" && c.op_type != "Clip") || v.uses[0].slot != 0) return nullptr;
  if (c.outputs.empty() || c.outputs[0] == ir::kNone) return nullptr;
  return b.find(a.value(c.outputs[0]).name) == ir::kNone ? &c : nullptr;
}

Report compare_models(const ir::Model& a, const ir::Model& b, const AccuracyOptions& o) {
  validate(o);
  PTQ_CHECK(!o.auto_fallback, UsageError, "--auto-fallback applies to quantize, not compare");
  std::unique_ptr<Labels> labels;
  if (!o.labels_path.empty()) labels = std::make_unique<Labels>(Labels::load(o.labels_path));
  data::Dataset ds = open_data(o, a.graph);
  Report r = base_report(o, "compare");
  r.a_kind = "A";
  r.b_kind = "B";
  std::vector<Probe> probes;
  std::map<std::string, bool> is_output;
  for (ir::ValueId v : a.graph.outputs) is_output[a.graph.value(v).name] = true;
  for (ir::NodeId id : a.graph.topological_order()) {
    const ir::Node& n = a.graph.node(id);
    if (n.outputs.empty() || n.outputs[0] == ir::kNone || n.op_type == "Constant") continue;
    const std::string& name = a.graph.value(n.outputs[0]).name;
    if (is_output.count(name)) continue;  // reported as a model output
    if (b.graph.find(name) == ir::kNone) continue;
    // A Relu/Clip that B folded into this node's quantized range: B's tensor holds the clipped
    // values, so it is compared with A's activation output, like with like.
    const ir::Node* folded = folded_activation(a.graph, b.graph, n.outputs[0]);
    const std::string& a_name = folded ? a.graph.value(folded->outputs[0]).name : name;
    if (is_output.count(a_name)) continue;
    probes.push_back(make_probe(b.graph, a_name, name));
    probes.back().channel_scale = recorded_channel_scale(b, name);
    LayerReport l;
    l.node = node_label(n, a.graph);
    l.op = folded ? str_cat(n.op_type, "+", folded->op_type) : n.op_type;
    l.tensor = a_name;
    r.layers.push_back(l);
  }
  EvalOptions e = eval_options(o, labels.get());
  e.probes = probes;
  say(o, str_cat("comparing on ", o.max_samples ? std::min(o.max_samples, ds.size()) : ds.size(), " samples"));
  finish_measure(r, evaluate(a, b, ds, e, nullptr), probes, o.layer_samples);
  // Tensors that never appeared as float in both (integer tensors, other shapes) are dropped.
  std::vector<LayerReport> kept;
  for (LayerReport& l : r.layers)
    if (l.measured) kept.push_back(std::move(l));
  r.layers = std::move(kept);
  note_low_sqnr(r);
  note_padding(r, a, b, ds, o);
  return r;
}

}  // namespace ptq::report
