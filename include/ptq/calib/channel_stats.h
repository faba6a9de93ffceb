// Per-channel activation maxima (max |x|, or the largest value) for weight-side methods.
#pragma once

#include <map>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"

namespace ptq::calib {

// What a per-channel maximum is of: max |x| (SmoothQuant's activation side), or max(0, max x),
// the largest value (a uint8 grid's top code: K pair bounds, depthwise input scales).
enum class MaxKind { kAbsolute, kSigned };

// Folds the per-channel maximum of `t` (the last axis, or with `channel_axis` 1 axis 1) into `into`.
void fold_channel_max_of(std::vector<float>& into, const Tensor& t, int channel_axis, MaxKind kind);
// Folds per-channel maxima `from` into `into` (the longer length wins).
void fold_channel_max(std::vector<float>& into, const std::vector<float>& from);

// The `kind` maximum over every axis but the channel axis (the last, or with `channel_axis` 1 axis 1 of
// [N, C, ...]), per channel, for each value in `values` (top-level graph), over all samples of
// the dataset from its cursor; samples run on `threads` workers (0: all cores). A max does not
// depend on order, so results are the same for any thread count or batching. Values the run
// never produced are absent from the result.
std::map<ir::ValueId, std::vector<float>> channel_max_of(const ir::Model& model, data::Dataset& dataset,
                                                         const std::vector<ir::ValueId>& values, size_t threads,
                                                         int channel_axis = -1, MaxKind kind = MaxKind::kAbsolute);

}  // namespace ptq::calib
