// SmoothQuant (Xiao et al. 2023) for activations read by MatMul/Gemm weights, as a graph rewrite.
#include "ptq/passes/smoothquant.h"

#include <algorithm>
#include <cmath>

#include "ptq/core/error.h"
#include "rewrite.h"

namespace ptq::passes {
namespace {

// A consumer's weight as [C, N] (rows = input channels): MatMul B, Gemm B or Bᵀ (transB).
bool rows_are_channels(const ir::Node& n) { return !(n.op_type == "Gemm" && n.attr_int("transB", 0)); }

bool smoothable_consumer(const ir::Graph& g, const ir::Node& n, ir::ValueId x, int64_t channels) {
  if (!n.is_default_domain() || n.inputs.size() < 2 || n.inputs[0] != x || n.inputs[1] == x) return false;
  if (n.op_type == "Gemm" && n.attr_int("transA", 0)) return false;
  if (n.op_type != "MatMul" && n.op_type != "Gemm") return false;
  const Tensor* w = float_constant(g, n, 1);
  if (!w || w->rank() != 2) return false;
  return w->dims()[rows_are_channels(n) ? 0 : 1] == channels;
}


// The LayerNormalization that produces x over its last axis (so its scale and bias are per
// channel of x), or nullptr.
const ir::Node* last_axis_norm(const ir::Graph& g, ir::ValueId x) {
  const ir::Node* n = g.producer(x);
  if (!n || n->op_type != "LayerNormalization" || !n->is_default_domain() || n->outputs[0] != x) return nullptr;
  const auto& shape = g.value(n->inputs[0]).type.shape;
  const int64_t axis = n->attr_int("axis", -1);
  if (axis != -1 && !(shape && axis == static_cast<int64_t>(shape->size()) - 1)) return nullptr;
  return n;
}

// The LayerNormalization producing x when 1/s can fold into it: last axis, constant 1-D scale
// and bias of x's channel count, and x read by nothing but the smoothed consumers.
ir::NodeId foldable_norm(const ir::Graph& g, ir::ValueId x, int64_t c, size_t consumer_uses) {
  const ir::Node* n = last_axis_norm(g, x);
  if (!n || g.value(x).uses.size() != consumer_uses) return ir::kNone;
  if (g.is_output(x)) return ir::kNone;
  const Tensor* scale = float_constant(g, *n, 1);
  const Tensor* bias = float_constant(g, *n, 2);
  if (!scale || scale->rank() != 1 || scale->dims()[0] != c) return ir::kNone;
  if (n->inputs.size() > 2 && n->inputs[2] != ir::kNone && (!bias || bias->rank() != 1 || bias->dims()[0] != c))
    return ir::kNone;
  return n->id;
}

}  // namespace

std::vector<SmoothGroup> smoothquant_groups(const ir::Graph& g) {
  std::vector<SmoothGroup> out;
  for (ir::NodeId id : g.topological_order()) {
    for (ir::ValueId x : g.node(id).outputs) {
      if (x == ir::kNone || g.value(x).is_constant()) continue;
      SmoothGroup grp{x, ir::kNone, {}};
      int64_t c = -1;
      size_t uses = 0;
      for (const ir::Use& u : g.value(x).uses) {
        const ir::Node& n = g.node(u.node);
        if (u.slot != 0) continue;
        const Tensor* w = n.inputs.size() > 1 ? float_constant(g, n, 1) : nullptr;
        if (!w || w->rank() != 2) continue;
        const int64_t rows = w->dims()[rows_are_channels(n) ? 0 : 1];
        if ((c >= 0 && rows != c) || !smoothable_consumer(g, n, x, rows)) continue;
        c = rows;
        ++uses;
        if (std::find(grp.consumers.begin(), grp.consumers.end(), u.node) == grp.consumers.end())
          grp.consumers.push_back(u.node);
      }
      if (grp.consumers.empty()) continue;
      grp.norm = foldable_norm(g, x, c, uses);
      out.push_back(std::move(grp));
    }
  }
  return out;
}

std::vector<std::string> apply_smoothquant(ir::Graph& g, const std::vector<SmoothGroup>& groups,
                                           const std::map<ir::ValueId, std::vector<float>>& act_max, float alpha) {
  std::vector<std::string> notes;
  for (const SmoothGroup& grp : groups) {
    const auto it = act_max.find(grp.activation);
    if (it == act_max.end()) continue;
    const ir::NodeId first = grp.consumers.front();
    const size_t c = static_cast<size_t>(g.constant(g.node(first).inputs[1])->dims()[rows_are_channels(g.node(first)) ? 0 : 1]);
    if (it->second.size() != c) continue;
    std::vector<float> wmax(c, 0.f);
    for (ir::NodeId id : grp.consumers) {
      const ir::Node& n = g.node(id);
      const Tensor& w = *g.constant(n.inputs[1]);
      const size_t cols = static_cast<size_t>(w.numel() / c);
      const bool rows = rows_are_channels(n);
      const float* p = w.data<float>();
      for (size_t j = 0; j < c; ++j)
        for (size_t k = 0; k < cols; ++k) wmax[j] = std::max(wmax[j], std::fabs(p[rows ? j * cols + k : k * c + j]));
    }
    std::vector<float> s(c, 1.f);
    float smin = 1.f, smax = 1.f;
    for (size_t j = 0; j < c; ++j) {
      const double a = it->second[j], w = wmax[j];
      if (!(a > 0.0) || !(w > 0.0) || !std::isfinite(a) || !std::isfinite(w)) continue;
      s[j] = static_cast<float>(std::clamp(std::pow(a, alpha) / std::pow(w, 1.0 - alpha), 1e-4, 1e4));
      smin = std::min(smin, s[j]);
      smax = std::max(smax, s[j]);
    }
    const std::string x_name = g.value(grp.activation).name;
    const auto per_channel = [&](const Tensor& t) {
      std::vector<float> v(t.data<float>(), t.data<float>() + c);
      for (size_t j = 0; j < c; ++j) v[j] /= s[j];
      return Tensor::from_vector<float>({static_cast<int64_t>(c)}, v);
    };
    if (grp.norm != ir::kNone) {
      // y / s = (x̂ * gamma + beta) / s: new gamma and beta.
      replace_constant(g, grp.norm, 1, "_smooth", per_channel(*g.constant(g.node(grp.norm).inputs[1])));
      if (g.node(grp.norm).inputs.size() > 2 && g.node(grp.norm).inputs[2] != ir::kNone)
        replace_constant(g, grp.norm, 2, "_smooth", per_channel(*g.constant(g.node(grp.norm).inputs[2])));
    } else {
      // x / s for the smoothed consumers only, as an explicit per-channel Mul.
      const ir::ValueId inv = g.add_initializer(g.unique_name(x_name + "_smooth_scale"),
                                                per_channel(Tensor::from_vector<float>({static_cast<int64_t>(c)},
                                                                                       std::vector<float>(c, 1.f))));
      const std::string y = g.unique_name(x_name + "_smooth");
      const ir::NodeId mul = g.add_node("Mul", {grp.activation, inv}, {y}, {}, g.unique_name(x_name + "_SmoothMul"));
      const ir::ValueId yv = g.node(mul).outputs[0];
      g.value(yv).type = g.value(grp.activation).type;
      for (ir::NodeId id : grp.consumers) g.set_node_input(id, 0, yv);
    }
    // Consumers: W * s on the input-channel axis.
    for (ir::NodeId id : grp.consumers) {
      const Tensor& w = *g.constant(g.node(id).inputs[1]);
      const bool rows = rows_are_channels(g.node(id));
      const size_t cols = static_cast<size_t>(w.numel() / c);
      std::vector<float> v(w.data<float>(), w.data<float>() + w.numel());
      for (size_t j = 0; j < c; ++j)
        for (size_t k = 0; k < cols; ++k) v[rows ? j * cols + k : k * c + j] *= s[j];
      replace_constant(g, id, 1, "_smooth", Tensor::from_vector<float>(w.dims(), v));
    }
    notes.push_back(str_cat("'", x_name, "' -> ", grp.consumers.size(), " MatMul/Gemm",
                            grp.norm != ir::kNone ? " (folded into its LayerNormalization)" : " (per-channel Mul)",
                            ": s in [", smin, ", ", smax, "]"));
  }
  return notes;
}

std::map<ir::ValueId, std::vector<float>> norm_channel_estimates(const ir::Graph& g,
                                                                 const std::vector<SmoothGroup>& groups) {
  std::map<ir::ValueId, std::vector<float>> out;
  for (const SmoothGroup& grp : groups) {
    const ir::Node* n = last_axis_norm(g, grp.activation);
    if (!n) continue;
    const Tensor* scale = float_constant(g, *n, 1);
    const Tensor* bias = float_constant(g, *n, 2);
    if (!scale || scale->rank() != 1 || (bias && bias->numel() != scale->numel())) continue;
    std::vector<float> m(scale->numel());
    for (size_t j = 0; j < m.size(); ++j)
      m[j] = std::fabs(scale->data<float>()[j]) + (bias ? std::fabs(bias->data<float>()[j]) : 0.f);
    out[grp.activation] = std::move(m);
  }
  return out;
}

}  // namespace ptq::passes
