// The accuracy report (reference vs test model): data model, budget gate, and renderers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ptq/report/metrics.h"

namespace ptq::report {

constexpr int kSchemaVersion = 1;  // docs/report-schema.md

struct OutputReport {
  std::string name;
  std::vector<int64_t> shape;  // of the first sample
  bool compared = false;       // false for non-float outputs
  ErrorStats stats;
};

// Classifier metrics; a = reference (fp32), b = test (int8). Rows = samples x batch.
struct Classification {
  std::string output;
  size_t classes = 0;
  size_t rows = 0;
  size_t agree_top1 = 0;  // argmax equal
  size_t agree_top5 = 0;  // reference's top-1 within the test's top-5
  bool has_labels = false;
  size_t labeled = 0;      // rows with a label (batch-1 samples whose file is in the labels)
  size_t a_top1 = 0, a_top5 = 0, b_top1 = 0, b_top5 = 0;  // correct counts among labeled
  double pct(size_t n, size_t of) const { return of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0; }
  double agreement_top1() const { return pct(agree_top1, rows); }
  double agreement_top5() const { return pct(agree_top5, rows); }
  double a_top1_pct() const { return pct(a_top1, labeled); }
  double b_top1_pct() const { return pct(b_top1, labeled); }
  double a_top5_pct() const { return pct(a_top5, labeled); }
  double b_top5_pct() const { return pct(b_top5, labeled); }
  double top1_drop() const { return a_top1_pct() - b_top1_pct(); }
};

// One quantized node: accumulated error of its output, and its sensitivity.
struct LayerReport {
  std::string node;    // node label: name, or op and output when unnamed
  std::string op;
  std::string tensor;  // output tensor name (reference side)
  std::optional<double> sqnr_db;         // nullopt: identical, or not measured (see `measured`)
  bool measured = false;
  bool sensitivity_measured = false;
  std::optional<double> sensitivity_db;  // model-output SQNR with only this node quantized
  int sensitivity_rank = 0;              // 1 = most sensitive; 0 = not ranked
  bool kept_fp32 = false;                // returned to fp32 by --auto-fallback
  // The node's reference output values over its int8 clip range (HTML only; quantized outputs).
  std::optional<ValueHistogram> histogram;
};

struct Budget {
  std::optional<double> max_drop;       // top-1 points (needs labels)
  std::optional<double> min_agreement;  // top-1 agreement, percent
  std::optional<double> min_sqnr;       // dB, every output
  bool any() const { return max_drop || min_agreement || min_sqnr; }
};

struct Gate {
  bool checked = false;
  bool passed = true;
  std::vector<std::string> failures;  // "top-1 drop 1.20 pt > 0.50 pt allowed"
  // Setup problems that make any budget meaningless (fp32 accuracy at chance: wrong
  // preprocessing or labels; NaN in the fp32 outputs). Checked on every report, budget or not;
  // the CLI exits 5 (data) when there is one.
  std::vector<std::string> sanity;
  std::string line() const;           // "PASSED" or "FAILED: ..." (the last stdout line)
};

// The figures one evaluation produced (also recorded per fallback step).
struct Measure {
  std::vector<OutputReport> outputs;
  std::optional<Classification> classification;
  size_t samples = 0;
  double min_sqnr() const;  // over compared outputs; +inf when all identical
};

struct FallbackStep {
  int step = 0;
  std::string node, op;
  std::optional<double> sensitivity_db;
  std::optional<double> min_sqnr_db;
  std::optional<double> agreement_top1;  // percent
  std::optional<double> b_top1;          // percent (labels)
  std::optional<double> sqnr_gain_db;    // vs the previous step (or the full int8 model)
  std::optional<double> agreement_gain;  // points, vs the previous step
  bool passed = false;
};

// What the quantize run was: version, settings, inputs, sizes, and the nodes left in fp32 with
// the reason for each. No wall times: report files stay byte-identical across runs and --threads
// (the terminal shows the timings).
struct Summary {
  std::string ptq_version;
  std::vector<std::pair<std::string, std::string>> settings;  // in a fixed order
  std::vector<std::pair<std::string, std::string>> inputs;    // role -> "path (sha256 ...)"
  uint64_t fp32_bytes = 0, int8_bytes = 0;
  size_t quantized_nodes = 0;
  std::vector<std::string> fp32_nodes;  // "node (Op): reason"
};
// The summary as lines of text ("fp32 14.0 MB -> int8 3.6 MB (0.26x)", ...), for every renderer.
std::vector<std::string> summary_text(const Summary& s);

// The padded-batch check (padding.h). Per model output: cosine between the output on a sample and on the same sample padded, over
// the positions both have (the padded axis sliced back to the sample's length).
struct PaddingOutput {
  std::string name;
  double a_min_cosine = 1, a_mean_cosine = 1;  // reference model (fp32)
  double b_min_cosine = 1, b_mean_cosine = 1;  // test model (int8)
};

struct PaddingCheck {
  std::string mask_input;  // the attention-mask input that marked the padding
  size_t samples = 0;
  std::vector<PaddingOutput> outputs;  // float outputs with a counterpart in the padded run
};

struct Report {
  std::string command;   // "quantize" or "compare"
  std::string model_a, model_b;
  std::string a_kind = "fp32", b_kind = "int8";
  std::string b_execution;  // how the test model ran ("integer-kernels", "qdq-fake-quant")
  std::string data;
  bool data_is_calibration = false;
  std::string labels;
  std::string task;         // "classify" or "generic"
  Measure measure;
  std::vector<LayerReport> layers;
  size_t sensitivity_samples = 0;
  size_t layer_samples = 0;  // samples the layers' SQNR was accumulated over
  Budget budget;
  Gate gate;
  bool auto_fallback = false;
  size_t max_fallback = 0;
  std::vector<FallbackStep> fallback;
  std::vector<std::string> kept_fp32;  // node labels returned to fp32
  std::vector<std::string> notes;
  std::optional<Summary> summary;  // quantize runs
  std::optional<PaddingCheck> padding;  // data with an attention mask
};

// Checks the budget against a measure; UsageError when a budget cannot be measured (a top-1
// drop without labels, an agreement without a classifier output).
Gate check_budget(const Budget& budget, const Measure& m);

// Renderers: deterministic text for the same report.
std::string to_json(const Report& r);  // 2-space indented, trailing newline
std::string render_text(const Report& r, size_t top_layers = 10);
std::string render_markdown(const Report& r);
std::string render_html(const Report& r);
// Writes a rendered report through AtomicFile (IoError naming the path).
void write_text_file(const std::string& path, const std::string& text);
// Writes each report form whose path is not empty.
void write_reports(const Report& r, const std::string& json, const std::string& html, const std::string& md);

// "12.34" / "inf" for an SQNR.
std::string format_db(const std::optional<double>& db);

}  // namespace ptq::report
