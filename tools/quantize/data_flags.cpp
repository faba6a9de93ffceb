// Data flag declarations and their conversion to data::DataOptions; calibration progress output.
#include "data_flags.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "cli_common.h"
#include "ptq/data/input_spec.h"
#include "ptq/data/preprocess.h"

namespace ptq::cli {

void add_data_flags(CLI::App& app, DataFlags& f) {
  // Each image option is recorded by name in the order given; data::set_preprocess_option
  // validates it and names the flag in errors.
  const auto image_option = [&](const char* flag, const char* name, const char* help) {
    app.add_option_function<std::string>(
           flag, [&f, name](const std::string& v) { f.preprocess.emplace_back(name, v); }, help)
        ->group("Calibration data");
  };
  image_option("--preprocess", "preset", "Preset: torchvision (ImageNet, RGB /255, mean/std) or caffe (BGR minus mean)");
  image_option("--resize-short", "resize_short", "Resize so the short side is N pixels (bilinear)");
  image_option("--resize", "resize", "Resize to WxH pixels");
  image_option("--center-crop", "center_crop", "Center crop N or WxH after resizing");
  image_option("--letterbox", "letterbox", "Fit inside WxH keeping aspect, top-left, pad (detectors)");
  image_option("--letterbox-pad", "letterbox_pad", "Letterbox pad value in pixel units (default 114)");
  image_option("--scale", "scale", "Pixel p in 0..255 becomes (p*scale - mean)/std; default 1");
  image_option("--mean", "mean", "Per-channel mean, e.g. 0.485,0.456,0.406 (default 0)");
  image_option("--std", "std", "Per-channel std, e.g. 0.229,0.224,0.225 (default 1)");
  image_option("--channel-order", "channel_order", "rgb or bgr");
  image_option("--layout", "layout", "nchw or nhwc");
  app.add_option("--input-shape", f.input_shapes, "Fix symbolic dims: NAME:1x3x224x224 (repeatable)")
      ->group("Calibration data");
  app.add_option("--calib-count", f.count, "Use the first N samples in sorted order")->group("Calibration data");
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
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
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
