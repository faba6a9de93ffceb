// Folds a space-to-depth written as strided Slices and a Concat (YOLOv5's and YOLOX's Focus) into the Conv reading it.
#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "ptq/core/error.h"
#include "ptq/passes/prepare.h"
#include "rewrite.h"

namespace ptq::passes {
namespace {

// Slice's constant int inputs (starts, ends, axes, steps) as int64, or nullopt.
std::optional<std::vector<int64_t>> int_constant(const ir::Graph& g, ir::ValueId v) {
  const Tensor* t = v == ir::kNone ? nullptr : g.constant(v);
  if (!t) return std::nullopt;
  std::vector<int64_t> out(t->numel());
  if (t->dtype() == DType::kInt64) std::copy_n(t->data<int64_t>(), t->numel(), out.begin());
  else if (t->dtype() == DType::kInt32) std::copy_n(t->data<int32_t>(), t->numel(), out.begin());
  else return std::nullopt;
  return out;
}

// The static size of axis `axis` of value `v`, or -1.
int64_t static_dim(const ir::Graph& g, ir::ValueId v, size_t axis) {
  const auto& shape = g.value(v).type.shape;
  if (!shape || shape->size() <= axis || !(*shape)[axis].is_static()) return -1;
  return (*shape)[axis].value;
}

// One Concat input traced back through its Slices to the tensor they cut: the phase (start) and
// step on the two spatial axes of a rank-4 tensor, and the Slices passed.
struct Phase {
  ir::ValueId source = ir::kNone;
  int64_t start[2] = {0, 0}, step[2] = {1, 1};
  std::vector<ir::NodeId> slices;
};

// Follows Slice nodes (opset 10 and later: constant inputs) from `v` up while each output has
// this one reader. Every Slice must cut axis 2 or 3 only, from a start below its step to the end.
std::optional<Phase> trace_phase(const ir::Graph& g, ir::ValueId v) {
  Phase p;
  bool seen[2] = {false, false};
  while (true) {
    const ir::Node* n = g.producer(v);
    if (!n || n->op_type != "Slice" || !n->is_default_domain()) break;
    if (g.value(v).uses.size() != 1 || g.is_output(v) || is_captured(g, v)) return std::nullopt;
    if (n->inputs.size() < 3) return std::nullopt;  // opset 1-9 (attributes, no steps): not this pattern
    const auto starts = int_constant(g, n->inputs[1]), ends = int_constant(g, n->inputs[2]);
    const bool has_axes = n->inputs.size() > 3 && n->inputs[3] != ir::kNone;
    const bool has_steps = n->inputs.size() > 4 && n->inputs[4] != ir::kNone;
    const auto axes = has_axes ? int_constant(g, n->inputs[3]) : std::nullopt;
    const auto steps = has_steps ? int_constant(g, n->inputs[4]) : std::nullopt;
    if (!starts || !ends || starts->size() != ends->size() ||
        (has_axes && (!axes || axes->size() != starts->size())) ||
        (has_steps && (!steps || steps->size() != starts->size())))
      return std::nullopt;
    const ir::ValueId x = n->inputs[0];
    for (size_t i = 0; i < starts->size(); ++i) {
      int64_t axis = axes ? (*axes)[i] : static_cast<int64_t>(i);
      if (axis < 0) axis += 4;
      const int64_t step = steps ? (*steps)[i] : 1;
      if (axis != 2 && axis != 3) return std::nullopt;  // batch or channels cut: not a space-to-depth
      const size_t a = static_cast<size_t>(axis - 2);
      const int64_t start = (*starts)[i], end = (*ends)[i], dim = static_dim(g, x, static_cast<size_t>(axis));
      // To the end of the axis: past a known size, or "INT_MAX" where the size is not known.
      const bool to_end = dim >= 0 ? end >= dim : end >= (int64_t{1} << 31) - 1;
      if (seen[a] || step < 2 || start < 0 || start >= step || !to_end) return std::nullopt;
      seen[a] = true;
      p.start[a] = start;
      p.step[a] = step;
    }
    p.slices.push_back(n->id);
    v = x;
  }
  if (p.slices.empty()) return std::nullopt;
  p.source = v;
  return p;
}

}  // namespace

void fold_space_to_depth_into_conv(ir::Graph& g, Changes& changes) {
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& cat = g.node(id);
    if (!cat.alive || cat.op_type != "Concat" || !cat.is_default_domain() || cat.inputs.size() < 2) continue;
    const int64_t axis = cat.attr_int("axis", 0);
    if (axis != 1 && axis != -3) continue;
    const ir::ValueId y = cat.outputs[0];
    if (g.value(y).uses.size() != 1 || g.is_output(y) || is_captured(g, y)) continue;
    const ir::Node& conv = g.node(g.value(y).uses[0].node);
    if (conv.op_type != "Conv" || !conv.is_default_domain() || g.value(y).uses[0].slot != 0) continue;
    if (conv.attr_int("group", 1) != 1 || conv.attr_string("auto_pad", "NOTSET") != "NOTSET") continue;
    const std::vector<int64_t> dil = conv.attr_ints("dilations", {1, 1});
    if (dil.size() != 2 || dil[0] != 1 || dil[1] != 1) continue;
    const Tensor* w = conv.inputs.size() > 1 ? g.constant(conv.inputs[1]) : nullptr;
    if (!w || w->dtype() != DType::kFloat || w->dims().size() != 4) continue;

    // Every input one phase of the same tensor with the same steps, each phase once.
    std::vector<Phase> phases;
    for (ir::ValueId in : cat.inputs) {
      auto p = in == ir::kNone ? std::nullopt : trace_phase(g, in);
      if (!p) break;
      phases.push_back(std::move(*p));
    }
    if (phases.size() != cat.inputs.size()) continue;
    const ir::ValueId x = phases[0].source;
    const int64_t sh = phases[0].step[0], sw = phases[0].step[1];
    std::map<std::pair<int64_t, int64_t>, size_t> block;  // phase -> its position in the Concat
    const auto count = static_cast<int64_t>(phases.size());
    bool ok = sh <= count && sw <= count && sh * sw == count;  // bounded first: steps can be anything
    for (size_t i = 0; ok && i < phases.size(); ++i) {
      const Phase& p = phases[i];
      ok = p.source == x && p.step[0] == sh && p.step[1] == sw &&
           block.emplace(std::make_pair(p.start[0], p.start[1]), i).second;
    }
    if (!ok) continue;
    // Sizes that a step does not divide give the phases different sizes (the Concat fails then).
    const int64_t h = static_dim(g, x, 2), wd = static_dim(g, x, 3);
    if ((h >= 0 && h % sh) || (wd >= 0 && wd % sw)) continue;
    const Dims& wdims = w->dims();
    const int64_t m = wdims[0], kh = wdims[2], kw = wdims[3];
    if (wdims[1] % count) continue;
    const int64_t c = wdims[1] / count;
    std::vector<int64_t> pads = conv.attr_ints("pads", {0, 0, 0, 0}), strides = conv.attr_ints("strides", {1, 1});
    if (pads.size() != 4 || strides.size() != 2) continue;

    // Output (oy, ox) of the Conv reads the phase map's rows oy·t − p + ky, which are x's rows
    // sh·(oy·t − p + ky) + bh: a Conv on x with stride sh·t, pads sh·p and kernel row sh·ky + bh.
    // Rows outside the phase map are outside x, zero either way.
    Tensor w2 = Tensor::zeros(DType::kFloat, {m, c, sh * kh, sw * kw});
    const float* src = w->data<float>();
    float* dst = w2.mutable_data<float>();
    for (const auto& [phase, blk] : block)
      for (int64_t o = 0; o < m; ++o)
        for (int64_t ci = 0; ci < c; ++ci)
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx)
              dst[((o * c + ci) * sh * kh + sh * ky + phase.first) * sw * kw + sw * kx + phase.second] =
                  src[((o * wdims[1] + static_cast<int64_t>(blk) * c + ci) * kh + ky) * kw + kx];
    for (size_t i = 0; i < 2; ++i) {
      const int64_t s = i == 0 ? sh : sw;
      pads[i] *= s;
      pads[i + 2] *= s;
      strides[i] *= s;
    }
    const ir::NodeId conv_id = conv.id;
    const std::string label = str_cat("space-to-depth ", cat.label(), " (", phases.size(), " phases) into ",
                                      conv.label(), " (", sh * kh, "x", sw * kw, " kernel, stride ", strides[0], "x",
                                      strides[1], ")");
    std::vector<ir::NodeId> slices;
    for (const Phase& p : phases) slices.insert(slices.end(), p.slices.begin(), p.slices.end());
    replace_constant(g, conv_id, 1, "_space_to_depth", std::move(w2));
    g.set_node_input(conv_id, 0, x);
    ir::Node& cv = g.node(conv_id);
    cv.set_attr(ir::Attribute::make_ints("kernel_shape", {sh * kh, sw * kw}));
    cv.set_attr(ir::Attribute::make_ints("pads", pads));
    cv.set_attr(ir::Attribute::make_ints("strides", strides));
    g.remove_node(id);
    for (ir::NodeId s : slices) g.remove_node(s);  // each slice chain from the Concat upwards
    changes.push_back(str_cat("folded ", label));
  }
}

}  // namespace ptq::passes
