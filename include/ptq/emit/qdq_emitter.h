// Writes a quantization plan into the graph as QuantizeLinear/DequantizeLinear (QDQ) nodes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <string>
#include <vector>

#include "ptq/ir/model.h"
#include "ptq/passes/quant_plan.h"

namespace ptq::emit {

struct EmitSummary {
  size_t activation_pairs = 0;  // Q->DQ pairs on activations
  size_t weights = 0;           // weights stored as integers + DequantizeLinear
  size_t biases = 0;            // int32 biases
  size_t quantized_nodes = 0;
  size_t affine_tails = 0;      // scalar Mul/Add between two pairs folded into Q/DQ parameters
  size_t float_hardswishes = 0;  // written-out float HardSwishes emitted as x·HardSigmoid(x)
  size_t uint8_weights = 0;     // weights stored as uint8 (--uint8-weights)
  std::vector<std::string> notes;  // adjustments worth telling the user (bias overflow, ...)
};

// Rewrites `model` in place:
// - each planned activation gets one Q->DQ pair (scalar scale and zero point initializers,
//   shared inside a tie group) and every consumer reads the DQ; a graph output keeps its name
//   on the DQ output;
// - weights become integer initializers -> DequantizeLinear with `axis` written explicitly;
// - biases become int32 with scale exactly s_x * s_w[c] (float32 product, as ORT's kernels use),
//   raising a channel's weight scale when its bias would overflow int32;
// - a scalar Mul/Add between a quantized tensor and the next pair (out = a·h + b, a > 0) goes into
//   h's Q parameters, read back through out's DQ (Conv readers' biases take the rounding of b);
// - a written-out HardSwish left float, x·Clip(x + 3, 0, 6), becomes 6·x·HardSigmoid(x), the 6 and a
//   scalar scale after it in its product's Q scale, a scalar shift after it a float Add before that Q;
// - float weights and Constant nodes nobody reads any more are removed.
// The model must be at opset >= 13 (per-axis DequantizeLinear).
// Bias correction: the mean of each input channel of a tensor by name (axis 1 of Conv inputs, the
// last axis of Gemm's rank-2 inputs), from fp32 runs on calibration data.
using ChannelMeans = std::map<std::string, std::vector<double>>;

// ... with `input_means`: a quantized Conv or Gemm whose input has means gets its bias corrected
// for the mean shift its quantized weights cause (bias_correction.h). With `bias_shift` (by the
// node's first output name, one value per output channel): added to the bias as well (the
// measured correction of pipeline/empirical_bias.h).
EmitSummary emit_qdq(ir::Model& model, const passes::QuantPlan& plan, const passes::RangeMap& ranges,
                     const quant::QuantConfig& config, const ChannelMeans& input_means = {},
                     const ChannelMeans& bias_shift = {});

// The inputs of the Convs and Gemms whose weight scales keep ORT's K pairs from saturating on
// x86 without VNNI (emit/weights.h): their quant::Range::channel_max (per channel, axis 1) lets
// each pair be bounded by its own channels' codes. Empty unless --reduce-range auto.
std::vector<ir::ValueId> pair_safe_inputs(const ir::Graph& g, const quant::QuantConfig& config);

}  // namespace ptq::emit
