// Per-channel activation statistics (max |x| per channel) for weight-side methods.
#pragma once

#include <map>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"

namespace ptq::calib {

// Folds max |x| per channel of `t` (the last axis, or with `channel_axis` 1 axis 1) into `into`;
// with `absolute` false max(0, max x) instead (the largest value, for uint8 codes).
void fold_channel_abs_max(std::vector<float>& into, const Tensor& t, int channel_axis, bool absolute = true);
// Folds per-channel maxima `from` into `into` (the longer length wins).
void fold_channel_max(std::vector<float>& into, const std::vector<float>& from);

// max |x| over every axis but the channel axis (the last, or with `channel_axis` 1 axis 1 of
// [N, C, ...]), per channel, for each value in `values` (top-level graph), over all samples of
// the dataset from its cursor; samples run on `threads` workers (0: all cores). A max does not
// depend on order, so results are the same for any thread count or batching. Values the run
// never produced are absent from the result.
std::map<ir::ValueId, std::vector<float>> channel_abs_max(const ir::Model& model, data::Dataset& dataset,
                                                          const std::vector<ir::ValueId>& values, size_t threads,
                                                          int channel_axis = -1, bool absolute = true);

}  // namespace ptq::calib
