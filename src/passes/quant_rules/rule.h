// Internal: the quantization rules registry, a plain table of {name, op types, pattern, apply}.
#pragma once

#include <span>
#include <string>

#include "ptq/passes/quant_plan.h"

namespace ptq::passes {

struct RuleContext {
  const ir::Graph& graph;
  const quant::QuantConfig& config;
  const RangeMap& ranges;  // calibrated tensors: exactly the float activations the run produced
  bool transformer = false;  // transformer placement (quant::Preset): weighted ops on inputs only
  // A float tensor computed at run time (not a constant) with a calibrated range.
  bool is_float_activation(ir::ValueId v) const;
  // A float constant (initializer or Constant output): what weights are made of.
  bool is_float_constant(ir::ValueId v) const;
  // Input `slot` of the node, or kNone when absent.
  static ir::ValueId input(const ir::Node& n, size_t slot) {
    return slot < n.inputs.size() ? n.inputs[slot] : ir::kNone;
  }
};

struct QuantRule {
  const char* name;
  const char* op_types;  // comma-separated ONNX op types (default domain)
  const char* pattern;   // the QDQ pattern emitted, as ORT's selectors describe it
  // Fills `q` and returns "" when the node is quantized, or the reason it stays fp32.
  std::string (*apply)(const RuleContext& ctx, const ir::Node& node, NodeQuant& q);
};

std::span<const QuantRule> quant_rules();
// nullptr when no rule covers the op.
const QuantRule* find_rule(const std::string& op_type);
// Ops that pass values through unchanged (Reshape, Slice, Resize, ...): their outputs share the
// input's scale when the input is quantized.
bool is_passthrough(const std::string& op_type);
// Passthrough ops whose output holds exactly their input's values, reordered (Reshape, Transpose,
// Flatten, Squeeze, Unsqueeze): one grid serves both sides even where a quantized node already
// reads the output (where the output is also a Concat's, the input takes that group's wider range).
bool preserves_values(const std::string& op_type);

}  // namespace ptq::passes
