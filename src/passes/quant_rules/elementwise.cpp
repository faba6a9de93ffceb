// Rules for Add/Mul, Concat, pools and Sigmoid: ops ORT runs as QLinear* kernels.
#include <algorithm>
#include <limits>

#include "ptq/core/error.h"

#include "rule.h"

namespace ptq::passes {

// Largest ratio of input range widths for which Concat still shares one scale (measured on
// YOLOX's heads, where scores in [0, 1] sit next to box regressions spanning tens).
constexpr float kConcatMaxRangeRatio = 8.f;

std::string rule_binary(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  if (n.inputs.size() != 2) return "expects two inputs";
  int activations = 0;
  for (int32_t slot = 0; slot < 2; ++slot) {
    const ir::ValueId v = n.inputs[static_cast<size_t>(slot)];
    if (ctx.is_float_activation(v)) {
      q.activation_inputs.push_back(slot);
      ++activations;
    } else if (ctx.is_float_constant(v)) {
      q.weights.push_back({slot, -1, /*as_activation=*/true});
    } else {
      return "an input is not float";
    }
  }
  if (activations == 0) return "both inputs are constants";
  q.quantize_output = true;  // QLinearAdd/QLinearMul need a Q on the output in both profiles
  return "";
}

std::string rule_concat(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  for (size_t slot = 0; slot < n.inputs.size(); ++slot) {
    if (!ctx.is_float_activation(n.inputs[slot])) return "an input is not a float activation";
    q.activation_inputs.push_back(static_cast<int32_t>(slot));
  }
  const auto& outs = ctx.graph.outputs;
  // A Concat that forms a model output often mixes unlike quantities (YOLOX: sigmoid scores
  // next to box regressions); one shared scale would crush the small ones.
  if (std::find(outs.begin(), outs.end(), n.outputs[0]) != outs.end())
    return "its output is a graph output that may mix differently scaled values";
  // The same trap inside the graph: inputs whose ranges differ widely would share one scale.
  float widest = 0.f, narrowest = std::numeric_limits<float>::infinity();
  for (ir::ValueId in : n.inputs) {
    const quant::Range r = ctx.ranges.at(ctx.graph.value(in).name);
    widest = std::max(widest, r.max - r.min);
    narrowest = std::min(narrowest, r.max - r.min);
  }
  if (narrowest > 0.f && widest / narrowest > kConcatMaxRangeRatio)
    return str_cat("input ranges differ ", static_cast<int>(widest / narrowest),
                   "x; one shared scale would crush the narrow ones");
  q.quantize_output = true;
  return "";
}

std::string rule_pool(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  if (!ctx.is_float_activation(RuleContext::input(n, 0))) return "input is not a float activation";
  if (n.outputs.size() > 1 && n.outputs[1] != ir::kNone && !ctx.graph.value(n.outputs[1]).uses.empty())
    return "MaxPool indices are used";
  q.activation_inputs = {0};
  q.quantize_output = true;
  // MaxPool picks input values: ORT drops its Q/DQ only when both sides share scale and zp.
  q.share_input_scale = n.op_type == "MaxPool";
  return "";
}

std::string rule_sigmoid(const RuleContext& ctx, const ir::Node& n, NodeQuant& q) {
  if (!ctx.is_float_activation(RuleContext::input(n, 0))) return "input is not a float activation";
  q.activation_inputs = {0};
  q.quantize_output = true;
  return "";
}

}  // namespace ptq::passes
