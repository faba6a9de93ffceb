// Writes weight-only quantization: blockwise 4/8-bit weights (com.microsoft MatMulNBits and
// GatherBlockQuantized), float activations.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/emit/qdq_emitter.h"

namespace ptq::emit {

struct WeightOnlyConfig {
  int bits = 4;              // 4 or 8
  int64_t block_size = 32;   // a power of two >= 16
  bool symmetric = false;    // no zero points (implicit 2^(bits-1))
  bool clip_search = false;  // per-block range shrink with the least squared error (quant::quantize_blockwise)
  // With --calib: K×K sums of x·xᵀ over the calibration data by MatMul/Gemm input value; weights
  // read from a value listed here are quantized by GPTQ (quant::quantize_blockwise_gptq).
  const std::map<ir::ValueId, std::vector<double>>* grams = nullptr;
};

// Rewrites the plan's nodes that weight_only_reason() accepts:
//   MatMul(x, W [K, N])            -> MatMulNBits(x, W codes, scales, zero points) (K, N, bits, block_size)
//   Gemm(x, B, C?) (no transA, alpha = beta = 1; transB transposed) -> MatMulNBits with C as bias
//   Gather(table [V, D], ids), axis 0 -> GatherBlockQuantized(uint8 codes, ids, scales, zero points)
//                                       (gather_axis 0, quantize_axis 1, block_size, bits)
// Weights read by several nodes are stored once. `summary.weights` counts stored weights.
EmitSummary emit_weight_only(ir::Model& model, const passes::QuantPlan& plan, const WeightOnlyConfig& config);

// Empty when emit_weight_only rewrites the planned node, else why it stays fp32.
std::string weight_only_reason(const ir::Graph& graph, ir::NodeId node, const WeightOnlyConfig& config);

}  // namespace ptq::emit
