// Per-channel grids for depthwise Conv inputs folded into the neighbouring Convs' weights, and
// measured output gains folded into a Conv's own.
#include "ptq/passes/depthwise_scales.h"

#include <algorithm>

#include "rewrite.h"

namespace ptq::passes {
namespace {

// A Conv with a constant float weight of rank >= 3 (and, if present, a constant float bias).
bool constant_conv(const ir::Graph& g, const ir::Node& n) {
  if (!n.is_default_domain() || n.op_type != "Conv" || n.inputs.size() < 2 || n.outputs.empty()) return false;
  const Tensor* w = float_constant(g, n, 1);
  if (!w || w->rank() < 3) return false;
  return n.inputs.size() < 3 || n.inputs[2] == ir::kNone || float_constant(g, n, 2);
}

bool depthwise(const ir::Graph& g, const ir::Node& n) {
  if (!constant_conv(g, n)) return false;
  const Tensor& w = *g.constant(n.inputs[1]);
  return w.dims()[1] == 1 && n.attr_int("group", 1) == w.dims()[0] && w.dims()[0] > 1;
}

const NodeQuant* planned(const QuantPlan& plan, ir::NodeId id) {
  for (const NodeQuant& q : plan.nodes)
    if (q.node == id) return &q;
  return nullptr;
}

bool per_channel_weights(const NodeQuant* q) { return q && !q->weights.empty() && q->weights.front().slot == 1 && q->weights.front().axis == 0; }

}  // namespace

std::map<ir::NodeId, ir::ValueId> depthwise_scale_candidates(const ir::Graph& g) {
  std::map<ir::NodeId, ir::ValueId> out;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& dw = g.node(id);
    if (!depthwise(g, dw) || dw.inputs[0] == ir::kNone) continue;
    const ir::ValueId x = dw.inputs[0];
    const ir::Node* act = g.producer(x);
    if (!act || g.value(x).uses.size() != 1 || g.is_output(x) || !clamps_at_zero(g, *act)) continue;
    const ir::ValueId y = act->inputs[0];
    const ir::Node* conv = g.producer(y);
    if (!conv || !constant_conv(g, *conv) || g.value(y).uses.size() != 1 || g.is_output(y)) continue;
    if (g.constant(conv->inputs[1])->dims()[0] != g.constant(dw.inputs[1])->dims()[0]) continue;
    out[id] = x;
  }
  return out;
}

std::map<ir::ValueId, std::vector<float>> scale_depthwise_inputs(ir::Graph& g, const QuantPlan& plan,
                                                                const RangeMap& ranges,
                                                                const std::map<ir::NodeId, std::vector<float>>& channel_max) {
  std::map<ir::ValueId, std::vector<float>> scaled;
  for (const auto& [dw_id, maxima] : channel_max) {
    if (static_cast<size_t>(dw_id) >= g.id_bound_nodes() || !g.node(dw_id).alive) continue;
    const ir::Node& dw = g.node(dw_id);
    if (!depthwise(g, dw)) continue;
    const ir::ValueId x = dw.inputs[0];
    const ir::Node* p = x == ir::kNone ? nullptr : g.producer(x);
    if (!p || !constant_conv(g, *p) || g.value(x).uses.size() != 1 || g.is_output(x)) continue;
    // Both Convs quantized with per-channel weights, the value between them one Q/DQ pair of its own.
    const NodeQuant* qp = planned(plan, p->id);
    const NodeQuant* qd = planned(plan, dw_id);
    if (!per_channel_weights(qp) || !per_channel_weights(qd) || !qp->quantize_output) continue;
    if (std::find(qd->activation_inputs.begin(), qd->activation_inputs.end(), 0) == qd->activation_inputs.end()) continue;
    if (plan.tied.count(x) || plan.fixed_ranges.count(x)) continue;
    bool tied_to = false;
    for (const auto& [a, b] : plan.tied) tied_to = tied_to || b == x;
    if (tied_to) continue;
    const auto r = ranges.find(g.value(x).name);
    if (r == ranges.end() || !(r->second.min >= 0.f) || !(r->second.max > 0.f)) continue;
    const Tensor& w1 = *g.constant(p->inputs[1]);
    const Tensor& w2 = *g.constant(dw.inputs[1]);
    const size_t channels = static_cast<size_t>(w2.dims()[0]);
    if (maxima.size() != channels || static_cast<size_t>(w1.dims()[0]) != channels) continue;
    std::vector<float> s(channels, 1.f);
    bool any = false;
    for (size_t c = 0; c < channels; ++c) {
      // A channel the calibration never saw above zero gets the largest factor.
      const float f = maxima[c] > 0.f ? r->second.max / maxima[c] : kMaxDepthwiseInputScale;
      s[c] = std::clamp(f, 1.f, kMaxDepthwiseInputScale);
      any = any || s[c] > 1.f;
    }
    if (!any) continue;
    const ir::NodeId pid = p->id;
    replace_constant(g, pid, 1, "_dwscaled", scaled_rows(w1, s, false));
    if (g.node(pid).inputs.size() > 2 && g.node(pid).inputs[2] != ir::kNone)
      replace_constant(g, pid, 2, "_dwscaled", scaled_rows(*g.constant(g.node(pid).inputs[2]), s, false));
    replace_constant(g, dw_id, 1, "_dwscaled", scaled_rows(*g.constant(g.node(dw_id).inputs[1]), s, true));
    scaled[x] = std::move(s);
  }
  return scaled;
}

void scale_conv_outputs(ir::Graph& g, const QuantPlan& plan, const std::map<std::string, std::vector<double>>& gain) {
  if (gain.empty()) return;
  for (const NodeQuant& q : plan.nodes) {
    const ir::Node& n = g.node(q.node);
    if (!n.alive || !constant_conv(g, n) || !per_channel_weights(&q) || q.bias_slot != 2 || q.bias_node != ir::kNone ||
        std::find(q.activation_inputs.begin(), q.activation_inputs.end(), 0) == q.activation_inputs.end())
      continue;
    const auto it = gain.find(g.value(n.outputs[0]).name);
    const Tensor* b = float_constant(g, n, 2);
    if (it == gain.end() || !b || static_cast<size_t>(g.constant(n.inputs[1])->dims()[0]) != it->second.size() ||
        b->numel() != it->second.size())
      continue;
    const std::vector<float> f(it->second.begin(), it->second.end());
    const ir::NodeId id = n.id;
    replace_constant(g, id, 1, "_gain", scaled_rows(*g.constant(n.inputs[1]), f, false));
    replace_constant(g, id, 2, "_gain", scaled_rows(*g.constant(g.node(id).inputs[2]), f, false));
  }
}

}  // namespace ptq::passes
