// Summary counts of a model: nodes, op histogram, parameters (what `quantize inspect` prints).
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "ptq/ir/model.h"

namespace ptq::ir {

struct GraphStats {
  size_t node_count = 0;                      // top-level nodes
  std::map<std::string, size_t> op_histogram; // top-level op types (domain-qualified if custom)
  size_t subgraph_node_count = 0;             // nodes inside If/Loop/Scan bodies, all depths
  std::map<std::string, size_t> subgraph_op_histogram;
  size_t parameter_count = 0;  // elements of initializers and Constant tensors, all graphs
  size_t parameter_bytes = 0;
  size_t initializer_count = 0;
  size_t constant_node_count = 0;
};

GraphStats graph_stats(const Graph& graph);

// "Conv" for the default domain, "com.microsoft.QLinearAdd" otherwise.
std::string qualified_op(const Node& node);

}  // namespace ptq::ir
