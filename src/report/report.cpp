// The report's budget gate, JSON form (docs/report-schema.md) and file writing.
#include "ptq/report/report.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "fixed.h"

namespace ptq::report {
namespace {

using nlohmann::ordered_json;

// Rounded so the JSON never depends on the last bits of a float sum's formatting.
ordered_json num(double v, int digits = 6) {
  if (!std::isfinite(v)) return nullptr;
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}
ordered_json opt_num(const std::optional<double>& v, int digits = 6) { return v ? num(*v, digits) : nullptr; }

ordered_json output_json(const OutputReport& o) {
  ordered_json j;
  j["name"] = o.name;
  j["shape"] = o.shape;
  j["compared"] = o.compared;
  j["sqnr_db"] = o.compared ? opt_num(o.stats.sqnr_db(), 4) : nullptr;
  j["cosine"] = o.compared ? num(o.stats.cosine(), 8) : nullptr;
  j["max_abs_error"] = o.compared ? num(o.stats.max_abs, 8) : nullptr;
  j["mean_abs_error"] = o.compared ? num(o.stats.mean_abs(), 8) : nullptr;
  return j;
}

ordered_json classification_json(const Classification& c, const Report& r) {
  ordered_json j;
  j["output"] = c.output;
  j["classes"] = c.classes;
  j["rows"] = c.rows;
  j["top1_agreement"] = num(c.agreement_top1(), 4);
  j["top1_agreement_count"] = c.agree_top1;
  j["top5_agreement"] = num(c.agreement_top5(), 4);
  j["top5_agreement_count"] = c.agree_top5;
  j["labeled"] = c.labeled;
  const bool acc = c.has_labels && c.labeled > 0;
  const auto pct = [&](double v) -> ordered_json { return acc ? num(v, 4) : nullptr; };
  const auto cnt = [&](size_t v) -> ordered_json { return acc ? ordered_json(v) : nullptr; };
  (void)r;
  j["fp32_top1"] = pct(c.a_top1_pct());
  j["fp32_top1_correct"] = cnt(c.a_top1);
  j["fp32_top5"] = pct(c.a_top5_pct());
  j["fp32_top5_correct"] = cnt(c.a_top5);
  j["int8_top1"] = pct(c.b_top1_pct());
  j["int8_top1_correct"] = cnt(c.b_top1);
  j["int8_top5"] = pct(c.b_top5_pct());
  j["int8_top5_correct"] = cnt(c.b_top5);
  j["top1_drop_pt"] = pct(c.top1_drop());
  j["top5_drop_pt"] = pct(c.a_top5_pct() - c.b_top5_pct());
  return j;
}

}  // namespace

double Measure::min_sqnr() const {
  double v = std::numeric_limits<double>::infinity();
  for (const OutputReport& o : outputs)
    if (o.compared) v = std::min(v, sqnr_or_inf(o.stats.sqnr_db()));
  return v;
}

std::string format_db(const std::optional<double>& db) {
  if (!db) return "inf";
  if (!std::isfinite(*db)) return *db > 0 ? "inf" : "-inf";
  return fixed(*db, 2);
}

std::string Gate::line() const {
  if (passed) return "PASSED";
  std::string s = "FAILED: ";
  for (size_t i = 0; i < sanity.size(); ++i) s += (i ? "; " : "") + sanity[i];
  for (size_t i = 0; i < failures.size(); ++i) s += (i || !sanity.empty() ? "; " : "") + failures[i];
  return s;
}

namespace {

// Below this share of chance (1 / classes), fp32 top-1 says the data does not fit the model.
constexpr double kChanceFactor = 1.5;
// Fewer labeled rows than this cannot tell chance from a weak model.
constexpr size_t kMinRowsForChance = 20;

std::vector<std::string> sanity_checks(const Measure& m) {
  std::vector<std::string> out;
  for (const OutputReport& o : m.outputs)
    if (o.compared && (!std::isfinite(o.stats.signal) || !std::isfinite(o.stats.norm_b) || !std::isfinite(o.stats.noise)))
      out.push_back(str_cat("sanity: output '", o.name,
                            "' holds NaN or Inf in the fp32 or int8 model; no accuracy figure means anything"));
  if (m.classification && m.classification->has_labels && m.classification->labeled >= kMinRowsForChance &&
      m.classification->classes > 1) {
    const Classification& c = *m.classification;
    const double chance = 100.0 / static_cast<double>(c.classes);
    if (c.a_top1_pct() < kChanceFactor * chance)
      out.push_back(str_cat("sanity: fp32 top-1 ", fixed(c.a_top1_pct(), 2), "% (", c.a_top1, "/", c.labeled,
                            ") is at chance level for ", c.classes,
                            " classes: the preprocessing or the labels do not match the model (see --preprocess)"));
  }
  return out;
}

}  // namespace

Gate check_budget(const Budget& b, const Measure& m) {
  Gate g;
  g.sanity = sanity_checks(m);
  g.checked = b.any() || !g.sanity.empty();
  const Classification* c = m.classification ? &*m.classification : nullptr;
  if (b.max_drop) {
    PTQ_CHECK(c && c->has_labels, UsageError, "--max-drop needs --labels and a classifier output");
    PTQ_CHECK(c->labeled > 0, IoError, "--max-drop: no evaluated sample has a label in the labels file");
    if (c->top1_drop() > *b.max_drop)
      g.failures.push_back(str_cat("top-1 drop ", fixed(c->top1_drop(), 2), " pt > ", fixed(*b.max_drop, 2),
                                   " pt allowed (fp32 ", fixed(c->a_top1_pct(), 2), "%, int8 ",
                                   fixed(c->b_top1_pct(), 2), "%)"));
  }
  if (b.min_agreement) {
    PTQ_CHECK(c, UsageError, "--min-agreement needs a classifier output (see --task)");
    if (c->agreement_top1() < *b.min_agreement)
      g.failures.push_back(str_cat("top-1 agreement ", fixed(c->agreement_top1(), 2), "% < ",
                                   fixed(*b.min_agreement, 2), "% required"));
  }
  if (b.min_sqnr) {
    const double v = m.min_sqnr();
    if (v < *b.min_sqnr)
      g.failures.push_back(str_cat("output SQNR ", format_db(v), " dB < ", fixed(*b.min_sqnr, 2), " dB required"));
  }
  g.passed = g.failures.empty() && g.sanity.empty();
  return g;
}

std::string to_json(const Report& r) {
  ordered_json j;
  j["schema_version"] = kSchemaVersion;
  j["command"] = r.command;
  j["models"] = {{"reference", r.model_a}, {"test", r.model_b}, {"reference_kind", r.a_kind},
                 {"test_kind", r.b_kind}, {"test_execution", r.b_execution}};
  j["data"] = {{"path", r.data}, {"samples", r.measure.samples}, {"is_calibration_data", r.data_is_calibration},
               {"labels", r.labels.empty() ? ordered_json(nullptr) : ordered_json(r.labels)}};
  j["task"] = r.task;
  j["outputs"] = ordered_json::array();
  for (const OutputReport& o : r.measure.outputs) j["outputs"].push_back(output_json(o));
  j["min_output_sqnr_db"] = num(r.measure.min_sqnr(), 4);
  j["classification"] = r.measure.classification ? classification_json(*r.measure.classification, r) : nullptr;
  j["layers"] = ordered_json::array();
  for (const LayerReport& l : r.layers) {
    ordered_json x;
    x["node"] = l.node;
    x["op"] = l.op;
    x["tensor"] = l.tensor;
    x["measured"] = l.measured;
    x["sqnr_db"] = l.measured ? opt_num(l.sqnr_db, 4) : nullptr;
    x["sensitivity_db"] = l.sensitivity_measured ? opt_num(l.sensitivity_db, 4) : nullptr;
    x["sensitivity_rank"] = l.sensitivity_rank ? ordered_json(l.sensitivity_rank) : ordered_json(nullptr);
    x["kept_fp32"] = l.kept_fp32;
    j["layers"].push_back(x);
  }
  j["layer_samples"] = r.layer_samples;
  j["sensitivity"] = {{"samples", r.sensitivity_samples},
                      {"metric", "model-output SQNR (dB) with only this node quantized; lower is more sensitive"}};
  ordered_json gate;
  gate["checked"] = r.gate.checked;
  gate["passed"] = r.gate.passed;
  gate["result"] = r.gate.checked ? r.gate.line() : "not checked";
  gate["budget"] = {{"max_drop_pt", opt_num(r.budget.max_drop)},
                    {"min_agreement_pct", opt_num(r.budget.min_agreement)},
                    {"min_sqnr_db", opt_num(r.budget.min_sqnr)}};
  gate["failures"] = r.gate.failures;
  gate["sanity"] = r.gate.sanity;
  j["gate"] = gate;
  ordered_json fb;
  fb["enabled"] = r.auto_fallback;
  fb["max_nodes"] = r.max_fallback;
  fb["steps"] = ordered_json::array();
  for (const FallbackStep& s : r.fallback)
    fb["steps"].push_back({{"step", s.step}, {"node", s.node}, {"op", s.op},
                           {"sensitivity_db", opt_num(s.sensitivity_db, 4)},
                           {"min_output_sqnr_db", opt_num(s.min_sqnr_db, 4)},
                           {"sqnr_gain_db", opt_num(s.sqnr_gain_db, 4)},
                           {"top1_agreement_gain", opt_num(s.agreement_gain, 4)},
                           {"top1_agreement", opt_num(s.agreement_top1, 4)},
                           {"int8_top1", opt_num(s.b_top1, 4)}, {"passed", s.passed}});
  fb["kept_fp32"] = r.kept_fp32;
  j["fallback"] = fb;
  j["notes"] = r.notes;
  if (r.padding) {
    ordered_json x;
    x["mask_input"] = r.padding->mask_input;
    x["samples"] = r.padding->samples;
    x["outputs"] = ordered_json::array();
    for (const PaddingOutput& o : r.padding->outputs)
      x["outputs"].push_back({{"name", o.name}, {"reference_min_cosine", num(o.a_min_cosine)},
                              {"reference_mean_cosine", num(o.a_mean_cosine)}, {"test_min_cosine", num(o.b_min_cosine)},
                              {"test_mean_cosine", num(o.b_mean_cosine)}});
    j["padding"] = x;
  } else {
    j["padding"] = nullptr;
  }
  if (r.summary) {
    const Summary& sm = *r.summary;
    ordered_json x;
    x["ptq_version"] = sm.ptq_version;
    x["settings"] = ordered_json::object();
    for (const auto& [k, v] : sm.settings) x["settings"][k] = v;
    x["inputs"] = ordered_json::object();
    for (const auto& [k, v] : sm.inputs) x["inputs"][k] = v;
    x["fp32_bytes"] = sm.fp32_bytes;
    x["int8_bytes"] = sm.int8_bytes;
    x["quantized_nodes"] = sm.quantized_nodes;
    x["fp32_nodes"] = sm.fp32_nodes;
    j["summary"] = x;
  }
  return j.dump(2) + "\n";
}

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

void write_reports(const Report& r, const std::string& json, const std::string& html, const std::string& md) {
  if (!json.empty()) write_text_file(json, to_json(r));
  if (!html.empty()) write_text_file(html, render_html(r));
  if (!md.empty()) write_text_file(md, render_markdown(r));
}

}  // namespace ptq::report
