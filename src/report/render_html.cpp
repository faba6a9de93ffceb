// Self-contained HTML report: the Markdown summary's content plus an inline SVG chart of per-layer
// SQNR and sensitivity (no scripts, no external resources).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ptq/core/error.h"
#include "ptq/report/report.h"

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

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One bar panel: values in dB (nullopt = infinite, drawn at the top with a marker).
std::string panel(const std::vector<const LayerReport*>& layers, bool sensitivity, double y0, double h, double bar_w,
                  double left, const char* color, const std::string& title) {
  double hi = 0;
  for (const LayerReport* l : layers) {
    const bool m = sensitivity ? l->sensitivity_measured : l->measured;
    const auto& v = sensitivity ? l->sensitivity_db : l->sqnr_db;
    if (m && v && std::isfinite(*v)) hi = std::max(hi, *v);
  }
  hi = std::max(10.0, std::ceil(hi / 10.0) * 10.0);
  std::string s = str_cat("<text x=\"", left, "\" y=\"", fixed(y0 - 6, 1), "\" class=\"t\">", esc(title), "</text>\n");
  for (int tick = 0; tick <= 4; ++tick) {
    const double v = hi * tick / 4, y = y0 + h - h * tick / 4;
    s += str_cat("<line x1=\"", left, "\" x2=\"", fixed(left + bar_w * static_cast<double>(layers.size()), 1),
                 "\" y1=\"", fixed(y, 1), "\" y2=\"", fixed(y, 1), "\" class=\"g\"/>",
                 "<text x=\"", left - 4, "\" y=\"", fixed(y + 3, 1), "\" class=\"a\">", fixed(v, 0), "</text>\n");
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerReport& l = *layers[i];
    const bool m = sensitivity ? l.sensitivity_measured : l.measured;
    if (!m) continue;
    const auto& v = sensitivity ? l.sensitivity_db : l.sqnr_db;
    const double val = v && std::isfinite(*v) ? std::clamp(*v, 0.0, hi) : (v ? 0.0 : hi);
    const double bh = h * val / hi, x = left + bar_w * static_cast<double>(i);
    s += str_cat("<rect x=\"", fixed(x + 0.5, 1), "\" y=\"", fixed(y0 + h - bh, 1), "\" width=\"",
                 fixed(std::max(1.0, bar_w - 1), 1), "\" height=\"", fixed(bh, 1), "\" fill=\"",
                 l.kept_fp32 ? "#999999" : color, "\"><title>", esc(l.node), " (", esc(l.op), "): ", format_db(v),
                 " dB</title></rect>\n");
  }
  return s;
}

std::string chart(const Report& r) {
  std::vector<const LayerReport*> layers;
  for (const LayerReport& l : r.layers) layers.push_back(&l);
  const double left = 40, bar_w = std::clamp(900.0 / std::max<size_t>(1, layers.size()), 4.0, 24.0);
  const double w = left + bar_w * static_cast<double>(layers.size()) + 20, h = 160;
  std::string s = str_cat("<svg width=\"", fixed(w, 0), "\" height=\"", fixed(2 * h + 90, 0), "\" viewBox=\"0 0 ",
                          fixed(w, 0), " ", fixed(2 * h + 90, 0), "\" role=\"img\">\n");
  s += panel(layers, false, 25, h, bar_w, left, "#3b6fb6",
             str_cat("Layer SQNR (dB): node output, ", r.b_kind, " vs ", r.a_kind, ", graph order"));
  s += panel(layers, true, h + 70, h, bar_w, left, "#c0504d",
             str_cat("Sensitivity (dB): model-output SQNR with only this node quantized (", r.sensitivity_samples,
                     " samples); low = sensitive"));
  return s + "</svg>\n";
}

}  // namespace

std::string render_html(const Report& r) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ptq accuracy report</title>\n"
      "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td.l,th.l{text-align:left}"
      ".pass{color:#2a7a2a;font-weight:bold}.fail{color:#b22;font-weight:bold}"
      "svg .t{font-size:12px}svg .a{font-size:10px;text-anchor:end}svg .g{stroke:#ddd}</style>\n</head>\n<body>\n"
      "<h1>Accuracy report</h1>\n<ul>\n";
  s += str_cat("<li>", esc(r.a_kind), " <code>", esc(r.model_a), "</code> vs ", esc(r.b_kind), " <code>", esc(r.model_b),
               "</code> (", esc(r.b_execution), ")</li>\n");
  s += str_cat("<li>", r.measure.samples, " samples from <code>", esc(r.data), "</code>",
               r.data_is_calibration ? " (the calibration data)" : "", "</li>\n</ul>\n");
  if (r.gate.checked)
    s += str_cat("<p class=\"", r.gate.passed ? "pass" : "fail", "\">", esc(r.gate.line()), "</p>\n");
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
