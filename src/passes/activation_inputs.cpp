// Finds the inputs of SiLU (Sigmoid + Mul) and HardSwish activations.
#include "ptq/passes/activation_inputs.h"

#include "rewrite.h"

namespace ptq::passes {
namespace {

// x's readers are exactly Sigmoid(x) and Mul(x, Sigmoid(x)) (either operand order).
bool is_silu_input(const ir::Graph& g, ir::ValueId x) {
  const std::vector<ir::Use>& uses = g.value(x).uses;
  if (uses.size() != 2) return false;
  const ir::Node* sigmoid = nullptr;
  const ir::Node* mul = nullptr;
  for (const ir::Use& u : uses) {
    const ir::Node& n = g.node(u.node);
    if (!n.is_default_domain()) return false;
    if (n.op_type == "Sigmoid" && u.slot == 0) sigmoid = &n;
    else if (n.op_type == "Mul" && n.inputs.size() == 2) mul = &n;
  }
  // The Mul's Sigmoid operand reads x, and x's other reader is that Sigmoid.
  return sigmoid && mul && silu_operand(g, *mul) == x;
}

bool is_hardswish_input(const ir::Graph& g, ir::ValueId x) {
  const std::vector<ir::Use>& uses = g.value(x).uses;
  if (uses.size() != 1) return false;
  const ir::Node& n = g.node(uses[0].node);
  return n.is_default_domain() && n.op_type == "HardSwish";
}

}  // namespace

ir::ValueId silu_operand(const ir::Graph& g, const ir::Node& mul) {
  if (mul.op_type != "Mul" || !mul.is_default_domain() || mul.inputs.size() != 2) return ir::kNone;
  for (size_t i = 0; i < 2; ++i) {
    const ir::Node* s = mul.inputs[i] == ir::kNone ? nullptr : g.producer(mul.inputs[i]);
    if (s && s->op_type == "Sigmoid" && s->is_default_domain() && !s->inputs.empty() &&
        s->inputs[0] == mul.inputs[1 - i])
      return mul.inputs[1 - i];
  }
  return ir::kNone;
}

std::map<ir::ValueId, ActivationInput> activation_inputs(const ir::Graph& g) {
  std::map<ir::ValueId, ActivationInput> found;
  for (size_t v = 0; v < g.id_bound_values(); ++v) {
    const auto x = static_cast<ir::ValueId>(v);
    const ir::Value& val = g.value(x);
    if (!val.alive || val.is_constant() || is_graph_output(g, x)) continue;
    if (is_silu_input(g, x)) found[x] = ActivationInput::kSilu;
    else if (is_hardswish_input(g, x)) found[x] = ActivationInput::kHardSwish;
  }
  return found;
}

}  // namespace ptq::passes
