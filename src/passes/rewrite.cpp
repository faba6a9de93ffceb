// Node bypassing that keeps graph output names and subgraph captures intact.
#include "rewrite.h"

#include <algorithm>

namespace ptq::passes {

bool is_captured(const ir::Graph& g, ir::ValueId v) {
  for (ir::NodeId id : g.control_flow_nodes()) {
    const auto implicit = g.implicit_inputs(id);
    if (std::find(implicit.begin(), implicit.end(), v) != implicit.end()) return true;
  }
  return false;
}

bool can_bypass(const ir::Graph& g, ir::ValueId keep, ir::ValueId drop) {
  // Subgraphs read enclosing values by name; a value they capture must keep its name.
  if (is_captured(g, drop) || is_captured(g, keep)) return false;
  if (!g.is_output(drop)) return true;
  const ir::Value& k = g.value(keep);
  return k.kind == ir::ValueKind::kNodeOutput && !g.is_output(keep);
}

void bypass(ir::Graph& g, ir::NodeId node, ir::ValueId keep, ir::ValueId drop) {
  g.replace_all_uses(drop, keep);
  const bool output = g.is_output(drop);
  std::string name = g.value(drop).name;
  ir::TypeInfo type = g.value(drop).type;
  // Unlink `drop` from the outputs list before removing the node that produces it.
  if (output) std::replace(g.outputs.begin(), g.outputs.end(), drop, keep);
  g.remove_node(node);
  if (output) {
    g.rename_value(keep, std::move(name));
    g.value(keep).type = std::move(type);
  }
}

void replace_constant(ir::Graph& g, ir::NodeId id, size_t slot, const std::string& suffix, Tensor t) {
  const ir::ValueId old = g.node(id).inputs[slot];
  const ir::ValueId fresh = g.add_initializer(g.unique_name(g.value(old).name + suffix), std::move(t));
  g.set_node_input(id, static_cast<int32_t>(slot), fresh);
  if (!g.value(old).uses.empty()) return;
  if (const ir::Node* p = g.producer(old)) {
    if (p->outputs.size() == 1) g.remove_node(p->id);
  } else if (g.value(old).kind == ir::ValueKind::kInitializer && !g.is_input(old) && !g.is_output(old)) {
    g.remove_value(old);
  }
}

Tensor scaled_rows(const Tensor& t, const std::vector<float>& f, bool divide) {
  Tensor out = Tensor::from_bytes(t.dtype(), t.dims(), t.raw(), t.nbytes());
  float* p = out.mutable_data<float>();
  const size_t per = t.numel() / f.size();
  for (size_t c = 0; c < f.size(); ++c)
    for (size_t i = 0; i < per; ++i) p[c * per + i] = divide ? p[c * per + i] / f[c] : p[c * per + i] * f[c];
  return out;
}

bool binary_mul_or_div(const ir::Node& n) {
  return n.alive && n.is_default_domain() && (n.op_type == "Mul" || n.op_type == "Div") && n.inputs.size() == 2 &&
         n.outputs.size() == 1 && n.attributes.empty();  // (opset < 7 broadcast attributes)
}

const Tensor* float_constant(const ir::Graph& g, const ir::Node& n, size_t slot) {
  if (slot >= n.inputs.size() || n.inputs[slot] == ir::kNone) return nullptr;
  const Tensor* t = g.constant(n.inputs[slot]);
  return t && t->dtype() == DType::kFloat ? t : nullptr;
}

bool scalar_input_is(const ir::Graph& g, const ir::Node& n, size_t slot, const char* attr, float v) {
  if (const ir::Attribute* a = attr ? n.attr(attr) : nullptr) return a->f == v;
  const Tensor* t = float_constant(g, n, slot);
  return t && t->numel() == 1 && t->data<float>()[0] == v;
}

bool clamps_at_zero(const ir::Graph& g, const ir::Node& n) {
  if (!n.is_default_domain() || n.inputs.empty()) return false;
  if (n.op_type == "Relu") return true;
  return n.op_type == "Clip" && scalar_input_is(g, n, 1, "min", 0.f);
}

}  // namespace ptq::passes
