// The main job's flags that decide calibration, shared by `quantize` and `quantize calibrate`.
#pragma once

#include <string>

#include "data_flags.h"
#include "ptq/pipeline/quantize.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace ptq::cli {

struct QuantizeFlags {
  pipeline::QuantizeOptions o;
  std::string mode = "static", target = "ort-x86", preset = "auto", effort = "default", elementwise, hardswish, uint8_weights;
  std::string activation_type, weight_type, exclude_ops;
  bool activation_symmetric = false, per_tensor = false;
  bool reduce_range = false, no_reduce_range = false;
  bool minmax_average = false, asymmetric_calib = false;
  std::string smoothquant;  // "" with the flag given: the default alpha
  bool no_smoothquant = false;
  bool no_bias_correction = false;
  bool no_empirical_bias_correction = false;
  bool no_depthwise_scales = false;
  bool fit_written_out_hardswish = false;
  CLI::Option* smoothquant_option = nullptr;
  DataFlags data;
};

// Adds MODEL, --calib, --threads, the data flags, --method and its parameters, --target, --preset,
// --smoothquant/--no-smoothquant, the generic-target types, --per-tensor, --reduce-range/
// --no-reduce-range, --exclude-nodes and --exclude-ops.
void add_calibration_flags(CLI::App& app, QuantizeFlags& flags);
// QuantizeOptions from the parsed flags (mode, config, method parameters, data options); warns
// about flags the chosen method or mode ignores. UsageError names the flag.
pipeline::QuantizeOptions to_quantize_options(const QuantizeFlags& flags, const CLI::App& app);

}  // namespace ptq::cli
