// Terminal summary and Markdown form of the accuracy report.
#include <algorithm>
#include <cstdio>

#include "ptq/core/error.h"
#include "ptq/report/report.h"
#include "fixed.h"

namespace ptq::report {
namespace {

std::string shape_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(d[i]);
  }
  return s + "]";
}

std::string ratio(size_t n, size_t of) { return str_cat(n, "/", of); }

// Layers in sensitivity order (ranked first, then the rest in graph order).
std::vector<const LayerReport*> by_rank(const Report& r) {
  std::vector<const LayerReport*> v;
  for (const LayerReport& l : r.layers) v.push_back(&l);
  std::stable_sort(v.begin(), v.end(), [](const LayerReport* a, const LayerReport* b) {
    const int ra = a->sensitivity_rank ? a->sensitivity_rank : 1 << 30;
    const int rb = b->sensitivity_rank ? b->sensitivity_rank : 1 << 30;
    return ra < rb;
  });
  return v;
}

std::vector<std::string> summary_lines(const Report& r) {
  std::vector<std::string> out;
  out.push_back(str_cat(r.a_kind, " ", r.model_a, " vs ", r.b_kind, " ", r.model_b, " (", r.b_execution, ")"));
  out.push_back(str_cat(r.measure.samples, " samples from ", r.data,
                        r.data_is_calibration ? " (the calibration data: pass --eval for held-out data)" : ""));
  for (const OutputReport& o : r.measure.outputs) {
    if (!o.compared) {
      out.push_back(str_cat("output '", o.name, "' ", shape_str(o.shape), ": not compared (not float32)"));
      continue;
    }
    out.push_back(str_cat("output '", o.name, "' ", shape_str(o.shape), ": SQNR ", format_db(o.stats.sqnr_db()),
                          " dB, cosine ", fixed(o.stats.cosine(), 6), ", max abs error ", fixed(o.stats.max_abs, 5),
                          ", mean abs error ", fixed(o.stats.mean_abs(), 6)));
  }
  if (const auto& c = r.measure.classification) {
    out.push_back(str_cat("classifier '", c->output, "' (", c->classes, " classes, ", c->rows, " rows): top-1 agreement ",
                          fixed(c->agreement_top1(), 2), "% (", ratio(c->agree_top1, c->rows), "), top-5 agreement ",
                          fixed(c->agreement_top5(), 2), "% (", ratio(c->agree_top5, c->rows), ")"));
    if (c->has_labels) {
      out.push_back(str_cat("accuracy on ", c->labeled, " labeled rows: ", r.a_kind, " top-1 ", fixed(c->a_top1_pct(), 2),
                            "% (", ratio(c->a_top1, c->labeled), "), top-5 ", fixed(c->a_top5_pct(), 2), "% (",
                            ratio(c->a_top5, c->labeled), "); ", r.b_kind, " top-1 ", fixed(c->b_top1_pct(), 2), "% (",
                            ratio(c->b_top1, c->labeled), "), top-5 ", fixed(c->b_top5_pct(), 2), "% (",
                            ratio(c->b_top5, c->labeled), "); top-1 drop ", fixed(c->top1_drop(), 2), " pt"));
    }
  }
  if (const auto& p = r.padding)
    for (const PaddingOutput& o : p->outputs)
      out.push_back(str_cat("padded vs unpadded ('", p->mask_input, "' = 0 past each sample, ", p->samples, " samples): output '",
                            o.name, "' min cosine ", r.a_kind, " ", fixed(o.a_min_cosine, 6), ", ", r.b_kind, " ",
                            fixed(o.b_min_cosine, 6), " (mean ", fixed(o.b_mean_cosine, 6), ")"));
  return out;
}

std::string megabytes(uint64_t b) { return fixed(static_cast<double>(b) / 1e6, 2) + " MB"; }

}  // namespace

std::vector<std::string> summary_text(const Summary& s) {
  std::vector<std::string> out;
  out.push_back("ptq " + s.ptq_version);
  std::string settings;
  for (const auto& [k, v] : s.settings) settings += (settings.empty() ? "" : ", ") + k + " " + v;
  out.push_back("settings: " + settings);
  for (const auto& [k, v] : s.inputs) out.push_back(k + ": " + v);
  if (s.fp32_bytes && s.int8_bytes)
    out.push_back(str_cat("size: fp32 ", megabytes(s.fp32_bytes), " -> int8 ", megabytes(s.int8_bytes), " (",
                          fixed(double(s.int8_bytes) / double(s.fp32_bytes), 2), "x)"));
  out.push_back(str_cat("nodes: ", s.quantized_nodes, " quantized, ", s.fp32_nodes.size(), " kept in fp32",
                        s.fp32_nodes.empty() ? "" : ":"));
  for (const std::string& n : s.fp32_nodes) out.push_back("  " + n);
  return out;
}

std::string render_text(const Report& r, size_t top_layers) {
  std::string s = "accuracy report\n";
  for (const std::string& l : summary_lines(r)) s += "  " + l + "\n";
  if (!r.layers.empty()) {
    const auto ranked = by_rank(r);
    const size_t n = std::min(top_layers, ranked.size());
    if (r.command == "compare")
      s += str_cat("per-layer (", r.layers.size(), " tensors matched by name; first ", n, " in graph order; all in the "
                   "JSON report):\n");
    else
      s += str_cat("per-layer (", r.layers.size(), " quantized nodes; top ", n, " by sensitivity, measured on ",
                   r.sensitivity_samples, " samples; all in the JSON report):\n");
    char line[512];
    std::snprintf(line, sizeof line, "  %4s  %-40s %-16s %12s %12s\n", "rank", "node", "op", "sens. dB", "layer dB");
    s += line;
    for (size_t i = 0; i < n; ++i) {
      const LayerReport& l = *ranked[i];
      std::snprintf(line, sizeof line, "  %4s  %-40s %-16s %12s %12s%s\n",
                    l.sensitivity_rank ? std::to_string(l.sensitivity_rank).c_str() : "-", l.node.substr(0, 40).c_str(),
                    l.op.c_str(), l.sensitivity_measured ? format_db(l.sensitivity_db).c_str() : "-",
                    l.measured ? format_db(l.sqnr_db).c_str() : "-", l.kept_fp32 ? "  (kept fp32)" : "");
      s += line;
    }
  }
  if (r.auto_fallback) {
    s += str_cat("auto-fallback (at most ", r.max_fallback, " nodes): ");
    if (r.fallback.empty()) s += "nothing returned to fp32\n";
    else s += str_cat(r.fallback.size(), " node(s) returned to fp32\n");
    for (const FallbackStep& st : r.fallback) {
      s += str_cat("  step ", st.step, ": ", st.node, " (", st.op, ") -> min output SQNR ", format_db(st.min_sqnr_db), " dB");
      if (st.sqnr_gain_db) s += str_cat(" (", *st.sqnr_gain_db >= 0 ? "+" : "", fixed(*st.sqnr_gain_db, 2), ")");
      if (st.agreement_top1) s += str_cat(", top-1 agreement ", fixed(*st.agreement_top1, 2), "%");
      if (st.agreement_gain) s += str_cat(" (", *st.agreement_gain >= 0 ? "+" : "", fixed(*st.agreement_gain, 2), " pt)");
      if (st.b_top1) s += str_cat(", ", r.b_kind, " top-1 ", fixed(*st.b_top1, 2), "%");
      s += st.passed ? ", budget holds\n" : "\n";
    }
  }
  for (const std::string& n : r.notes) s += "  note: " + n + "\n";
  if (r.summary) {
    s += "summary\n";
    for (const std::string& l : summary_text(*r.summary)) s += "  " + l + "\n";
  }
  return s;
}

std::string render_markdown(const Report& r) {
  std::string s = "# Accuracy report\n\n";
  for (const std::string& l : summary_lines(r)) s += "- " + l + "\n";
  if (r.gate.checked) s += str_cat("\n**Gate: ", r.gate.line(), "**\n");
  if (!r.layers.empty()) {
    s += str_cat("\n## Per-layer\n\nSensitivity: model-output SQNR with only that node quantized, measured on ",
                 r.sensitivity_samples, " samples (lower = more sensitive). Layer SQNR: the node's output in the ",
                 r.b_kind, " model vs ", r.a_kind, ", over the first ", r.layer_samples, " samples.\n\n");
    s += "| rank | node | op | sensitivity dB | layer SQNR dB | kept fp32 |\n|---:|---|---|---:|---:|---|\n";
    for (const LayerReport* l : by_rank(r))
      s += str_cat("| ", l->sensitivity_rank ? std::to_string(l->sensitivity_rank) : "-", " | `", l->node, "` | ", l->op,
                   " | ", l->sensitivity_measured ? format_db(l->sensitivity_db) : "-", " | ",
                   l->measured ? format_db(l->sqnr_db) : "-", " | ", l->kept_fp32 ? "yes" : "", " |\n");
  }
  if (r.auto_fallback) {
    s += "\n## Auto-fallback\n\n";
    if (r.fallback.empty()) s += "Nothing returned to fp32.\n";
    else s += "| step | node | op | min output SQNR dB | top-1 agreement % | int8 top-1 % | budget holds |\n|---:|---|---|---:|---:|---:|---|\n";
    for (const FallbackStep& st : r.fallback)
      s += str_cat("| ", st.step, " | `", st.node, "` | ", st.op, " | ", format_db(st.min_sqnr_db), " | ",
                   st.agreement_top1 ? fixed(*st.agreement_top1, 2) : "-", " | ", st.b_top1 ? fixed(*st.b_top1, 2) : "-",
                   " | ", st.passed ? "yes" : "no", " |\n");
  }
  if (!r.notes.empty()) {
    s += "\n## Notes\n\n";
    for (const std::string& n : r.notes) s += "- " + n + "\n";
  }
  if (r.summary) {
    s += "\n## Summary\n\n";
    for (const std::string& l : summary_text(*r.summary)) {
      const bool nested = l.rfind("  ", 0) == 0;  // a kept-fp32 node under the nodes line
      s += nested ? str_cat("  - `", std::string_view(l).substr(2), "`\n") : str_cat("- ", l, "\n");
    }
  }
  return s;
}

}  // namespace ptq::report
