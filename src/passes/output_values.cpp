// Finds the tensors that reach a graph output unchanged.
#include "ptq/passes/output_values.h"

#include "quant_rules/rule.h"

namespace ptq::passes {

std::set<ir::ValueId> output_values(const ir::Graph& graph) {
  std::set<ir::ValueId> out(graph.outputs.begin(), graph.outputs.end());
  // Backwards from the outputs: a value-moving node with an output in the set puts its data input there.
  const std::vector<ir::NodeId> order = graph.topological_order();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const ir::Node& n = graph.node(*it);
    if (!n.is_default_domain() || n.inputs.empty() || (n.op_type != "Concat" && n.op_type != "Identity" &&
                                                         !is_passthrough(n.op_type)))
      continue;
    bool feeds = false;
    for (ir::ValueId v : n.outputs) feeds = feeds || (v != ir::kNone && out.count(v));
    if (!feeds) continue;
    // Concat moves every input; the others move their first (the rest are shapes and indices).
    const size_t moved = n.op_type == "Concat" ? n.inputs.size() : 1;
    for (size_t i = 0; i < moved; ++i)
      if (n.inputs[i] != ir::kNone && !graph.value(n.inputs[i]).is_constant()) out.insert(n.inputs[i]);
  }
  return out;
}

}  // namespace ptq::passes
