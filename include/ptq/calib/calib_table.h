// The calibration table: model hash, method, parameters and per-tensor ranges, as readable JSON.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ptq/calib/methods.h"

namespace ptq::calib {

struct CalibTable {
  std::string model_sha256;  // of the fp32 model file the ranges belong to
  std::string method;
  CalibParams params;
  size_t samples = 0;  // batch rows observed (files x batch size)
  std::map<std::string, Range> ranges;  // tensor name -> [min, max]
  // SmoothQuant (passes/smoothquant.h) applied before the ranges were taken: its strength and the
  // per-channel max |x| of each smoothed activation of the unsmoothed graph, so that a loaded
  // table rebuilds the same smoothed graph its ranges belong to. alpha < 0: not applied.
  float smoothquant_alpha = -1.f;
  std::map<std::string, std::vector<float>> channel_abs_max;
  // What the pipeline measured after calibration (pipeline/quantize.h), so that a loaded table
  // rebuilds the model its run wrote: bias correction's mean per input channel of Conv/Gemm inputs,
  // and the placement search's fp32 nodes by their first output's name (unset: no search ran).
  std::map<std::string, std::vector<double>> channel_mean;
  // Empirical bias correction's shift per output channel, by Conv output name (empty: none kept).
  std::map<std::string, std::vector<double>> bias_shift;
  // Its gain per output channel, by Conv output name (Convs with all gains 1: absent).
  std::map<std::string, std::vector<double>> output_gain;
  std::optional<std::vector<std::string>> search_fp32;
  // Per-channel maxima of depthwise Conv inputs over the calibration data, where their grids are
  // refined per channel (passes/depthwise_scales.h; empty: not applied).
  std::map<std::string, std::vector<float>> depthwise_channel_max;
  // --uint8-weights auto measured better with uint8 weights (emit's per-node rule) and kept them.
  bool uint8_weights = false;
};

// Pretty JSON with sorted keys and round-trip exact floats, written atomically.
void save_calib_table(const CalibTable& table, const std::string& path);
// Throws IoError naming the file and the offending key on malformed content.
CalibTable load_calib_table(const std::string& path);
// The same on JSON text in memory; `label` names the source in errors.
CalibTable parse_calib_table(const std::string& text, const std::string& label);
// The same JSON text save_calib_table writes (for tests and reports).
std::string calib_table_json(const CalibTable& table);

}  // namespace ptq::calib
