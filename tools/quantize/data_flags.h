// Calibration/evaluation data flags (layouts, image preprocessing, counts), shared by commands.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/report/accuracy.h"

namespace CLI {
class App;
}

namespace ptq::cli {

struct DataFlags {
  std::vector<std::pair<std::string, std::string>> preprocess;  // (option name, value) as given
  std::vector<std::string> input_shapes;
  size_t count = 0;
  bool skip_nonfinite = false;
};

// Adds --preprocess, --resize-short, --resize, --center-crop, --letterbox, --letterbox-pad,
// --scale, --mean, --std, --channel-order, --layout, --input-shape, --calib-count, --skip-nonfinite.
void add_data_flags(CLI::App& app, DataFlags& flags);
// Parses the collected values; UsageError names the flag.
data::DataOptions to_data_options(const DataFlags& flags);

// Accuracy report flags shared by `quantize --eval` and `quantize compare`.
struct ReportFlags {
  std::string eval;  // --eval (quantize) / --data (compare)
  size_t eval_count = 0;
  std::string labels, task = "auto";
  std::string json, html, md;
  size_t sensitivity_samples = 16;
  size_t layer_samples = 128;
  std::optional<double> max_drop, min_agreement, min_sqnr;
  bool auto_fallback = false;
  size_t max_fallback = 10;
  std::string int8_mode = "integer";  // how the int8 (test) model runs
  // Whether any flag asks for the report (quantize runs it only then).
  bool wanted() const;
};
// Adds --labels, --task, --eval-count, --report, --report-html, --report-md, --max-drop,
// --min-agreement, --min-sqnr; with `quantize_flags` also --sensitivity-samples, --auto-fallback
// and --max-fallback. The data flag itself (--eval or --data) is added by the command.
void add_report_flags(CLI::App& app, ReportFlags& flags, bool quantize_flags);
// Fills the accuracy options (data options come from the data flags).
report::AccuracyOptions to_accuracy_options(const ReportFlags& flags, const data::DataOptions& data);
// Prints the summary to stdout, writes the report files, and prints the gate line last when a
// budget was given. Returns the exit code (4 when the budget failed).
int finish_report(const report::Report& r, const ReportFlags& flags);

// Progress on stderr: a live bar on a terminal, a plain line every 10% otherwise.
void print_progress(int pass, int passes, size_t done, size_t total);

}  // namespace ptq::cli
