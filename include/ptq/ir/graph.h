// The graph: owns nodes and values by stable integer id and keeps producer/use links consistent.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "ptq/ir/node.h"
#include "ptq/ir/value.h"

namespace ptq::ir {

class Graph {
 public:
  std::string name;
  std::string doc_string;
  // Graph inputs in model order. IR < 4 models also list initializers here; those keep
  // kind kInitializer (they have a default value), so runtime_inputs() skips them.
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  std::vector<ValueId> initializers;  // in model order
  std::vector<ValueId> value_info;    // values with a value_info entry, in model order
  std::vector<std::string> sparse_initializers;      // serialized SparseTensorProto, untouched
  std::vector<std::string> quantization_annotation;  // serialized TensorAnnotation, untouched
  std::string unknown_fields;  // protobuf fields this build does not know, kept for round trips

  // ---- lookup -------------------------------------------------------------------------------
  const Node& node(NodeId id) const { return nodes_.at(static_cast<size_t>(id)); }
  Node& node(NodeId id) { return nodes_.at(static_cast<size_t>(id)); }
  const Value& value(ValueId id) const { return values_.at(static_cast<size_t>(id)); }
  Value& value(ValueId id) { return values_.at(static_cast<size_t>(id)); }
  // Live nodes / values in insertion order (ids never change or get reused).
  std::vector<NodeId> node_ids() const;
  std::vector<ValueId> value_ids() const;
  size_t num_nodes() const;
  size_t id_bound_nodes() const { return nodes_.size(); }
  size_t id_bound_values() const { return values_.size(); }
  ValueId find(const std::string& name) const;  // kNone when absent
  bool is_input(ValueId id) const;   // listed in `inputs`
  bool is_output(ValueId id) const;  // listed in `outputs`
  // Inputs that must be fed at run time (graph inputs that are not initializers).
  std::vector<ValueId> runtime_inputs() const;
  // The constant tensor of a value (initializer or Constant node output), or nullptr.
  const Tensor* constant(ValueId id) const;
  // Producer node of a value, or nullptr for inputs, initializers and outer-scope values.
  const Node* producer(ValueId id) const;

  // ---- construction ---------------------------------------------------------------------------
  // Throws ModelError when the name is already taken (values are SSA: one name, one value).
  ValueId add_value(std::string name, ValueKind kind);
  ValueId add_input(std::string name, TypeInfo type);
  ValueId add_initializer(std::string name, Tensor tensor);
  // Adds a node whose outputs are existing values without a producer; links inputs' uses.
  NodeId add_node(Node node);
  // Convenience: creates the output values by name (an empty name means an omitted output).
  NodeId add_node(std::string op_type, std::vector<ValueId> inputs,
                  std::vector<std::string> output_names, std::vector<Attribute> attributes = {},
                  std::string name = {}, std::string domain = {});
  // A name not used yet in this graph, derived from `base`.
  std::string unique_name(const std::string& base) const;

  // ---- mutation -------------------------------------------------------------------------------
  void set_node_input(NodeId node, int32_t slot, ValueId value);
  // Redirects every node input reading `from` to `to`. Graph outputs are not touched, so
  // output names stay as the user had them; passes that replace an output value rename.
  void replace_all_uses(ValueId from, ValueId to);
  // Removes a node and its output values; the outputs must be unused and not graph outputs.
  void remove_node(NodeId node);
  // Removes a value that has no producer node and no uses (e.g. a dead initializer).
  void remove_value(ValueId value);
  void rename_value(ValueId value, std::string new_name);
  // Makes `value` an initializer holding `tensor` (it must have no producer).
  void set_initializer(ValueId value, Tensor tensor);
  // Recomputes Value::constant for the outputs of Constant nodes (after editing their attributes).
  void refresh_constant(NodeId constant_node);

  // ---- ordering and scopes --------------------------------------------------------------------
  // Deterministic topological order: Kahn's algorithm taking the smallest ready node id first,
  // so a graph that is already sorted keeps its order. Throws ModelError on a cycle.
  std::vector<NodeId> topological_order() const;
  // Values of this graph that a node's subgraphs read from the enclosing scope.
  std::vector<ValueId> implicit_inputs(NodeId node) const;
  // Names this graph (with its nested subgraphs) reads from enclosing scopes.
  std::vector<std::string> captured_names() const;
  // Live nodes that had subgraph attributes when added (If/Loop/Scan), in id order: passes ask
  // "is this value captured?" per value, and scanning every node each time was quadratic.
  const std::set<NodeId>& control_flow_nodes() const { return control_flow_; }
  // Subgraph attributes of a node (If branches, Loop/Scan bodies).
  static std::vector<const Graph*> subgraphs(const Node& node);

 private:
  void remove_use(ValueId v, Use use);
  std::vector<Node> nodes_;
  std::vector<Value> values_;
  std::unordered_map<std::string, ValueId> by_name_;
  // unique_name's next suffix to try per base: scanning from _1 every time was quadratic when
  // thousands of nodes share one constant (10k Adds: 46 s).
  mutable std::unordered_map<std::string, size_t> next_suffix_;
  std::set<NodeId> control_flow_;
};

}  // namespace ptq::ir
