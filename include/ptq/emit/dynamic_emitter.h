// Writes dynamic quantization: int8 weights, activations quantized at run time (DynamicQuantizeLinear).
#pragma once

#include "ptq/emit/qdq_emitter.h"

namespace ptq::emit {

// Rewrites every planned MatMul with a constant 2-D weight (its WeightSpec: axis, 7-bit) into
// the pattern of onnxruntime.quantization.quantize_dynamic, which ORT fuses into
// DynamicQuantizeMatMul / MatMulIntegerToFloat:
//   x -> DynamicQuantizeLinear -> (x_q, x_scale, x_zp)      (one per activation, shared by readers)
//   MatMulInteger(x_q, W_q int8, x_zp, W_zp) -> Cast(float) -> Mul(·, Mul(x_scale, W_scale)) -> y
// Gemm (no transA, alpha = beta = 1) becomes the same with B stored as [K, N] and an Add of C;
// Conv becomes ConvInteger (per-channel scales shaped [M, 1, ...], scalar zero point 0) -> Cast
// -> Mul -> Add(bias as [M, 1, ...]), where ORT's quantize_dynamic uses one scale per tensor.
// Other planned nodes are left alone (the caller emits them as QDQ or keeps them fp32).
// `summary.activation_pairs` counts DynamicQuantizeLinear nodes. Needs opset >= 11.
EmitSummary emit_dynamic(ir::Model& model, const passes::QuantPlan& plan, const quant::QuantConfig& config);

// True for the nodes emit_dynamic rewrites.
bool dynamic_candidate(const ir::Graph& graph, const passes::NodeQuant& q);

}  // namespace ptq::emit
