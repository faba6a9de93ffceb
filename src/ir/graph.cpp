// Graph construction and mutation that keeps producer and use links consistent.
#include "ptq/ir/graph.h"

#include <algorithm>

#include "constant_node.h"
#include "ptq/core/error.h"

namespace ptq::ir {

std::vector<NodeId> Graph::node_ids() const {
  std::vector<NodeId> ids;
  ids.reserve(nodes_.size());
  for (const Node& n : nodes_)
    if (n.alive) ids.push_back(n.id);
  return ids;
}

std::vector<ValueId> Graph::value_ids() const {
  std::vector<ValueId> ids;
  ids.reserve(values_.size());
  for (const Value& v : values_)
    if (v.alive) ids.push_back(v.id);
  return ids;
}

size_t Graph::num_nodes() const {
  return static_cast<size_t>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const Node& n) { return n.alive; }));
}

ValueId Graph::find(const std::string& n) const {
  auto it = by_name_.find(n);
  return it == by_name_.end() ? kNone : it->second;
}

bool Graph::is_input(ValueId id) const { return std::find(inputs.begin(), inputs.end(), id) != inputs.end(); }

bool Graph::is_output(ValueId id) const { return std::find(outputs.begin(), outputs.end(), id) != outputs.end(); }

std::vector<ValueId> Graph::runtime_inputs() const {
  std::vector<ValueId> r;
  for (ValueId v : inputs)
    if (value(v).kind == ValueKind::kGraphInput) r.push_back(v);
  return r;
}

const Tensor* Graph::constant(ValueId id) const {
  if (id == kNone) return nullptr;
  return value(id).constant.get();
}

const Node* Graph::producer(ValueId id) const {
  if (id == kNone) return nullptr;
  NodeId p = value(id).producer;
  return p == kNone ? nullptr : &node(p);
}

ValueId Graph::add_value(std::string n, ValueKind kind) {
  PTQ_CHECK(!n.empty(), ModelError, "a value needs a name");
  PTQ_CHECK(by_name_.find(n) == by_name_.end(), ModelError, "tensor name '", n,
            "' is defined more than once");
  Value v;
  v.id = static_cast<ValueId>(values_.size());
  v.name = std::move(n);
  v.kind = kind;
  by_name_.emplace(v.name, v.id);
  values_.push_back(std::move(v));
  return values_.back().id;
}

ValueId Graph::add_input(std::string n, TypeInfo type) {
  ValueId id = add_value(std::move(n), ValueKind::kGraphInput);
  value(id).type = std::move(type);
  inputs.push_back(id);
  return id;
}

ValueId Graph::add_initializer(std::string n, Tensor tensor) {
  ValueId id = add_value(std::move(n), ValueKind::kInitializer);
  set_initializer(id, std::move(tensor));
  initializers.push_back(id);
  return id;
}

void Graph::set_initializer(ValueId id, Tensor tensor) {
  Value& v = value(id);
  PTQ_ASSERT(v.producer == kNone, "value '", v.name, "' has a producer");
  if (v.kind != ValueKind::kInitializer) {
    v.kind = ValueKind::kInitializer;
    if (std::find(initializers.begin(), initializers.end(), id) == initializers.end())
      initializers.push_back(id);
  }
  v.type.dtype = tensor.dtype();
  v.type.known = true;
  Shape s;
  for (int64_t d : tensor.dims()) s.push_back(Dim{d, {}});
  v.type.shape = std::move(s);
  v.constant = std::make_shared<const Tensor>(std::move(tensor));
}

NodeId Graph::add_node(Node n) {
  n.id = static_cast<NodeId>(nodes_.size());
  n.alive = true;
  for (size_t slot = 0; slot < n.outputs.size(); ++slot) {
    ValueId o = n.outputs[slot];
    if (o == kNone) continue;
    Value& v = value(o);
    PTQ_CHECK(v.producer == kNone && v.kind == ValueKind::kNodeOutput, ModelError, "tensor '",
              v.name, "' is produced by more than one node or is also an input or initializer");
    v.producer = n.id;
    v.producer_slot = static_cast<int32_t>(slot);
  }
  for (size_t slot = 0; slot < n.inputs.size(); ++slot)
    if (n.inputs[slot] != kNone) value(n.inputs[slot]).uses.push_back({n.id, static_cast<int32_t>(slot)});
  if (!subgraphs(n).empty()) control_flow_.insert(n.id);
  nodes_.push_back(std::move(n));
  if (nodes_.back().op_type == "Constant" && nodes_.back().is_default_domain())
    refresh_constant(nodes_.back().id);
  return nodes_.back().id;
}

NodeId Graph::add_node(std::string op_type, std::vector<ValueId> ins,
                       std::vector<std::string> output_names, std::vector<Attribute> attributes,
                       std::string n, std::string domain) {
  Node node;
  node.op_type = std::move(op_type);
  node.domain = std::move(domain);
  node.name = std::move(n);
  node.inputs = std::move(ins);
  node.attributes = std::move(attributes);
  for (std::string& o : output_names)
    node.outputs.push_back(o.empty() ? kNone : add_value(std::move(o), ValueKind::kNodeOutput));
  return add_node(std::move(node));
}

std::string Graph::unique_name(const std::string& base) const {
  if (find(base) == kNone) return base;
  size_t& next = next_suffix_[base];
  for (size_t i = std::max<size_t>(next, 1);; ++i) {
    std::string candidate = base + "_" + std::to_string(i);
    if (find(candidate) == kNone) {
      next = i;  // the caller usually takes it: the next call starts here
      return candidate;
    }
  }
}

void Graph::remove_use(ValueId v, Use use) {
  auto& uses = value(v).uses;
  auto it = std::find(uses.begin(), uses.end(), use);
  PTQ_ASSERT(it != uses.end(), "use list of '", value(v).name, "' out of sync");
  uses.erase(it);
}

void Graph::set_node_input(NodeId nid, int32_t slot, ValueId v) {
  Node& n = node(nid);
  if (slot >= static_cast<int32_t>(n.inputs.size())) n.inputs.resize(static_cast<size_t>(slot) + 1, kNone);
  ValueId old = n.inputs[static_cast<size_t>(slot)];
  if (old == v) return;
  if (old != kNone) remove_use(old, {nid, slot});
  n.inputs[static_cast<size_t>(slot)] = v;
  if (v != kNone) value(v).uses.push_back({nid, slot});
}

void Graph::replace_all_uses(ValueId from, ValueId to) {
  PTQ_ASSERT(from != to);
  std::vector<Use> uses = value(from).uses;
  for (const Use& u : uses) set_node_input(u.node, u.slot, to);
}

void Graph::remove_node(NodeId nid) {
  Node& n = node(nid);
  PTQ_ASSERT(n.alive, n.label(), " removed twice");
  for (ValueId o : n.outputs) {
    if (o == kNone) continue;
    PTQ_ASSERT(value(o).uses.empty(), n.label(), " output '", value(o).name, "' is still used");
    PTQ_ASSERT(std::find(outputs.begin(), outputs.end(), o) == outputs.end(), n.label(),
               " output '", value(o).name, "' is a graph output");
  }
  for (size_t slot = 0; slot < n.inputs.size(); ++slot)
    if (n.inputs[slot] != kNone) remove_use(n.inputs[slot], {nid, static_cast<int32_t>(slot)});
  for (ValueId o : n.outputs) {
    if (o == kNone) continue;
    Value& v = value(o);
    v.producer = kNone;
    remove_value(o);
  }
  n.alive = false;
  control_flow_.erase(nid);
  n.inputs.clear();
  n.outputs.clear();
}

void Graph::remove_value(ValueId id) {
  Value& v = value(id);
  PTQ_ASSERT(v.alive && v.uses.empty() && v.producer == kNone, "value '", v.name,
             "' is still connected");
  auto drop = [id](std::vector<ValueId>& list) {
    list.erase(std::remove(list.begin(), list.end(), id), list.end());
  };
  drop(inputs);
  drop(initializers);
  drop(value_info);
  PTQ_ASSERT(std::find(outputs.begin(), outputs.end(), id) == outputs.end(), "value '", v.name,
             "' is a graph output");
  by_name_.erase(v.name);
  v.alive = false;
  v.constant.reset();
}

void Graph::rename_value(ValueId id, std::string new_name) {
  Value& v = value(id);
  if (v.name == new_name) return;
  PTQ_CHECK(find(new_name) == kNone, ModelError, "tensor name '", new_name, "' is already used");
  by_name_.erase(v.name);
  v.name = std::move(new_name);
  by_name_.emplace(v.name, id);
}

void Graph::refresh_constant(NodeId nid) {
  const Node& n = node(nid);
  if (n.outputs.empty() || n.outputs[0] == kNone) return;
  Value& v = value(n.outputs[0]);
  v.constant = constant_node_tensor(n);
  if (v.constant) {
    v.type.dtype = v.constant->dtype();
    v.type.known = true;
    Shape s;
    for (int64_t d : v.constant->dims()) s.push_back(Dim{d, {}});
    v.type.shape = std::move(s);
  }
}

std::vector<const Graph*> Graph::subgraphs(const Node& n) {
  std::vector<const Graph*> r;
  for (const Attribute& a : n.attributes) {
    if (a.g) r.push_back(a.g.get());
    for (const auto& g : a.graphs) r.push_back(g.get());
  }
  return r;
}

std::vector<std::string> Graph::captured_names() const {
  std::vector<std::string> r;
  for (const Value& v : values_)
    if (v.alive && v.kind == ValueKind::kOuterScope) r.push_back(v.name);
  return r;
}

std::vector<ValueId> Graph::implicit_inputs(NodeId nid) const {
  std::vector<ValueId> r;
  for (const Graph* g : subgraphs(node(nid))) {
    for (const std::string& n : g->captured_names()) {
      ValueId v = find(n);
      PTQ_CHECK(v != kNone, ModelError, node(nid).label(), ": subgraph reads '", n,
                "', which no enclosing graph defines");
      if (std::find(r.begin(), r.end(), v) == r.end()) r.push_back(v);
    }
  }
  return r;
}

}  // namespace ptq::ir
