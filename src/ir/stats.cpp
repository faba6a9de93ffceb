// Node, op and parameter counts over a graph and its subgraphs.
#include "ptq/ir/stats.h"

namespace ptq::ir {
namespace {

void count_params(const Graph& g, GraphStats& s) {
  for (ValueId v : g.initializers) {
    s.parameter_count += g.value(v).constant->numel();
    s.parameter_bytes += g.value(v).constant->nbytes();
    ++s.initializer_count;
  }
  for (NodeId id : g.node_ids()) {
    const Node& n = g.node(id);
    if (n.op_type == "Constant" && n.is_default_domain()) {
      ++s.constant_node_count;
      if (const Tensor* t = g.constant(n.outputs.empty() ? kNone : n.outputs[0])) {
        s.parameter_count += t->numel();
        s.parameter_bytes += t->nbytes();
      }
    }
  }
}

void count_subgraphs(const Graph& g, GraphStats& s) {
  for (NodeId id : g.node_ids()) {
    for (const Graph* sub : Graph::subgraphs(g.node(id))) {
      for (NodeId sid : sub->node_ids()) {
        ++s.subgraph_node_count;
        ++s.subgraph_op_histogram[qualified_op(sub->node(sid))];
      }
      count_params(*sub, s);
      count_subgraphs(*sub, s);
    }
  }
}

}  // namespace

std::string qualified_op(const Node& n) {
  return n.is_default_domain() ? n.op_type : n.domain + "." + n.op_type;
}

GraphStats graph_stats(const Graph& g) {
  GraphStats s;
  for (NodeId id : g.node_ids()) {
    ++s.node_count;
    ++s.op_histogram[qualified_op(g.node(id))];
  }
  count_params(g, s);
  count_subgraphs(g, s);
  return s;
}

}  // namespace ptq::ir
