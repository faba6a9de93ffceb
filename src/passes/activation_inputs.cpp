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

// x's readers are exactly the Add(x, 3) and the Mul of a written-out HardSwish: the Mul reads x
// itself, so both see the same Q of x and the output is HardSwish(x as quantized) times 6.
bool is_written_out_hardswish_input(const ir::Graph& g, ir::ValueId x) {
  const std::vector<ir::Use>& uses = g.value(x).uses;
  if (uses.size() != 2) return false;
  for (size_t i = 0; i < 2; ++i) {
    const ir::Node& n = g.node(uses[i].node);
    if (n.op_type != "Add") continue;
    const std::optional<HardSwishParts> parts = decomposed_hardswish(g, n);
    if (parts && parts->x == x && uses[1 - i].node == parts->mul) return true;  // (parts->add is n)
  }
  return false;
}

// The sole reader of v, or nullptr.
const ir::Node* sole_reader(const ir::Graph& g, ir::ValueId v) {
  if (v == ir::kNone || g.value(v).uses.size() != 1 || g.is_output(v)) return nullptr;
  return &g.node(g.value(v).uses[0].node);
}

}  // namespace

std::optional<HardSwishParts> decomposed_hardswish(const ir::Graph& g, const ir::Node& n) {
  // Add(x, 3) -> Clip(0, 6) -> Mul(x, clip), each the previous one's sole reader; the Clip may
  // already be folded into the Add's Q (passes::fold_activations_into_quantized_producers).
  if (!n.is_default_domain() || n.inputs.size() != 2) return std::nullopt;
  const ir::Node* add = &n;
  if (n.op_type == "Mul") {
    for (size_t i = 0; i < 2 && add == &n; ++i) {
      const ir::Node* p = n.inputs[i] == ir::kNone ? nullptr : g.producer(n.inputs[i]);
      if (p && p->op_type == "Clip" && !p->inputs.empty()) p = g.producer(p->inputs[0]);
      if (p && p->op_type == "Add") add = p;
    }
    if (add == &n) return std::nullopt;
  }
  if (add->op_type != "Add" || !add->is_default_domain() || add->inputs.size() != 2) return std::nullopt;
  for (size_t slot = 0; slot < 2; ++slot) {
    if (!scalar_input_is(g, *add, 1 - slot, nullptr, 3.f) || g.constant(add->inputs[slot])) continue;
    const ir::ValueId x = add->inputs[slot];
    const ir::Node* next = sole_reader(g, add->outputs[0]);
    const ir::Node* clip = next && next->is_default_domain() && next->op_type == "Clip" ? next : nullptr;
    if (clip && (clip->inputs[0] != add->outputs[0] || !scalar_input_is(g, *clip, 1, "min", 0.f) ||
                 !scalar_input_is(g, *clip, 2, "max", 6.f)))
      return std::nullopt;
    const ir::Node* mul = clip ? sole_reader(g, clip->outputs[0]) : next;
    if (!mul || !mul->is_default_domain() || mul->op_type != "Mul" || mul->inputs.size() != 2) return std::nullopt;
    const ir::ValueId t = clip ? clip->outputs[0] : add->outputs[0];
    const ir::ValueId other = mul->inputs[0] == t ? mul->inputs[1] : mul->inputs[0];
    if (other != x || (mul->inputs[0] != t && mul->inputs[1] != t) || (n.op_type == "Mul" && mul != &n))
      return std::nullopt;
    return HardSwishParts{x, add->id, clip ? clip->id : ir::kNone, mul->id};
  }
  return std::nullopt;
}

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

std::map<ir::ValueId, ActivationInput> activation_inputs(const ir::Graph& g, bool written_out_hardswish) {
  std::map<ir::ValueId, ActivationInput> found;
  for (size_t v = 0; v < g.id_bound_values(); ++v) {
    const auto x = static_cast<ir::ValueId>(v);
    const ir::Value& val = g.value(x);
    if (!val.alive || val.is_constant() || g.is_output(x)) continue;
    if (is_silu_input(g, x)) found[x] = ActivationInput::kSilu;
    else if (is_hardswish_input(g, x) || (written_out_hardswish && is_written_out_hardswish_input(g, x)))
      found[x] = ActivationInput::kHardSwish;
  }
  return found;
}

}  // namespace ptq::passes
