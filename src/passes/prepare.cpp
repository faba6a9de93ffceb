// Preparation passes: no-op removal, BatchNormalization, scale, shift and zero Pad folding, dead code removal.
#include "ptq/passes/prepare.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/passes/activation_inputs.h"
#include "rewrite.h"

namespace ptq::passes {
namespace {

std::vector<float> as_floats(const Tensor& t) {
  std::vector<float> v(t.numel());
  if (t.dtype() == DType::kFloat) std::copy(t.data<float>(), t.data<float>() + t.numel(), v.begin());
  else if (t.dtype() == DType::kDouble)
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(t.data<double>()[i]);
  else throw UnsupportedError("BatchNormalization parameters must be float");
  return v;
}

// A Mul or Div by a float scalar constant: Mul(x, c), Mul(c, x) or Div(x, c), c of one element
// (not 0 for Div). `factor` is what it multiplies `x` by.
struct ScalarScale {
  double factor;
  ir::ValueId x;
  const Tensor* c;
};

std::optional<ScalarScale> scalar_scale(const ir::Graph& g, const ir::Node& n) {
  if (!binary_mul_or_div(n)) return std::nullopt;
  for (size_t slot : {size_t{1}, size_t{0}}) {
    if (n.op_type == "Div" && slot == 0) break;
    const Tensor* c = float_constant(g, n, slot);
    if (!c || c->numel() != 1 || float_constant(g, n, 1 - slot) || n.inputs[1 - slot] == ir::kNone) continue;
    const double v = c->data<float>()[0];
    if (n.op_type == "Div" && v == 0) return std::nullopt;
    return ScalarScale{n.op_type == "Div" ? 1 / v : v, n.inputs[1 - slot], c};
  }
  return std::nullopt;
}

// The per-output-channel factors of constant `c` multiplying a Conv output of rank `rank` with
// `m` channels: a scalar, or m values along the channel axis (shape [m, 1, ...] or [1, m, 1, ...]
// right-aligned to the output). Empty when `c` broadcasts any other way or would add axes.
std::vector<float> channel_factors(const Tensor& c, int64_t m, size_t rank) {
  if (c.dtype() != DType::kFloat || c.rank() > rank || c.numel() == 0) return {};
  const float* p = c.data<float>();
  if (c.numel() == 1) return std::vector<float>(static_cast<size_t>(m), p[0]);
  const size_t lead = rank - c.rank();  // axes c lacks on the left
  if (static_cast<int64_t>(c.numel()) != m || lead > 1 || c.dims()[1 - lead] != m) return {};
  return std::vector<float>(p, p + m);
}

// The Conv that writes `x` for node output `out` alone to read (float weights of rank >= 3, a
// float bias or none), with constant `c`'s value per output channel of it (channel_factors).
struct ConvChannels {
  const ir::Node* conv;
  const Tensor* w;
  const Tensor* b;  // nullptr: no bias
  std::vector<float> per_channel;
};

std::optional<ConvChannels> sole_conv_channels(const ir::Graph& g, ir::ValueId x, ir::ValueId out, const Tensor* c) {
  const ir::Node* conv = c && x != ir::kNone ? g.producer(x) : nullptr;
  if (!conv || !conv->is_default_domain() || conv->op_type != "Conv") return std::nullopt;
  if (g.value(x).uses.size() != 1 || g.is_output(x) || !can_bypass(g, x, out)) return std::nullopt;
  const Tensor* w = float_constant(g, *conv, 1);
  const bool has_bias = conv->inputs.size() > 2 && conv->inputs[2] != ir::kNone;
  const Tensor* b = has_bias ? float_constant(g, *conv, 2) : nullptr;
  if (!w || w->rank() < 3 || (has_bias && !b)) return std::nullopt;
  const int64_t m = w->dims()[0];
  std::vector<float> f = channel_factors(*c, m, w->rank());
  if (f.empty() || (b && static_cast<int64_t>(b->numel()) != m)) return std::nullopt;
  return ConvChannels{conv, w, b, std::move(f)};
}

}  // namespace

void remove_noops(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!n.is_default_domain() || (n.op_type != "Identity" && n.op_type != "Dropout")) continue;
    if (n.inputs.empty() || n.inputs[0] == ir::kNone || n.outputs.empty()) continue;
    // Dropout's mask output, or training_mode set, means it is not a no-op.
    if (n.outputs.size() > 1 && n.outputs[1] != ir::kNone && !g.value(n.outputs[1]).uses.empty()) continue;
    if (n.op_type == "Dropout" && n.inputs.size() > 2 && n.inputs[2] != ir::kNone) continue;
    const ir::ValueId in = n.inputs[0], out = n.outputs[0];
    if (!can_bypass(g, in, out)) continue;
    if (n.outputs.size() > 1 && n.outputs[1] != ir::kNone && g.is_output(n.outputs[1])) continue;
    changes.push_back(str_cat("removed ", n.label()));
    bypass(g, id, in, out);
  }
}

void fold_batchnorm(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& bn = g.node(id);
    if (!bn.alive || bn.op_type != "BatchNormalization" || !bn.is_default_domain()) continue;
    if (bn.inputs.size() < 5 || bn.attr_int("training_mode", 0) != 0) continue;
    if (bn.outputs.size() > 1 && std::any_of(bn.outputs.begin() + 1, bn.outputs.end(), [&](ir::ValueId v) {
          return v != ir::kNone && (!g.value(v).uses.empty() || g.is_output(v));
        }))
      continue;
    const ir::ValueId x = bn.inputs[0];
    const ir::Node* conv = g.producer(x);
    if (!conv || (conv->op_type != "Conv" && conv->op_type != "ConvTranspose")) continue;
    if (g.value(x).uses.size() != 1 || g.is_output(x)) continue;
    const Tensor* w = g.constant(conv->inputs.size() > 1 ? conv->inputs[1] : ir::kNone);
    const Tensor* b = g.constant(conv->inputs.size() > 2 ? conv->inputs[2] : ir::kNone);
    if (!w || w->dtype() != DType::kFloat || w->rank() < 2) continue;
    if (conv->inputs.size() > 2 && conv->inputs[2] != ir::kNone && !b) continue;
    const Tensor* gamma = g.constant(bn.inputs[1]);
    const Tensor* beta = g.constant(bn.inputs[2]);
    const Tensor* mean = g.constant(bn.inputs[3]);
    const Tensor* var = g.constant(bn.inputs[4]);
    if (!gamma || !beta || !mean || !var) continue;
    if (!can_bypass(g, x, bn.outputs[0])) continue;
    const bool transpose = conv->op_type == "ConvTranspose";
    const int64_t group = conv->attr_int("group", 1);
    // Output channels: Conv W[M, C/g, k...]; ConvTranspose W[C, M/g, k...] with M = g * dims[1].
    const int64_t m = transpose ? w->dims()[1] * group : w->dims()[0];
    const auto gm = as_floats(*gamma), bt = as_floats(*beta), mu = as_floats(*mean), vr = as_floats(*var);
    if (static_cast<int64_t>(gm.size()) != m || bt.size() != gm.size() || mu.size() != gm.size() ||
        vr.size() != gm.size())
      continue;
    const float eps = bn.attr_float("epsilon", 1e-5f);
    std::vector<float> factor(static_cast<size_t>(m));
    for (size_t c = 0; c < factor.size(); ++c) factor[c] = gm[c] / std::sqrt(vr[c] + eps);
    Tensor nw = Tensor::from_bytes(DType::kFloat, w->dims(), w->raw(), w->nbytes());
    float* pw = nw.mutable_data<float>();
    const size_t inner = w->numel() / static_cast<size_t>(w->dims()[0]);
    for (size_t i = 0; i < w->numel(); ++i) {
      size_t c;
      if (!transpose) {
        c = i / inner;
      } else {
        // W[C, M/g, k...]: input channel ci belongs to group ci / (C/g); m = group * M/g + j.
        const size_t per_m = inner / static_cast<size_t>(w->dims()[1]);
        const size_t ci = i / inner, j = (i % inner) / per_m;
        const size_t cin_per_group = static_cast<size_t>(w->dims()[0] / group);
        c = (ci / cin_per_group) * static_cast<size_t>(w->dims()[1]) + j;
      }
      pw[i] *= factor[c];
    }
    std::vector<float> nb(static_cast<size_t>(m), 0.f);
    const std::vector<float> ob = b ? as_floats(*b) : std::vector<float>(static_cast<size_t>(m), 0.f);
    for (size_t c = 0; c < nb.size(); ++c) nb[c] = (ob[c] - mu[c]) * factor[c] + bt[c];
    const ir::NodeId conv_id = conv->id;
    const std::string conv_label = conv->label(), bn_label = bn.label();
    const std::string wname = g.unique_name(g.value(conv->inputs[1]).name + "_bn");
    const std::string bname = g.unique_name((conv->name.empty() ? wname : conv->name) + "_bias_bn");
    g.set_node_input(conv_id, 1, g.add_initializer(wname, std::move(nw)));
    g.set_node_input(conv_id, 2, g.add_initializer(bname, Tensor::from_vector<float>({m}, nb)));
    bypass(g, id, x, g.node(id).outputs[0]);
    changes.push_back(str_cat("folded ", bn_label, " into ", conv_label));
  }
}

void merge_constant_scales(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const std::optional<ScalarScale> second = scalar_scale(g, g.node(id));
    const ir::Node* first = second ? g.producer(second->x) : nullptr;
    if (!first || g.value(second->x).uses.size() != 1 || g.is_output(second->x) || is_captured(g, second->x))
      continue;
    const std::optional<ScalarScale> f = scalar_scale(g, *first);
    if (!f) continue;
    // The merged constant takes the larger rank of the two (each all ones), so the output's
    // broadcast shape stays as it was.
    const Dims dims = f->c->rank() > second->c->rank() ? f->c->dims() : second->c->dims();
    const float v = static_cast<float>(f->factor * second->factor);
    const ir::Node& n = g.node(id);
    const std::string labels = str_cat(first->label(), " and ", n.label());
    const ir::NodeId first_id = first->id;
    const ir::ValueId merged =
        g.add_initializer(g.unique_name((n.name.empty() ? g.value(n.outputs[0]).name : n.name) + "_scale"),
                          Tensor::from_bytes(DType::kFloat, dims, &v, sizeof v));
    g.node(id).op_type = "Mul";
    g.set_node_input(id, 0, f->x);
    g.set_node_input(id, 1, merged);
    g.remove_node(first_id);
    changes.push_back(str_cat("merged ", labels, " into one Mul"));
  }
}

void fold_scale_into_conv(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& s = g.node(id);
    if (!binary_mul_or_div(s)) continue;
    for (size_t slot : {size_t{0}, size_t{1}}) {  // the Conv output's operand
      if (s.op_type == "Div" && slot == 1) break;
      const ir::ValueId x = s.inputs[slot];
      const std::optional<ConvChannels> cc = sole_conv_channels(g, x, s.outputs[0], float_constant(g, s, 1 - slot));
      if (!cc) continue;
      const std::vector<float>& f = cc->per_channel;
      const bool divide = s.op_type == "Div";
      if (divide && std::any_of(f.begin(), f.end(), [](float v) { return v == 0.f; })) continue;
      // (Adding an initializer may move the tensors `w` and `b` point to: both read first.)
      Tensor nw = scaled_rows(*cc->w, f, divide);
      std::optional<Tensor> nb;
      if (cc->b) nb = scaled_rows(*cc->b, f, divide);
      const ir::NodeId conv_id = cc->conv->id;
      const std::string labels = str_cat(s.label(), " into ", cc->conv->label());
      replace_constant(g, conv_id, 1, "_scaled", std::move(nw));
      if (nb) replace_constant(g, conv_id, 2, "_scaled", std::move(*nb));
      bypass(g, id, x, g.node(id).outputs[0]);
      changes.push_back(str_cat("folded ", labels));
      break;
    }
  }
}

void fold_shift_into_hardswish_conv(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& a = g.node(id);
    if (!a.is_default_domain() || a.op_type != "Add" || a.inputs.size() != 2 || a.outputs.size() != 1) continue;
    // Only where a written-out HardSwish reads the sum: it can then read the Conv's int8 output.
    const ir::ValueId y = a.outputs[0];
    const bool hardswish = std::any_of(g.value(y).uses.begin(), g.value(y).uses.end(), [&](const ir::Use& u) {
      const auto parts = decomposed_hardswish(g, g.node(u.node));
      return parts && parts->x == y;
    });
    if (!hardswish) continue;
    for (size_t slot : {size_t{0}, size_t{1}}) {  // the Conv output's operand
      const ir::ValueId x = a.inputs[slot];
      const std::optional<ConvChannels> cc = sole_conv_channels(g, x, y, float_constant(g, a, 1 - slot));
      if (!cc) continue;
      const int64_t m = cc->w->dims()[0];
      std::vector<float> nb = cc->b ? as_floats(*cc->b) : std::vector<float>(static_cast<size_t>(m), 0.f);
      for (size_t ch = 0; ch < nb.size(); ++ch) nb[ch] += cc->per_channel[ch];
      const ir::NodeId conv_id = cc->conv->id;
      const std::string labels = str_cat(a.label(), " into ", cc->conv->label());
      const std::string conv_name = cc->conv->name;
      const std::string bname = g.unique_name((conv_name.empty() ? g.value(x).name : conv_name) + "_bias_shifted");
      g.set_node_input(conv_id, 2, g.add_initializer(bname, Tensor::from_vector<float>({m}, nb)));
      bypass(g, id, x, y);
      changes.push_back(str_cat("folded ", labels, "'s bias"));
      break;
    }
  }
}

void fold_pad_into_conv(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& pad = g.node(id);
    if (!pad.alive || pad.op_type != "Pad" || !pad.is_default_domain() || pad.inputs.size() < 2) continue;
    if (pad.attr_string("mode", "constant") != "constant") continue;
    if (pad.inputs.size() > 3 && pad.inputs[3] != ir::kNone) continue;  // opset 18 axes: not handled
    const ir::ValueId x = pad.inputs[0], y = pad.outputs[0];
    // The padding value must be 0, which is what Conv's own pads add.
    if (pad.inputs.size() > 2 && pad.inputs[2] != ir::kNone) {
      const Tensor* v = g.constant(pad.inputs[2]);
      if (!v || v->dtype() != DType::kFloat || v->numel() != 1 || v->data<float>()[0] != 0.f) continue;
    }
    const Tensor* pads_t = g.constant(pad.inputs[1]);
    if (!pads_t || pads_t->dtype() != DType::kInt64 || pads_t->numel() < 6 || pads_t->numel() % 2) continue;
    if (g.value(y).uses.size() != 1 || g.is_output(y)) continue;
    const ir::Node& conv = g.node(g.value(y).uses[0].node);
    if (conv.op_type != "Conv" || !conv.is_default_domain() || g.value(y).uses[0].slot != 0) continue;
    if (conv.attr_string("auto_pad", "NOTSET") != "NOTSET") continue;
    const size_t rank = pads_t->numel() / 2, spatial = rank - 2;
    const int64_t* p = pads_t->data<int64_t>();
    // Only spatial padding, never negative (a crop): batch and channel axes stay as they are.
    if (p[0] || p[1] || p[rank] || p[rank + 1] || std::any_of(p, p + 2 * rank, [](int64_t v) { return v < 0; }))
      continue;
    std::vector<int64_t> cp = conv.attr_ints("pads", std::vector<int64_t>(2 * spatial, 0));
    if (cp.size() != 2 * spatial) continue;
    for (size_t i = 0; i < spatial; ++i) {
      cp[i] += p[2 + i];
      cp[spatial + i] += p[rank + 2 + i];
    }
    if (!can_bypass(g, x, y)) continue;
    const ir::NodeId conv_id = conv.id;
    const std::string labels = str_cat(pad.label(), " into ", conv.label());
    g.node(conv_id).set_attr(ir::Attribute::make_ints("pads", cp));
    bypass(g, id, x, y);
    changes.push_back(str_cat("folded ", labels));
  }
}

void remove_dead_code(ir::Graph& g, Changes& changes) {
  auto order = g.topological_order();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const ir::Node& n = g.node(*it);
    const bool dead = std::all_of(n.outputs.begin(), n.outputs.end(), [&](ir::ValueId v) {
      return v == ir::kNone ||
             (g.value(v).uses.empty() && !g.is_output(v) && !is_captured(g, v));
    });
    if (!dead) continue;
    if (n.op_type != "Constant") changes.push_back(str_cat("removed unused ", n.label()));
    g.remove_node(*it);
  }
  for (ir::ValueId v : std::vector<ir::ValueId>(g.initializers)) {
    const ir::Value& val = g.value(v);
    if (val.uses.empty() && !g.is_output(v) && !g.is_input(v) && !is_captured(g, v))
      g.remove_value(v);
  }
}

void remove_initializers_from_inputs(ir::Graph& g, Changes& changes) {
  const size_t before = g.inputs.size();
  g.inputs.erase(std::remove_if(g.inputs.begin(), g.inputs.end(),
                                [&](ir::ValueId v) { return g.value(v).kind == ir::ValueKind::kInitializer; }),
                 g.inputs.end());
  if (g.inputs.size() != before)
    changes.push_back(str_cat("moved ", before - g.inputs.size(), " initializers out of the graph inputs"));
}

Changes prepare_for_quantization(ir::Model& model) {
  Changes changes;
  ir::Graph& g = model.graph;
  if (model.ir_version >= 4) remove_initializers_from_inputs(g, changes);
  remove_noops(g, changes);
  ir::debug_verify(g);
  fold_constants(model, changes);
  ir::debug_verify(g);
  fold_batchnorm(g, changes);
  ir::debug_verify(g);
  merge_constant_scales(g, changes);
  ir::debug_verify(g);
  fold_scale_into_conv(g, changes);
  ir::debug_verify(g);
  fold_shift_into_hardswish_conv(g, changes);
  ir::debug_verify(g);
  fold_pad_into_conv(g, changes);
  ir::debug_verify(g);
  fold_space_to_depth_into_conv(g, changes);
  ir::debug_verify(g);
  remove_dead_code(g, changes);
  ir::debug_verify(g);
  return changes;
}

}  // namespace ptq::passes
