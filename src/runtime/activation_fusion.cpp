// fusable_activation: the single Relu/Clip reader of a value, with its bounds; the Mul of SiLU.
#include "activation_fusion.h"

#include <algorithm>
#include <limits>

namespace ptq::runtime {

namespace {

// A Clip bound input: absent keeps `fallback`; a constant float scalar gives its value.
std::optional<float> bound(const ir::Graph& graph, const ir::Node& clip, size_t slot, float fallback) {
  if (clip.inputs.size() <= slot || clip.inputs[slot] == ir::kNone) return fallback;
  const Tensor* t = graph.constant(clip.inputs[slot]);
  if (!t || t->dtype() != DType::kFloat || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

}  // namespace

std::optional<FusableActivation> fusable_activation(const ir::Model& model, const ir::Graph& graph,
                                                    const ir::Node& producer,
                                                    const std::vector<bool>& captured) {
  if (producer.outputs.size() != 1 || producer.outputs[0] == ir::kNone) return std::nullopt;
  const ir::Value& v = graph.value(producer.outputs[0]);
  if (v.uses.size() != 1 || v.uses[0].slot != 0 || captured[static_cast<size_t>(v.id)]) return std::nullopt;
  if (std::find(graph.outputs.begin(), graph.outputs.end(), v.id) != graph.outputs.end()) return std::nullopt;
  const ir::Node& a = graph.node(v.uses[0].node);
  if (!a.is_default_domain() || a.outputs.size() != 1) return std::nullopt;
  constexpr float kLowest = std::numeric_limits<float>::lowest(), kMax = std::numeric_limits<float>::max();
  // The bounds exactly as the Relu and Clip kernels (unary.cpp) use them.
  if (a.op_type == "Relu") return FusableActivation{a.id, {0.f, std::numeric_limits<float>::infinity()}};
  if (a.op_type != "Clip") return std::nullopt;
  if (model.opset(a.domain) < 11) {
    if (a.inputs.size() != 1) return std::nullopt;
    return FusableActivation{a.id, {a.attr_float("min", kLowest), a.attr_float("max", kMax)}};
  }
  const std::optional<float> lo = bound(graph, a, 1, kLowest), hi = bound(graph, a, 2, kMax);
  if (!lo || !hi) return std::nullopt;
  return FusableActivation{a.id, {*lo, *hi}};
}

std::optional<FusableMultiply> fusable_multiply_by_input(const ir::Graph& graph, const ir::Node& producer,
                                                         const std::vector<bool>& captured) {
  if (producer.outputs.size() != 1 || producer.outputs[0] == ir::kNone || producer.inputs.empty() ||
      producer.inputs[0] == ir::kNone)
    return std::nullopt;
  const ir::Value& v = graph.value(producer.outputs[0]);
  if (v.uses.size() != 1 || captured[static_cast<size_t>(v.id)]) return std::nullopt;
  if (std::find(graph.outputs.begin(), graph.outputs.end(), v.id) != graph.outputs.end()) return std::nullopt;
  const ir::Node& m = graph.node(v.uses[0].node);
  if (!m.is_default_domain() || m.op_type != "Mul" || m.inputs.size() != 2 || m.outputs.size() != 1)
    return std::nullopt;
  const bool input_first = v.uses[0].slot == 1;
  if (m.inputs[input_first ? 0 : 1] != producer.inputs[0]) return std::nullopt;
  return FusableMultiply{m.id, input_first};
}

}  // namespace ptq::runtime
