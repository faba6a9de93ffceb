// Finds mask-like tensors (attention masks made of finfo.min or -10000) that must stay fp32.
#include "ptq/passes/mask_paths.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "ptq/core/error.h"

namespace ptq::passes {
namespace {

// Ops that carry a huge operand value into their output unchanged or scaled: an additive mask
// flows through these from the constant to the scores it is added to. The walk stops at any
// other op, in particular at Softmax, where the mask has done its work (exp(-3.4e38) = 0).
bool carries_values(const std::string& op) {
  static const std::set<std::string> kCarry = {
      "Where", "Add", "Sub", "Mul", "Div", "Neg", "Min", "Max", "Expand", "Tile", "Concat", "Cast",
      "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Transpose", "Slice", "Gather", "Identity"};
  return kCarry.count(op) > 0;
}

bool is_float(const ir::Value& v) {
  return !v.type.known || v.type.dtype == DType::kUndefined || v.type.dtype == DType::kFloat;
}

// The largest magnitude of a float constant, 0 for anything else (inf and NaN count as huge).
float max_magnitude(const Tensor* t) {
  if (!t || t->dtype() != DType::kFloat) return 0.f;
  float m = 0.f;
  const float* p = t->data<float>();
  for (size_t i = 0; i < t->numel(); ++i) {
    const float a = std::fabs(p[i]);
    if (!(a <= m)) m = std::isnan(a) ? INFINITY : a;
  }
  return m;
}

}  // namespace

std::vector<MaskTensor> find_mask_paths(const ir::Graph& g, const std::map<std::string, quant::Range>& ranges) {
  std::map<ir::ValueId, MaskTensor> found;
  const auto mark = [&](ir::ValueId v, ir::ValueId origin, std::string why) {
    if (v == ir::kNone || !is_float(g.value(v)) || found.count(v)) return;
    found.emplace(v, MaskTensor{v, origin == ir::kNone ? v : origin, std::move(why)});
  };
  // One pass in topological order: a tensor is carried from a mask-like input first, else a seed.
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (n.is_default_domain() && carries_values(n.op_type)) {
      for (size_t slot = 0; slot < n.inputs.size(); ++slot) {
        auto it = found.find(n.inputs[slot]);
        if (it == found.end() || (n.op_type == "Where" && slot == 0)) continue;  // a condition selects
        const ir::ValueId origin = it->second.origin;
        for (ir::ValueId out : n.outputs)
          mark(out, origin, str_cat("computed from mask-like '", g.value(origin).name, "'"));
        break;
      }
      // Seeds from constants: a huge constant operand (Where(m, 0, -3.4e38), (1 - m) * -10000).
      for (ir::ValueId in : n.inputs) {
        const float m = max_magnitude(g.constant(in));
        if (m < kMaskMagnitude) continue;
        for (ir::ValueId out : n.outputs)
          mark(out, ir::kNone,
               str_cat("computed with constant '", g.value(in).name, "' holding ",
                       m == INFINITY ? std::string("inf or NaN") : str_cat(m), " (an attention-mask pattern)"));
        break;
      }
    }
    // Seeds from calibration: whatever the op, a computed tensor this large is no int8 tensor.
    for (ir::ValueId out : n.outputs) {
      if (out == ir::kNone) continue;
      auto it = ranges.find(g.value(out).name);
      if (it == ranges.end()) continue;
      const float m = std::max(std::fabs(it->second.min), std::fabs(it->second.max));
      if (!(m < kMaskMagnitude))
        mark(out, ir::kNone,
             str_cat("calibrated range [", it->second.min, ", ", it->second.max, "] reaches |x| >= ", kMaskMagnitude));
    }
  }
  std::vector<MaskTensor> out;
  out.reserve(found.size());
  for (auto& [v, m] : found) out.push_back(std::move(m));
  return out;
}

}  // namespace ptq::passes
