// Partial calibration statistics: what a calibration pass gathered before a method turns it into
// ranges; saved by each shard, merged exactly, and reduced to the same table as one run.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ptq/calib/calib_table.h"
#include "ptq/calib/methods.h"
#include "ptq/calib/through.h"

namespace ptq::calib {

// Shard I of N (1-based): the samples at positions I-1, I-1+N, I-1+2N, ... of the dataset.
struct Shard {
  size_t index = 1;
  size_t count = 1;
};
// "I/N" with 1 <= I <= N; UsageError naming `flag` otherwise.
Shard parse_shard(const std::string& text, const std::string& flag);

struct TensorStats {
  // Exact min/max in the table (graph inputs, tensors without a Q/DQ): no histograms kept.
  bool exact = false;
  Observation observation;
  // Read only through this activation (the pipeline sets it from the graph): the range is fitted
  // to the error after it (through.h).
  Through through = Through::kIdentity;
};

struct CalibStats {
  std::string model_sha256;  // of the fp32 model file
  std::string method;
  CalibParams params;
  Shard shard;               // which part of the data these statistics cover
  size_t samples = 0;        // batch rows observed
  std::map<std::string, TensorStats> tensors;  // tensor name -> statistics
  // max(0, max x) per channel (axis 1) of CalibrateOptions::channel_max_values, by tensor name (not
  // kept in shard files: a merged table measures them again).
  std::map<std::string, std::vector<float>> channel_max;
};

// The calibration table the statistics give: the method's range per tensor (exact min/max where
// `exact`). The same function one machine runs after its pass, so merged shards give its bytes.
CalibTable ranges_from(const CalibStats& stats);

// Merges every shard 1..N of one calibration (any order). IoError naming the file when the parts
// disagree (model, method, parameters, shard count, tensors) or a shard is missing or repeated.
CalibStats merge_stats(const std::vector<CalibStats>& parts, const std::vector<std::string>& labels);

// JSON ("ptq-calibration-stats", version 1): histograms sparse, sums exact; written atomically.
std::string calib_stats_json(const CalibStats& stats);
void save_calib_stats(const CalibStats& stats, const std::string& path);
// IoError naming the file and the key on malformed content.
CalibStats load_calib_stats(const std::string& path);
CalibStats parse_calib_stats(const std::string& text, const std::string& label);

}  // namespace ptq::calib
