// Internal: bias correction, the placement search and empirical bias correction (--effort) after
// calibration, measured on fp32 runs of the first calibration rows, or taken from what a loaded
// table recorded of them.
#pragma once

#include "ptq/calib/calib_table.h"
#include "ptq/emit/qdq_emitter.h"
#include "ptq/pipeline/quantize.h"
#include "ptq/report/accuracy.h"
#include "int8_build.h"

namespace ptq::pipeline {

struct Measured {
  emit::ChannelMeans means;       // bias correction's input means (empty: none, or not kept)
  emit::ChannelMeans bias_shift;  // empirical bias correction's shifts by Conv output (empty: none)
  emit::ChannelMeans output_gain; // and its gains (Convs without one: absent)
  DepthwiseMax depthwise;         // depthwise inputs' per-channel maxima (empty: none, or not kept)
  report::NodeSelection searched;  // the nodes the placement search keeps fp32 (`searched` set too)
  bool ran = false;               // measured here (not loaded from the table, not skipped)
  // The configuration every model is built with: the options' one, with --uint8-weights auto
  // resolved (kWhereCoarse where measured to help or recorded by a loaded table, else kOff).
  quant::QuantConfig config;
};

// Records the outcome in `table` (saved afterwards with --save-calib) and notes in `result`.
// `candidates` (--method auto: one table per method from the same statistics, only where the
// search measures): the one chosen on the measured rows becomes `table` first.
Measured measure_after_calibration(const QuantizeOptions& o, const ir::Model& model, const report::AccuracyOptions& acc,
                                   calib::CalibTable& table, std::vector<calib::CalibTable> candidates,
                                   QuantizeResult& result);

}  // namespace ptq::pipeline
