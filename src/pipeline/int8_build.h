// Internal: one int8 model from the prepared graph and its ranges (fold, plan, emit), the step
// every static-mode model of the pipeline goes through.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/emit/qdq_emitter.h"
#include "ptq/passes/quant_plan.h"
#include "ptq/quant/quant_config.h"
#include "ptq/report/accuracy.h"

namespace ptq::pipeline {

// One int8 model from the prepared graph: fold, plan and emit with a node filter.
struct Int8Build {
  report::BuiltModel built;
  passes::QuantPlan plan;
  emit::EmitSummary summary;
  int folded = 0;
};

// Depthwise Conv (node id in the prepared graph) -> per-channel maxima of its input, for
// passes::scale_depthwise_inputs.
using DepthwiseMax = std::map<ir::NodeId, std::vector<float>>;

Int8Build build_int8(const ir::Model& prepared, const passes::RangeMap& table_ranges, const quant::QuantConfig& config,
                     const passes::NodeFilter& filter, const emit::ChannelMeans& means = {},
                     const DepthwiseMax& depthwise_max = {}, const emit::ChannelMeans& bias_shift = {},
                     const emit::ChannelMeans& output_gain = {});

// The table's depthwise maxima (by input name) for the candidates of the prepared graph.
DepthwiseMax depthwise_max_by_node(const ir::Graph& prepared, const std::map<std::string, std::vector<float>>& by_name);

}  // namespace ptq::pipeline
