// Internal: SmoothQuant statistics and application shared by the static and dynamic pipelines.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/data/dataset.h"
#include "ptq/ir/model.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/report/accuracy.h"

namespace ptq::pipeline {

// Per-channel max |x| of every activation SmoothQuant could smooth, by tensor name.
std::map<std::string, std::vector<float>> smoothing_statistics(const ir::Model& model, data::Dataset& ds,
                                                               size_t threads);

// Data-free estimates (passes::norm_channel_estimates) by tensor name.
std::map<std::string, std::vector<float>> estimated_smoothing_statistics(const ir::Model& model);

// Smooths the model's graph with statistics by tensor name (fresh or from a calibration table).
void apply_smoothquant(ir::Model& model, const std::map<std::string, std::vector<float>>& channel_max, float alpha);

// A placeholder range on every tensor that may hold floats: what plans need when no data
// decides ranges (dynamic quantization; `ranged_values` tags them with their value ids).
passes::RangeMap placeholder_ranges(const ir::Graph& graph);

passes::NodeFilter to_filter(const report::NodeSelection& s);

}  // namespace ptq::pipeline
