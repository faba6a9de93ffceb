// Node attribute accessors and labels.
#include "ptq/ir/node.h"

#include "ptq/core/error.h"

namespace ptq::ir {

const Attribute* Node::attr(const std::string& n) const {
  for (const Attribute& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

Attribute* Node::attr(const std::string& n) {
  for (Attribute& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

namespace {
const Attribute* typed(const Node& node, const std::string& n, AttrType type) {
  const Attribute* a = node.attr(n);
  if (!a) return nullptr;
  PTQ_CHECK(a->type == type, ModelError, node.label(), ": attribute '", n, "' has type ",
            static_cast<int>(a->type), ", expected ", static_cast<int>(type));
  return a;
}
}  // namespace

int64_t Node::attr_int(const std::string& n, int64_t fallback) const {
  const Attribute* a = typed(*this, n, AttrType::kInt);
  return a ? a->i : fallback;
}

float Node::attr_float(const std::string& n, float fallback) const {
  const Attribute* a = typed(*this, n, AttrType::kFloat);
  return a ? a->f : fallback;
}

std::string Node::attr_string(const std::string& n, const std::string& fallback) const {
  const Attribute* a = typed(*this, n, AttrType::kString);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& n, std::vector<int64_t> fallback) const {
  const Attribute* a = typed(*this, n, AttrType::kInts);
  return a ? a->ints : fallback;
}

std::vector<float> Node::attr_floats(const std::string& n, std::vector<float> fallback) const {
  const Attribute* a = typed(*this, n, AttrType::kFloats);
  return a ? a->floats : fallback;
}

void Node::set_attr(Attribute a) {
  if (Attribute* existing = attr(a.name)) {
    *existing = std::move(a);
  } else {
    attributes.push_back(std::move(a));
  }
}

std::string Node::label() const {
  std::string n = name.empty() ? "#" + std::to_string(id) : "'" + name + "'";
  return "node " + n + " (" + op_type + ")";
}

Attribute Attribute::make_int(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kInt;
  a.i = v;
  return a;
}

Attribute Attribute::make_float(std::string name, float v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kFloat;
  a.f = v;
  return a;
}

Attribute Attribute::make_string(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kString;
  a.s = std::move(v);
  return a;
}

Attribute Attribute::make_ints(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kInts;
  a.ints = std::move(v);
  return a;
}

Attribute Attribute::make_floats(std::string name, std::vector<float> v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kFloats;
  a.floats = std::move(v);
  return a;
}

Attribute Attribute::make_tensor(std::string name, Tensor v) {
  Attribute a;
  a.name = std::move(name);
  a.type = AttrType::kTensor;
  a.t = std::make_shared<Tensor>(std::move(v));
  return a;
}

}  // namespace ptq::ir
