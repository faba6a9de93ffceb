// Rules for ops with weights: Conv/ConvTranspose, Gemm, MatMul (constant or activation B), Gather tables.
#include "ptq/core/error.h"
#include "rule.h"

namespace ptq::passes {
namespace {

// Per-channel axis, or per-tensor when the flags ask for it.
int64_t weight_axis(const RuleContext& ctx, int64_t axis) { return ctx.config.per_channel ? axis : -1; }

bool is_1d_bias(const RuleContext& ctx, ir::ValueId b) {
  const Tensor* t = ctx.graph.constant(b);
  return t && t->dtype() == DType::kFloat && t->rank() == 1;
}

}  // namespace

std::string rule_conv(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  if (!ctx.is_float_activation(RuleContext::input(n, 0))) return "input is not a float activation";
  if (!ctx.is_float_constant(RuleContext::input(n, 1))) return "weight is not a float constant";
  const ir::ValueId b = RuleContext::input(n, 2);
  if (b != ir::kNone && !is_1d_bias(ctx, b)) return "bias is not a 1-D float constant";
  q.activation_inputs = {0};
  // Output channels: Conv W[M, C/g, k...] axis 0; ConvTranspose W[C, M/g, k...] axis 1. A
  // grouped ConvTranspose has only M/g scales along axis 1 for its M outputs (and M biases), so
  // its weights are per-tensor.
  const bool transpose = n.op_type == "ConvTranspose";
  q.weights = {{1, transpose && n.attr_int("group", 1) != 1 ? -1 : weight_axis(ctx, transpose ? 1 : 0)}};
  if (b != ir::kNone) q.bias_slot = 2;
  q.quantize_output = ctx.config.quantize_outputs;
  return "";
}

std::string rule_gemm(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  if (!ctx.is_float_activation(RuleContext::input(n, 0))) return "input A is not a float activation";
  const ir::ValueId b = RuleContext::input(n, 1);
  q.activation_inputs = {0};
  if (ctx.is_float_constant(b)) {
    q.weights = {{1, weight_axis(ctx, n.attr_int("transB", 0) ? 0 : 1)}};
    const ir::ValueId c = RuleContext::input(n, 2);
    // QGemm takes an int32 bias only with beta == 1; alpha folds into the requantization.
    if (c != ir::kNone && is_1d_bias(ctx, c) && n.attr_float("beta", 1.f) == 1.f &&
        n.attr_float("alpha", 1.f) == 1.f)
      q.bias_slot = 2;
  } else if (ctx.is_float_activation(b)) {
    q.activation_inputs.push_back(1);
  } else {
    return "input B is neither a float constant nor a float activation";
  }
  q.quantize_output = ctx.config.quantize_outputs && !ctx.transformer;
  return "";
}

std::string rule_matmul(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  const ir::ValueId a = RuleContext::input(n, 0), b = RuleContext::input(n, 1);
  if (!ctx.is_float_activation(a)) return "input A is not a float activation";
  q.activation_inputs = {0};
  if (ctx.is_float_constant(b)) {
    const Tensor* t = ctx.graph.constant(b);
    // Output columns are B's last axis: per-channel along it (ORT's default axis 1 is only
    // right for 2-D B).
    q.weights = {{1, t->rank() >= 2 ? weight_axis(ctx, static_cast<int64_t>(t->rank()) - 1) : -1}};
  } else if (ctx.is_float_activation(b)) {
    q.activation_inputs.push_back(1);  // activation x activation, as in attention
  } else {
    return "input B is neither a float constant nor a float activation";
  }
  // Transformer placement: a float output, which ORT runs as MatMulIntegerToFloat.
  q.quantize_output = ctx.config.quantize_outputs && !ctx.transformer;
  return "";
}

// Tables below this many elements stay fp32: they weigh little in the file, and an int8 grid
// costs them accuracy (MiniLM's 512x384 position table: 9.5 % relative error per-tensor).
constexpr size_t kMinGatherTable = size_t{1} << 20;

std::string rule_gather(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  const ir::ValueId data = RuleContext::input(n, 0);
  if (!ctx.is_float_constant(data)) return "data is not a float constant table";
  if (ctx.graph.constant(data)->numel() < kMinGatherTable) return "table is small (kept fp32)";
  if (!ctx.is_float_activation(n.outputs[0])) return "output is not a float activation";
  // The table in the activation type with its exact range, and the output quantized with the
  // same parameters (plan_quantization fixes its range to the table's): ORT then gathers int8
  // rows and dequantizes only those (DropQDQ), where a lone DequantizeLinear would expand the
  // whole table on every run (MiniLM: 2.3 -> 7.3 ms at batch 1).
  q.weights = {{0, -1, /*as_activation=*/true}};
  q.quantize_output = true;
  return "";
}

}  // namespace ptq::passes
