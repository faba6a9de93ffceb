// Deterministic topological order (Kahn's algorithm, smallest ready id first).
#include <functional>
#include <queue>

#include "ptq/core/error.h"
#include "ptq/ir/graph.h"

namespace ptq::ir {

std::vector<NodeId> Graph::topological_order() const {
  const size_t n = nodes_.size();
  std::vector<int32_t> pending(n, 0);
  std::vector<std::vector<NodeId>> consumers(n);
  size_t alive = 0;
  for (const Node& node : nodes_) {
    if (!node.alive) continue;
    ++alive;
    std::vector<ValueId> deps = node.inputs;
    const std::vector<ValueId> implicit = implicit_inputs(node.id);
    deps.insert(deps.end(), implicit.begin(), implicit.end());
    for (ValueId v : deps) {
      if (v == kNone) continue;
      NodeId p = value(v).producer;
      if (p == kNone) continue;
      ++pending[static_cast<size_t>(node.id)];
      consumers[static_cast<size_t>(p)].push_back(node.id);
    }
  }
  std::priority_queue<NodeId, std::vector<NodeId>, std::greater<NodeId>> ready;
  for (const Node& node : nodes_)
    if (node.alive && pending[static_cast<size_t>(node.id)] == 0) ready.push(node.id);
  std::vector<NodeId> order;
  order.reserve(alive);
  while (!ready.empty()) {
    NodeId id = ready.top();
    ready.pop();
    order.push_back(id);
    for (NodeId c : consumers[static_cast<size_t>(id)])
      if (--pending[static_cast<size_t>(c)] == 0) ready.push(c);
  }
  if (order.size() != alive) {
    for (const Node& node : nodes_)
      if (node.alive && pending[static_cast<size_t>(node.id)] > 0)
        throw ModelError(str_cat("the graph has a cycle through ", node.label()));
  }
  return order;
}

}  // namespace ptq::ir
