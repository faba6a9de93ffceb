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
  if (!sigmoid || !mul || sigmoid->outputs.empty()) return false;
  const ir::ValueId s = sigmoid->outputs[0];
  return (mul->inputs[0] == x && mul->inputs[1] == s) || (mul->inputs[0] == s && mul->inputs[1] == x);
}

bool is_hardswish_input(const ir::Graph& g, ir::ValueId x) {
  const std::vector<ir::Use>& uses = g.value(x).uses;
  if (uses.size() != 1) return false;
  const ir::Node& n = g.node(uses[0].node);
  return n.is_default_domain() && n.op_type == "HardSwish";
}

}  // namespace

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
