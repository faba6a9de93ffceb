// A node: an ONNX operator application with inputs, outputs and attributes.
#pragma once

#include <string>
#include <vector>

#include "ptq/ir/attribute.h"
#include "ptq/ir/value.h"

namespace ptq::ir {

struct Node {
  NodeId id = kNone;
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain ("ai.onnx")
  std::string doc_string;
  std::vector<ValueId> inputs;   // kNone for an omitted optional input
  std::vector<ValueId> outputs;  // kNone for an omitted optional output
  std::vector<Attribute> attributes;  // in model order, for determinism
  std::string unknown_fields;  // protobuf fields this build does not know (e.g. newer metadata)
  bool alive = true;

  const Attribute* attr(const std::string& name) const;
  Attribute* attr(const std::string& name);
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  std::string attr_string(const std::string& name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& name, std::vector<float> fallback = {}) const;
  void set_attr(Attribute a);  // replaces an attribute of the same name, or appends

  // "node 'conv1' (Conv)" for messages; unnamed nodes show their id.
  std::string label() const;
  bool is_default_domain() const { return domain.empty() || domain == "ai.onnx"; }
};

}  // namespace ptq::ir
