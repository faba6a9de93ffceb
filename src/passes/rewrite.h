// Internal: small graph rewrites shared by passes (bypassing a node while keeping output names).
#pragma once

#include <string>
#include <vector>

#include "ptq/ir/graph.h"

namespace ptq::passes {

// Read by name from inside some node's subgraph (If/Loop bodies): must keep its name.
bool is_captured(const ir::Graph& g, ir::ValueId v);
// Whether bypass(node, keep, drop) is allowed without renaming a graph input, another graph
// output, or a captured value.
bool can_bypass(const ir::Graph& g, ir::ValueId keep, ir::ValueId drop);
// Removes `node`, whose output `drop` is replaced by `keep` everywhere; if `drop` was a graph
// output, `keep` takes its name and type so the model's outputs keep their names.
void bypass(ir::Graph& g, ir::NodeId node, ir::ValueId keep, ir::ValueId drop);
// Float tensor `t` with every element of channel c (axis 0) multiplied (or divided) by f[c].
Tensor scaled_rows(const Tensor& t, const std::vector<float>& f, bool divide);
// A Mul or Div of two inputs and one output as opset 7 and later write it (no broadcast attributes).
bool binary_mul_or_div(const ir::Node& n);
// Input `slot` of `n` when it is a float constant, else nullptr.
const Tensor* float_constant(const ir::Graph& g, const ir::Node& n, size_t slot);
// Whether input `slot` of `n` is a float scalar constant equal to `v` (or, when the node has the
// attribute `attr`, as Clip's min/max before opset 11, that attribute).
bool scalar_input_is(const ir::Graph& g, const ir::Node& n, size_t slot, const char* attr, float v);
// Relu, or Clip whose lower bound is a constant 0 (input since opset 11, attribute before): what
// a Q whose range starts at 0 clamps by itself.
bool clamps_at_zero(const ir::Graph& g, const ir::Node& n);
// Replaces input `slot` of node `id` with a new initializer holding `t`, named after the old
// constant plus `suffix`; drops the old constant when nothing else reads it.
void replace_constant(ir::Graph& g, ir::NodeId id, size_t slot, const std::string& suffix, Tensor t);

}  // namespace ptq::passes
