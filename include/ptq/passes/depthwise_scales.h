// Per-channel grids for depthwise Conv inputs, and per-channel output gains, in a form ORT still
// runs as integer Convs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/ir/graph.h"
#include "ptq/passes/quant_plan.h"

namespace ptq::passes {

// The largest factor one channel's grid is refined by. On mobilenetv2 (mean-of-extremes ranges,
// per-channel maxima of 100 images) the output SQNR was 22.5, 22.7, 22.8, 22.6, 22.5, 22.4 dB with
// caps 2, 3, 4, 6, 8, 16 (21.0 dB without): a larger factor trusts a channel's calibration maximum
// further, and what the calibration never saw is clipped at it.
constexpr float kMaxDepthwiseInputScale = 4.f;

// In the prepared graph: the depthwise Convs (one input channel per group, constant weights) whose
// input only they read, computed by Relu or Clip(0, x) from a Conv with constant weights that
// nothing else reads: node id of the depthwise Conv -> its input value (of which calibration
// gathers per-channel maxima).
std::map<ir::NodeId, ir::ValueId> depthwise_scale_candidates(const ir::Graph& g);

// In a folded and planned int8 build of that graph (the Relu/Clip gone into the producer's Q, whose
// range starts at 0): one per-tensor uint8 grid holds channels whose maxima differ by 10x or more
// (mobilenetv2's expansion outputs). For each candidate in `channel_max` (depthwise Conv -> the
// per-channel maxima of its input) whose producer and depthwise Conv are both quantized with
// per-channel weights, channel c of the producer's weights and bias is multiplied by
// s_c = min(kMaxDepthwiseInputScale, R / max_c) (R: the tensor's range maximum, s_c >= 1) and the
// depthwise weights of channel c are divided by it. The Q then holds channel c at s_c times finer
// steps, clipped at R / s_c >= its calibration maximum: per-channel activation scales, while ORT
// still sees one scale per tensor. In float the graph computes the same (the clip at R is the Q's).
// Returns the scaled values (in `g`) with their factors.
std::map<ir::ValueId, std::vector<float>> scale_depthwise_inputs(ir::Graph& g, const QuantPlan& plan,
                                                                const RangeMap& ranges,
                                                                const std::map<ir::NodeId, std::vector<float>>& channel_max);

// In a planned int8 build: each Conv named in `gain` (by output name, one factor per output
// channel; empirical bias correction's gains, pipeline/empirical_bias.h) that is quantized with
// per-channel weights, reads a quantized input and has a bias gets channel c of its weights and
// bias multiplied by gain[c]. The int8 weight codes stay and their scales take the gain.
void scale_conv_outputs(ir::Graph& g, const QuantPlan& plan, const std::map<std::string, std::vector<double>>& gain);

}  // namespace ptq::passes
