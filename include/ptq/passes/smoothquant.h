// SmoothQuant: per-channel activation outliers migrated into the following weights.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/ir/graph.h"

namespace ptq::passes {

// A float activation x read (as input A) by MatMul/Gemm nodes with a constant 2-D weight:
// x / s there and W * s in every such consumer leave the model's function unchanged. The 1/s
// folds into a LayerNormalization's scale and bias when x is its output and nothing else reads
// x; otherwise a per-channel Mul(x, 1/s) is inserted for those consumers (other readers, such as
// a post-LN transformer's residual Add, keep x).
struct SmoothGroup {
  ir::ValueId activation = ir::kNone;
  ir::NodeId norm = ir::kNone;  // the LayerNormalization to fold 1/s into, or kNone
  std::vector<ir::NodeId> consumers;
};

// Measured on MiniLM-L6 (cosine to fp32 of int8 sentence embeddings in ORT): alpha 0.5 0.9865,
// 0.65 0.9949, 0.75 0.9959, 0.85 0.9961, 0.95 0.9946; without smoothing 0.9894.
constexpr float kDefaultSmoothQuantAlpha = 0.8f;

std::vector<SmoothGroup> smoothquant_groups(const ir::Graph& graph);

// s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) per input channel j (max over all consumers'
// weights), clamped to [1e-4, 1e4]; channels with no activation or weight use s_j = 1. New
// constants replace the old ones (a constant shared with other nodes is left to them).
// Every group needs act_max of its activation; groups without it are left alone.
// `act_max` holds max |x| per channel of each group's activation. Returns one note per group.
std::vector<std::string> apply_smoothquant(ir::Graph& graph, const std::vector<SmoothGroup>& groups,
                                           const std::map<ir::ValueId, std::vector<float>>& act_max, float alpha);

}  // namespace ptq::passes

namespace ptq::passes {

// Data-free statistics for apply_smoothquant: for a group whose activation is the output of a
// LayerNormalization over the last axis with constant scale γ (and bias β), channel j's
// magnitude estimated as |γ_j| + |β_j| (the normalized row has unit variance, so γ and β set
// each channel's spread). Only the channels' relative size matters: a common factor moves into
// the per-tensor activation scale and the per-column weight scales alike. Other groups are absent
// (a GELU output's channel maxima, propagated from γ, β and the weights as mean ± 3σ, did not
// correlate with the measured ones on MiniLM: r = -0.07).
std::map<ir::ValueId, std::vector<float>> norm_channel_estimates(const ir::Graph& graph,
                                                                 const std::vector<SmoothGroup>& groups);

}  // namespace ptq::passes
