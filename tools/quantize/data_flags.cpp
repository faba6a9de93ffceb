// Data flag declarations and their conversion to data::DataOptions; calibration progress output.
#include "data_flags.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "ptq/core/error.h"

#include "cli_common.h"
#include "ptq/data/input_spec.h"
#include "ptq/data/preprocess.h"
#include "ptq/report/report.h"

namespace ptq::cli {

void add_data_flags(CLI::App& app, DataFlags& f) {
  // Each image option is recorded by name in the order given; data::set_preprocess_option
  // validates it and names the flag in errors.
  const auto image_option = [&](const char* flag, const char* name, const char* help) {
    app.add_option_function<std::string>(
           flag, [&f, name](const std::string& v) { f.preprocess.emplace_back(name, v); }, help)
        ->group("Calibration data");
  };
  image_option("--preprocess", "preprocess", "Preset: torchvision (ImageNet, RGB /255, mean/std) or caffe (BGR minus mean)");
  image_option("--resize-short", "resize_short", "Resize so the short side is N pixels (bilinear)");
  image_option("--resize", "resize", "Resize to WxH pixels");
  image_option("--resize-filter", "resize_filter",
               "bilinear or bicubic (Pillow's, antialiased, as torchvision's Resize; default) or cv2 "
               "(cv2.resize INTER_LINEAR; the letterbox default)");
  image_option("--center-crop", "center_crop", "Center crop N or WxH after resizing");
  image_option("--center-crop-offset", "center_crop_offset",
               "Odd margins: floor (default; the shared models' figures) or round (half to even, as "
               "torchvision's CenterCrop)");
  image_option("--letterbox", "letterbox", "Fit inside WxH keeping aspect, top-left, pad (detectors)");
  image_option("--letterbox-pad", "letterbox_pad", "Letterbox pad value in pixel units (default 114)");
  image_option("--scale", "scale", "Pixel p in 0..255 becomes (p*scale - mean)/std; default 1");
  image_option("--mean", "mean", "Per-channel mean, e.g. 0.485,0.456,0.406 (default 0)");
  image_option("--std", "std", "Per-channel std, e.g. 0.229,0.224,0.225 (default 1)");
  image_option("--channel-order", "channel_order", "rgb or bgr");
  image_option("--layout", "layout", "nchw or nhwc");
  app.add_option("--input-shape", f.input_shapes, "Fix symbolic dims: NAME:1x3x224x224 (repeatable)")
      ->group("Calibration data");
  app.add_option("--calib-count", f.count, "Use the first N samples in sorted order")
      ->group("Calibration data")->check(finite_range(0, 1e12));
  app.add_flag("--skip-nonfinite", f.skip_nonfinite, "Drop samples with NaN/Inf instead of failing")
      ->group("Calibration data");
}

data::DataOptions to_data_options(const DataFlags& f) {
  data::DataOptions o;
  for (const auto& [name, value] : f.preprocess) data::set_preprocess_option(o.preprocess, name, value);
  for (const std::string& s : f.input_shapes) o.input_shapes.push_back(data::parse_input_shape("--input-shape", s));
  o.calib_count = f.count;
  o.skip_nonfinite = f.skip_nonfinite;
  return o;
}

bool ReportFlags::wanted() const {
  return !eval.empty() || !labels.empty() || !json.empty() || !html.empty() || !md.empty() || max_drop ||
         min_agreement || min_sqnr || auto_fallback || task != "auto";
}

void add_report_flags(CLI::App& app, ReportFlags& f, bool quantize_flags) {
  const char* g = "Accuracy report";
  app.add_option("--eval-count", f.eval_count, "Evaluate on the first N samples in sorted order")
      ->group(g)->check(finite_range(0, 1e12));
  app.add_option("--labels", f.labels, "Labels TSV (file<TAB>class_index): top-1/top-5 accuracy")->group(g);
  app.add_option("--task", f.task, "auto (classifier when the output looks like one), classify or generic")
      ->group(g)->default_str("auto");
  app.add_option("--report", f.json, "Write the report as JSON (docs/report-schema.md)")->group(g);
  app.add_option("--report-html", f.html, "Write the report as one self-contained HTML file")->group(g);
  app.add_option("--report-md", f.md, "Write the report as Markdown")->group(g);
  app.add_option("--max-drop", f.max_drop, "Budget: top-1 accuracy drop in points (needs --labels)")
      ->group(g)->check(finite_range(-100, 100));
  app.add_option("--min-agreement", f.min_agreement, "Budget: top-1 agreement with the reference, percent")
      ->group(g)->check(finite_range(0, 100));
  app.add_option("--min-sqnr", f.min_sqnr, "Budget: SQNR of every model output, dB")
      ->group(g)->check(finite_range(-1000, 1000));
  app.add_option("--int8-mode", f.int8_mode,
                 "How the int8 model runs: integer (ONNX Runtime's integer kernels) or fake-quant (DQ -> fp32 op -> Q)")
      ->group(g)->default_str("integer");
  app.add_option("--layer-samples", f.layer_samples,
                 "Per-layer SQNR over the first N evaluation samples (0: all)")
      ->group(g)->default_str("128")->check(finite_range(0, 1e12));
  if (!quantize_flags) return;
  app.add_option("--sensitivity-samples", f.sensitivity_samples,
                 "Samples for per-node sensitivity (0: skip)")
      ->group(g)->default_str("16")->check(finite_range(0, 1e12));
  app.add_flag("--auto-fallback", f.auto_fallback,
               "Return the most sensitive nodes to fp32 one at a time until the budget holds")->group(g);
  app.add_option("--max-fallback", f.max_fallback, "At most N nodes returned to fp32 by --auto-fallback")
      ->group(g)->default_str("10")->check(finite_range(0, 1e12));
}

report::AccuracyOptions to_accuracy_options(const ReportFlags& f, const data::DataOptions& data) {
  report::AccuracyOptions o;
  o.data_path = f.eval;
  o.data = data;
  o.data.calib_count = 0;
  o.max_samples = f.eval_count;
  o.labels_path = f.labels;
  o.task = report::parse_task(f.task);
  o.sensitivity_samples = f.sensitivity_samples;
  o.layer_samples = f.layer_samples;
  o.budget.max_drop = f.max_drop;
  o.budget.min_agreement = f.min_agreement;
  o.budget.min_sqnr = f.min_sqnr;
  o.auto_fallback = f.auto_fallback;
  o.max_fallback = f.max_fallback;
  PTQ_CHECK(f.int8_mode == "integer" || f.int8_mode == "fake-quant", UsageError, "--int8-mode: '", f.int8_mode,
            "' is not integer or fake-quant");
  o.int8_runtime.qdq_mode = f.int8_mode == "integer" ? runtime::QdqMode::kIntegerKernel : runtime::QdqMode::kFakeQuant;
  o.int8_execution = f.int8_mode == "integer" ? "integer-kernels" : "qdq-fake-quant";
  // Progress lines: off under -q, so a failing run prints only its error line.
  o.log = [](const std::string& line) {
    if (progress_enabled()) std::fprintf(stderr, "%s\n", line.c_str());
  };
  return o;
}

int finish_report(const report::Report& r, const ReportFlags& f) {
  report::write_reports(r, f.json, f.html, f.md);
  std::fputs(report::render_text(r).c_str(), stdout);
  for (const std::string& p : {f.json, f.html, f.md})
    if (!p.empty()) std::printf("wrote %s\n", p.c_str());
  if (!r.gate.checked) return 0;
  std::printf("%s\n", r.gate.line().c_str());
  std::fflush(stdout);
  if (!r.gate.sanity.empty()) return static_cast<int>(ExitCode::kDataOrIo);  // the setup, not int8, failed
  return r.gate.passed ? 0 : static_cast<int>(ExitCode::kAccuracyBudget);
}

void print_progress(int pass, int passes, size_t done, size_t total) {
  if (!progress_enabled()) return;
  using Clock = std::chrono::steady_clock;
  static Clock::time_point start;
  static int last_decile = -1;
  if (done == 1) {
    start = Clock::now();
    last_decile = -1;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  // The clock starts at the first sample, so the rate counts the samples after it.
  const double rate = secs > 0 && done > 1 ? static_cast<double>(done - 1) / secs : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  if (isatty(STDERR_FILENO)) {
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    std::fprintf(stderr, "\rcalibrating pass %d/%d [%.*s%*s] %zu/%zu %.1f/s ETA %.0fs ", pass, passes, filled,
                 "##############################", width - filled, "", done, total, rate, eta);
    if (done == total) std::fprintf(stderr, "\n");
  } else {
    const int decile = total ? static_cast<int>(10 * done / total) : 10;
    if (decile != last_decile && (decile % 5 == 0 || done == total)) {
      std::fprintf(stderr, "calibrating pass %d/%d: %zu/%zu samples, %.1f/s\n", pass, passes, done, total, rate);
      last_decile = decile;
    }
  }
}

}  // namespace ptq::cli
