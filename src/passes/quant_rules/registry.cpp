// The rules table (from rules.inc), passthrough ops, and the helpers rules share.
#include <cmath>
#include <cstring>

#include "rule.h"

namespace ptq::passes {

#define PTQ_QUANT_RULE(fn, ops, pattern) \
  std::string fn(const RuleContext& ctx, const ir::Node& n, NodeQuant& q);
#include "rules.inc"
#undef PTQ_QUANT_RULE

namespace {

constexpr QuantRule kRules[] = {
#define PTQ_QUANT_RULE(fn, ops, pattern) {#fn, ops, pattern, fn},
#include "rules.inc"
#undef PTQ_QUANT_RULE
};

// Ops whose output values are input values rearranged (or, for Resize, interpolated within the
// input's range): the output shares the input's scale, so ORT drops their Q/DQ (DropQDQ rule).
// DropQDQ needs equal scale and zero point on both sides, which sharing guarantees.
// `preserves_values`: the output holds exactly the input's values, reordered, so one grid serves
// both sides even where a quantized node already reads the output; the others keep a part of the
// values or interpolate, and their outputs keep their own range there.
struct Passthrough {
  const char* op_type;
  bool preserves_values;
};
constexpr Passthrough kPassthrough[] = {
    {"Reshape", true},
    {"Transpose", true},
    {"Flatten", true},
    {"Squeeze", true},
    {"Unsqueeze", true},
    {"Gather", false},
    {"Slice", false},
    {"Split", false},
    {"Resize", false},
};

const Passthrough* find_passthrough(const std::string& op_type) {
  for (const Passthrough& p : kPassthrough)
    if (op_type == p.op_type) return &p;
  return nullptr;
}

bool in_list(const char* list, const std::string& op) {
  const char* p = list;
  while (*p) {
    const char* end = std::strchr(p, ',');
    const size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
    if (op.size() == len && op.compare(0, len, p, len) == 0) return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

}  // namespace

bool RuleContext::is_float_activation(ir::ValueId v) const {
  if (v == ir::kNone) return false;
  const ir::Value& val = graph.value(v);
  if (val.is_constant()) return false;
  if (val.type.known && val.type.dtype != DType::kUndefined && val.type.dtype != DType::kFloat)
    return false;
  // Calibration observed every float tensor the model computes, so having a range is the
  // reliable test (value_info types are often missing for intermediates).
  return ranges.count(val.name) > 0;
}

bool RuleContext::is_float_constant(ir::ValueId v) const {
  if (v == ir::kNone) return false;
  const Tensor* t = graph.constant(v);
  if (!t || t->dtype() != DType::kFloat) return false;
  // Weights with inf/NaN or beyond 1e30 would get inf or NaN scales: such nodes stay fp32.
  // No early exit: the loop vectorizes (each plan checks every weight of the model, and the
  // search plans dozens of models).
  const float* p = t->data<float>();
  bool finite = true;
  for (size_t i = 0; i < t->numel(); ++i) finite &= std::fabs(p[i]) <= 1e30f;
  return finite;
}

std::span<const QuantRule> quant_rules() { return kRules; }

const QuantRule* find_rule(const std::string& op_type) {
  for (const QuantRule& r : kRules)
    if (in_list(r.op_types, op_type)) return &r;
  return nullptr;
}

bool is_passthrough(const std::string& op_type) { return find_passthrough(op_type) != nullptr; }

bool preserves_values(const std::string& op_type) {
  const Passthrough* p = find_passthrough(op_type);
  return p && p->preserves_values;
}

}  // namespace ptq::passes
