// Accuracy check orchestration: sensitivity on a sample subset, full evaluation with per-layer
// probes, budget gate, and greedy fallback of the most sensitive nodes to fp32.
#include "ptq/report/accuracy.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "ptq/core/error.h"

namespace ptq::report {
namespace {

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

EvalOptions eval_options(const AccuracyOptions& o, const Labels* labels) {
  EvalOptions e;
  e.task = o.task;
  e.labels = labels;
  e.max_samples = o.max_samples;
  e.a_runtime = o.fp32_runtime;
  e.b_runtime = o.int8_runtime;
  return e;
}

void finish_measure(Report& r, const EvalResult& e, const std::vector<Probe>& probes) {
  r.measure = e.measure;
  r.task = e.measure.classification ? "classify" : "generic";
  for (size_t i = 0; i < probes.size() && i < r.layers.size(); ++i) {
    r.layers[i].measured = e.probes[i].has_value();
    if (e.probes[i]) r.layers[i].sqnr_db = e.probes[i]->sqnr_db();
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
  return make_probe(g, n.output, g.find(n.output) != ir::kNone ? n.output : n.test_output);
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

AccuracyOutcome check_accuracy(const ir::Model& fp32, const Builder& build, const AccuracyOptions& o) {
  validate(o);
  std::unique_ptr<Labels> labels;
  if (!o.labels_path.empty()) labels = std::make_unique<Labels>(Labels::load(o.labels_path));
  data::Dataset ds = data::open_dataset(o.data_path, fp32.graph, o.data);
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

  // Sensitivity: only node i quantized, on the first N samples (kept in memory).
  std::vector<size_t> ranking;  // indices into nodes, most sensitive first
  const size_t sens_n = std::min(o.sensitivity_samples, o.max_samples ? o.max_samples : ds.size());
  if (sens_n > 0 && !nodes.empty()) {
    Samples subset(ds, sens_n);
    ReferenceCache ref;
    EvalOptions e = eval_options(o, nullptr);
    e.max_samples = sens_n;
    e.task = Task::kGeneric;
    say(o, str_cat("sensitivity: ", nodes.size(), " nodes, one at a time, on ", sens_n, " samples"));
    for (size_t i = 0; i < nodes.size(); ++i) {
      NodeSelection sel;
      sel.use_only = true;
      sel.only.insert(nodes[i].id);
      const BuiltModel one = build(sel);
      const EvalResult res = evaluate(fp32, one.model, subset, e, &ref);
      r.layers[i].sensitivity_measured = true;
      r.layers[i].sensitivity_db = finite_or_null(res.measure.min_sqnr());
      ranking.push_back(i);
    }
    r.sensitivity_samples = ref.samples;
    std::stable_sort(ranking.begin(), ranking.end(), [&](size_t a, size_t b) {
      return sqnr_or_inf(r.layers[a].sensitivity_db) < sqnr_or_inf(r.layers[b].sensitivity_db);
    });
    for (size_t k = 0; k < ranking.size(); ++k) r.layers[ranking[k]].sensitivity_rank = static_cast<int>(k + 1);
  }

  // The full int8 model on all evaluation data, with the per-layer probes.
  std::vector<Probe> probes;
  for (const QuantNode& n : nodes) probes.push_back(test_probe(out.model.model.graph, n));
  Samples all(ds);
  ReferenceCache ref;
  EvalOptions e = eval_options(o, labels.get());
  e.probes = probes;
  say(o, str_cat("evaluating fp32 vs int8 on ", o.max_samples ? std::min(o.max_samples, ds.size()) : ds.size(),
                 " samples"));
  finish_measure(r, evaluate(fp32, out.model.model, all, e, &ref), probes);

  if (o.auto_fallback && !r.gate.passed) {
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
      const EvalResult res = evaluate(fp32, last->model, all, step_opts, &ref);
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
      finish_measure(r, evaluate(fp32, out.model.model, all, e, &ref), probes);
    }
  }
  out.report = std::move(r);
  return out;
}

Report compare_models(const ir::Model& a, const ir::Model& b, const AccuracyOptions& o) {
  validate(o);
  PTQ_CHECK(!o.auto_fallback, UsageError, "--auto-fallback applies to quantize, not compare");
  std::unique_ptr<Labels> labels;
  if (!o.labels_path.empty()) labels = std::make_unique<Labels>(Labels::load(o.labels_path));
  data::Dataset ds = data::open_dataset(o.data_path, a.graph, o.data);
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
    probes.push_back(make_probe(b.graph, name, name));
    LayerReport l;
    l.node = node_label(n, a.graph);
    l.op = n.op_type;
    l.tensor = name;
    r.layers.push_back(l);
  }
  Samples all(ds);
  EvalOptions e = eval_options(o, labels.get());
  e.probes = probes;
  say(o, str_cat("comparing on ", o.max_samples ? std::min(o.max_samples, ds.size()) : ds.size(), " samples"));
  finish_measure(r, evaluate(a, b, all, e, nullptr), probes);
  // Tensors that never appeared as float in both (integer tensors, other shapes) are dropped.
  std::vector<LayerReport> kept;
  for (LayerReport& l : r.layers)
    if (l.measured) kept.push_back(std::move(l));
  r.layers = std::move(kept);
  return r;
}

}  // namespace ptq::report
