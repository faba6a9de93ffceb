// fusable_activation: the single Relu/Clip reader of a value, with its bounds; the Mul of SiLU; a
// zero Pad before a Conv.
#include "activation_fusion.h"

#include <cstring>
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
  if (graph.is_output(v.id)) return std::nullopt;
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
  if (graph.is_output(v.id)) return std::nullopt;
  const ir::Node& m = graph.node(v.uses[0].node);
  if (!m.is_default_domain() || m.op_type != "Mul" || m.inputs.size() != 2 || m.outputs.size() != 1)
    return std::nullopt;
  const bool input_first = v.uses[0].slot == 1;
  if (m.inputs[input_first ? 0 : 1] != producer.inputs[0]) return std::nullopt;
  return FusableMultiply{m.id, input_first};
}

std::optional<FusablePad> fusable_pad(const ir::Model& model, const ir::Graph& graph, const ir::Node& pad,
                                      const std::vector<bool>& captured) {
  if (!pad.is_default_domain() || pad.op_type != "Pad" || pad.outputs.size() != 1 || pad.outputs[0] == ir::kNone ||
      pad.inputs.empty() || pad.inputs[0] == ir::kNone)
    return std::nullopt;
  const ir::Value& v = graph.value(pad.outputs[0]);
  if (v.uses.size() != 1 || v.uses[0].slot != 0 || captured[static_cast<size_t>(v.id)]) return std::nullopt;
  if (graph.is_output(v.id)) return std::nullopt;
  const ir::Node& conv = graph.node(v.uses[0].node);
  if (!conv.is_default_domain() || conv.op_type != "Conv" || conv.attr_string("auto_pad", "NOTSET") != "NOTSET")
    return std::nullopt;
  if (pad.attr_string("mode", "constant") != "constant") return std::nullopt;
  const auto positive_zero = [](float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits == 0;
  };
  std::vector<int64_t> all;
  if (model.opset(pad.domain) < 11) {
    if (!positive_zero(pad.attr_float("value", 0.f))) return std::nullopt;
    all = pad.attr_ints("pads");
  } else {
    if (pad.inputs.size() > 3 && pad.inputs[3] != ir::kNone) return std::nullopt;  // axes
    const Tensor* p = pad.inputs.size() > 1 && pad.inputs[1] != ir::kNone ? graph.constant(pad.inputs[1]) : nullptr;
    if (!p || p->dtype() != DType::kInt64) return std::nullopt;
    all.assign(p->data<int64_t>(), p->data<int64_t>() + p->numel());
    if (pad.inputs.size() > 2 && pad.inputs[2] != ir::kNone) {
      const Tensor* c = graph.constant(pad.inputs[2]);
      if (!c || c->dtype() != DType::kFloat || c->numel() > 1) return std::nullopt;
      if (c->numel() == 1 && !positive_zero(c->data<float>()[0])) return std::nullopt;
    }
  }
  const size_t r = all.size() / 2;
  if (all.size() % 2 != 0 || r < 3 || r > 4) return std::nullopt;  // Conv: 1-D and 2-D
  if (all[0] != 0 || all[1] != 0 || all[r] != 0 || all[r + 1] != 0) return std::nullopt;  // N and C
  FusablePad f{conv.id, {}};
  for (size_t i = 2; i < r; ++i) f.pads.push_back(all[i]);
  for (size_t i = r + 2; i < 2 * r; ++i) f.pads.push_back(all[i]);
  for (int64_t q : f.pads)
    if (q < 0 || q > (int64_t{1} << 30)) return std::nullopt;  // cropping, or hostile sizes left to Pad
  return f;
}

}  // namespace ptq::runtime
