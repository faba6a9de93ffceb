// Self-contained HTML report: the Markdown summary's content, the budget verdict, an inline SVG
// chart of per-layer SQNR and sensitivity with node labels, and value histograms with the int8
// clip range for the worst layers (no scripts, no external resources).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ptq/core/error.h"
#include "ptq/report/report.h"
#include "fixed.h"

namespace ptq::report {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// Per-layer chart: one row per node in graph order, its name as a readable label on the left,
// two horizontal bars (layer SQNR, sensitivity) over the full page width (the SVG scales with
// the page through its viewBox). Infinite values (identical outputs) draw at the axis end.
std::string chart(const Report& r) {
  constexpr double kLabelW = 300, kBarsW = 900, kRowH = 22, kTop = 44;
  double hi = 10;
  for (const LayerReport& l : r.layers)
    for (const auto* v : {&l.sqnr_db, &l.sensitivity_db})
      if (*v && std::isfinite(**v)) hi = std::max(hi, **v);
  hi = std::ceil(hi / 10.0) * 10.0;
  const double w = kLabelW + kBarsW + 20, h = kTop + kRowH * static_cast<double>(r.layers.size()) + 30;
  std::string s = str_cat("<svg class=\"chart\" width=\"100%\" viewBox=\"0 0 ", fixed(w, 0), " ", fixed(h, 0),
                          "\" role=\"img\" aria-label=\"per-layer SQNR and sensitivity\">\n");
  s += str_cat("<rect x=\"", kLabelW, "\" y=\"6\" width=\"12\" height=\"10\" fill=\"#3b6fb6\"/>",
               "<text x=\"", kLabelW + 16, "\" y=\"15\" class=\"t\">layer SQNR: the node's output, ", esc(r.b_kind), " vs ",
               esc(r.a_kind), " on ", r.layer_samples, " samples (dB, higher is better)</text>\n",
               "<rect x=\"", kLabelW, "\" y=\"22\" width=\"12\" height=\"10\" fill=\"#c0504d\"/>",
               "<text x=\"", kLabelW + 16, "\" y=\"31\" class=\"t\">sensitivity: model-output SQNR with only this node "
               "quantized (dB, low = sensitive); grey: kept in fp32</text>\n");
  for (int tick = 0; tick <= 5; ++tick) {  // vertical grid lines with dB labels at the bottom
    const double x = kLabelW + kBarsW * tick / 5;
    s += str_cat("<line x1=\"", fixed(x, 1), "\" x2=\"", fixed(x, 1), "\" y1=\"", kTop - 4, "\" y2=\"", fixed(h - 24, 1),
                 "\" class=\"g\"/><text x=\"", fixed(x, 1), "\" y=\"", fixed(h - 10, 1), "\" class=\"x\">",
                 fixed(hi * tick / 5, 0), " dB</text>\n");
  }
  const auto bar = [&](const std::optional<double>& v, bool measured, double y, const char* color) -> std::string {
    if (!measured) return "";
    const double val = v && std::isfinite(*v) ? std::clamp(*v, 0.0, hi) : (v ? 0.0 : hi);
    return str_cat("<rect x=\"", kLabelW, "\" y=\"", fixed(y, 1), "\" width=\"", fixed(std::max(1.0, kBarsW * val / hi), 1),
                   "\" height=\"8\" fill=\"", color, "\"><title>", format_db(v), " dB</title></rect>");
  };
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    const double y = kTop + kRowH * static_cast<double>(i);
    s += str_cat("<g><title>", esc(l.node), " (", esc(l.op), "): layer SQNR ", l.measured ? format_db(l.sqnr_db) : "-",
                 " dB, sensitivity ", l.sensitivity_measured ? format_db(l.sensitivity_db) : "-", " dB",
                 l.kept_fp32 ? ", kept in fp32" : "", "</title>",
                 "<text x=\"", kLabelW - 6, "\" y=\"", fixed(y + 13, 1), "\" class=\"n\">", esc(l.node), " (", esc(l.op),
                 ")</text>", bar(l.sqnr_db, l.measured, y + 2, l.kept_fp32 ? "#999999" : "#3b6fb6"),
                 bar(l.sensitivity_db, l.sensitivity_measured, y + 11, l.kept_fp32 ? "#bbbbbb" : "#c0504d"), "</g>\n");
  }
  return s + "</svg>\n";
}

// Layers with a histogram, worst layer SQNR first (at most `k`; identical layers never).
std::vector<const LayerReport*> worst_layers(const Report& r, size_t k) {
  std::vector<const LayerReport*> v;
  for (const LayerReport& l : r.layers)
    if (l.histogram && l.histogram->total() > 0 && l.sqnr_db && std::isfinite(*l.sqnr_db)) v.push_back(&l);
  std::stable_sort(v.begin(), v.end(), [](const LayerReport* a, const LayerReport* b) { return *a->sqnr_db < *b->sqnr_db; });
  if (v.size() > k) v.resize(k);
  return v;
}

// One layer's reference values over its int8 range: bar heights on a log scale (activations
// are peaky), the clip range as two red lines, the clipped share in the caption.
std::string histogram_svg(const LayerReport& l) {
  const ValueHistogram& h = *l.histogram;
  constexpr double kW = 900, kH = 150, kLeft = 10, kTop = 8, kPlotH = 110;
  uint64_t peak = 1;
  for (uint64_t c : h.bins) peak = std::max(peak, c);
  const double bw = kW / static_cast<double>(h.bins.size());
  const auto x_of = [&](double v) { return kLeft + kW * (v - h.lo) / (h.hi - h.lo); };
  std::string s = str_cat("<figure><svg class=\"hist\" width=\"100%\" viewBox=\"0 0 ", fixed(kW + 2 * kLeft, 0), " ",
                          fixed(kH, 0), "\" role=\"img\" aria-label=\"value histogram of ", esc(l.node), "\">\n");
  for (size_t i = 0; i < h.bins.size(); ++i) {
    if (!h.bins[i]) continue;
    const double bh = kPlotH * std::log1p(static_cast<double>(h.bins[i])) / std::log1p(static_cast<double>(peak));
    const bool inside = i >= h.first_inside && i < h.end_inside;
    s += str_cat("<rect x=\"", fixed(kLeft + bw * static_cast<double>(i), 1), "\" y=\"", fixed(kTop + kPlotH - bh, 1),
                 "\" width=\"", fixed(std::max(bw - 1, 1.0), 1), "\" height=\"", fixed(bh, 1), "\" fill=\"",
                 inside ? "#3b6fb6" : "#d08a3a", "\"><title>", h.bins[i], " values</title></rect>");
  }
  for (double c : {h.clip_lo, h.clip_hi})
    s += str_cat("<line x1=\"", fixed(x_of(c), 1), "\" x2=\"", fixed(x_of(c), 1), "\" y1=\"", kTop, "\" y2=\"",
                 kTop + kPlotH, "\" class=\"clip\"/>");
  s += str_cat("<line x1=\"", kLeft, "\" x2=\"", kLeft + kW, "\" y1=\"", kTop + kPlotH, "\" y2=\"", kTop + kPlotH,
               "\" class=\"g\"/>\n");
  for (double v : {h.lo, h.clip_lo, h.clip_hi, h.hi})
    s += str_cat("<text x=\"", fixed(std::clamp(x_of(v), kLeft + 30, kLeft + kW - 30), 1), "\" y=\"", kTop + kPlotH + 16,
                 "\" class=\"x\">", fixed(v, 4), "</text>");
  s += "</svg>\n";
  const uint64_t n = h.total();
  s += str_cat("<figcaption><b>", esc(l.node), "</b> (", esc(l.op), "): layer SQNR ", format_db(l.sqnr_db),
               " dB; int8 range [", fixed(h.clip_lo, 5), ", ", fixed(h.clip_hi, 5), "] (red lines); ",
               fixed(100.0 * h.clipped_fraction(), 3), "% of ", n, " values clipped (orange)",
               h.below + h.above ? str_cat("; beyond the plot: ", h.below, " below, ", h.above, " above") : "",
               h.nonfinite ? str_cat("; ", h.nonfinite, " non-finite") : "", ". Bar heights are log-scaled.</figcaption></figure>\n");
  return s;
}

// The gate line with the budget it checked: what was allowed and what was measured.
std::string verdict(const Report& r) {
  std::string s = str_cat("<p class=\"", r.gate.passed ? "pass" : "fail", "\">", esc(r.gate.line()), "</p>\n<ul>\n");
  const auto& c = r.measure.classification;
  if (r.budget.max_drop)
    s += str_cat("<li>budget: top-1 drop at most ", fixed(*r.budget.max_drop, 2), " pt",
                 c && c->has_labels ? str_cat("; measured ", fixed(c->top1_drop(), 2), " pt") : "", "</li>\n");
  if (r.budget.min_agreement)
    s += str_cat("<li>budget: top-1 agreement at least ", fixed(*r.budget.min_agreement, 2), "%",
                 c ? str_cat("; measured ", fixed(c->agreement_top1(), 2), "%") : "", "</li>\n");
  if (r.budget.min_sqnr)
    s += str_cat("<li>budget: every output SQNR at least ", fixed(*r.budget.min_sqnr, 2), " dB; measured minimum ",
                 format_db(r.measure.min_sqnr()), " dB</li>\n");
  for (const std::string& f : r.gate.sanity) s += str_cat("<li>sanity: ", esc(f), "</li>\n");
  return s + "</ul>\n";
}

}  // namespace

std::string render_html(const Report& r) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ptq accuracy report</title>\n"
      "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td.l,th.l{text-align:left}"
      ".pass{color:#2a7a2a;font-weight:bold}.fail{color:#b22;font-weight:bold}"
      "svg .t{font-size:13px}svg .n{font-size:12px;text-anchor:end}svg .x{font-size:11px;text-anchor:middle}"
      "svg .g{stroke:#ddd}svg .clip{stroke:#c00;stroke-width:2;stroke-dasharray:5,3}figure{margin:1em 0}</style>\n</head>\n<body>\n"
      "<h1>Accuracy report</h1>\n<ul>\n";
  s += str_cat("<li>", esc(r.a_kind), " <code>", esc(r.model_a), "</code> vs ", esc(r.b_kind), " <code>", esc(r.model_b),
               "</code> (", esc(r.b_execution), ")</li>\n");
  s += str_cat("<li>", r.measure.samples, " samples from <code>", esc(r.data), "</code>",
               r.data_is_calibration ? " (the calibration data)" : "", "</li>\n</ul>\n");
  if (r.gate.checked) s += verdict(r);
  s += "<h2>Outputs</h2>\n<table><tr><th class=\"l\">output</th><th>SQNR dB</th><th>cosine</th><th>max abs error</th>"
       "<th>mean abs error</th></tr>\n";
  for (const OutputReport& o : r.measure.outputs)
    s += o.compared ? str_cat("<tr><td class=\"l\">", esc(o.name), "</td><td>", format_db(o.stats.sqnr_db()), "</td><td>",
                              fixed(o.stats.cosine(), 6), "</td><td>", fixed(o.stats.max_abs, 5), "</td><td>",
                              fixed(o.stats.mean_abs(), 6), "</td></tr>\n")
                    : str_cat("<tr><td class=\"l\">", esc(o.name), "</td><td colspan=\"4\">not compared</td></tr>\n");
  s += "</table>\n";
  if (const auto& c = r.measure.classification) {
    s += str_cat("<h2>Classifier</h2>\n<table><tr><th class=\"l\">metric</th><th>value</th><th>count</th></tr>\n",
                 "<tr><td class=\"l\">top-1 agreement</td><td>", fixed(c->agreement_top1(), 2), "%</td><td>",
                 c->agree_top1, "/", c->rows, "</td></tr>\n<tr><td class=\"l\">top-5 agreement</td><td>",
                 fixed(c->agreement_top5(), 2), "%</td><td>", c->agree_top5, "/", c->rows, "</td></tr>\n");
    if (c->has_labels) {
      const auto row = [&](const std::string& name, double pct, size_t n) {
        return str_cat("<tr><td class=\"l\">", esc(name), "</td><td>", fixed(pct, 2), "%</td><td>", n, "/", c->labeled,
                       "</td></tr>\n");
      };
      s += row(r.a_kind + " top-1", c->a_top1_pct(), c->a_top1) + row(r.a_kind + " top-5", c->a_top5_pct(), c->a_top5) +
           row(r.b_kind + " top-1", c->b_top1_pct(), c->b_top1) + row(r.b_kind + " top-5", c->b_top5_pct(), c->b_top5);
      s += str_cat("<tr><td class=\"l\">top-1 drop</td><td>", fixed(c->top1_drop(), 2), " pt</td><td></td></tr>\n");
    }
    s += "</table>\n";
  }
  if (!r.layers.empty()) {
    s += "<h2>Per-layer</h2>\n" + chart(r);
    s += "<table><tr><th>rank</th><th class=\"l\">node</th><th class=\"l\">op</th><th>sensitivity dB</th>"
         "<th>layer SQNR dB</th><th class=\"l\">kept fp32</th></tr>\n";
    for (const LayerReport& l : r.layers)
      s += str_cat("<tr><td>", l.sensitivity_rank ? std::to_string(l.sensitivity_rank) : "-", "</td><td class=\"l\">",
                   esc(l.node), "</td><td class=\"l\">", esc(l.op), "</td><td>",
                   l.sensitivity_measured ? format_db(l.sensitivity_db) : "-", "</td><td>",
                   l.measured ? format_db(l.sqnr_db) : "-", "</td><td class=\"l\">", l.kept_fp32 ? "yes" : "",
                   "</td></tr>\n");
    s += "</table>\n";
    const std::vector<const LayerReport*> worst = worst_layers(r, 6);
    if (!worst.empty()) {
      s += str_cat("<h2>Worst layers: value histograms</h2>\n<p>The reference (", esc(r.a_kind),
                   ") values of the layers with the lowest SQNR, over the range their int8 grid represents, from the first ",
                   kHistogramSamples, " samples. Mass beyond the red lines is clipped; a range much wider than the values wastes "
                   "int8 steps.</p>\n");
      for (const LayerReport* l : worst) s += histogram_svg(*l);
    }
  }
  if (r.auto_fallback) {
    s += str_cat("<h2>Auto-fallback</h2>\n<p>", r.fallback.size(), " node(s) returned to fp32 (at most ", r.max_fallback,
                 ").</p>\n");
    if (!r.fallback.empty()) {
      s += "<table><tr><th>step</th><th class=\"l\">node</th><th>min output SQNR dB</th><th>top-1 agreement</th>"
           "<th>budget holds</th></tr>\n";
      for (const FallbackStep& st : r.fallback)
        s += str_cat("<tr><td>", st.step, "</td><td class=\"l\">", esc(st.node), "</td><td>", format_db(st.min_sqnr_db),
                     "</td><td>", st.agreement_top1 ? fixed(*st.agreement_top1, 2) + "%" : "-", "</td><td>",
                     st.passed ? "yes" : "no", "</td></tr>\n");
      s += "</table>\n";
    }
  }
  for (const std::string& n : r.notes) s += str_cat("<p>Note: ", esc(n), "</p>\n");
  if (r.summary) {
    s += "<h2>Summary</h2>\n<ul>\n";
    for (const std::string& l : summary_text(*r.summary)) s += str_cat("<li>", esc(l), "</li>\n");
    s += "</ul>\n";
  }
  return s + "</body>\n</html>\n";
}

}  // namespace ptq::report
