// Streaming calibration: samples run one at a time through the reference runtime; observers fold
// each tensor into fixed-size statistics, so memory does not grow with the number of samples.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ptq/calib/calib_stats.h"
#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"

namespace ptq::calib {

struct CalibrateOptions {
  std::string method = "minmax";
  CalibParams params;
  size_t threads = 0;  // workers running samples side by side (single-threaded kernels); 0: all cores
  // Value ids (top-level graph) whose ranges the quantized model will use: only these get
  // histograms; the others get their exact min/max. Empty: histograms for every tensor.
  std::vector<bool> histogram_values;
  // Value ids whose max(0, max x) per channel (axis 1) the pass gathers too (CalibStats::channel_max;
  // for the depthwise inputs, which are >= 0, that is their max |x|).
  std::vector<ir::ValueId> channel_max_values;
  // Called after each sample: pass, passes in total (1: one streaming pass), samples done,
  // samples in the dataset.
  std::function<void(int pass, int passes, size_t done, size_t total)> progress;
};

// Ranges for every float tensor the top-level graph computes (graph inputs included), in one
// streaming pass, samples spread over `threads` workers and merged in sample order: exact min/max plus, for histogram methods, power-of-two histograms whose counts
// do not depend on sample order or grouping; batched samples run as batch-1 rows. Results are
// therefore the same for any batch size or thread count.
// `model_sha256` is recorded in the table. Throws IoError for an empty dataset.
CalibTable calibrate(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& options,
                     const std::string& model_sha256);
// The same pass, stopped before the method reduces the statistics to ranges: calibrate() is
// ranges_from(calibrate_stats(...)). Shards run it on their part of the data and merge.
CalibStats calibrate_stats(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& options,
                           const std::string& model_sha256);

}  // namespace ptq::calib
