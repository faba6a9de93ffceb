// Structural invariants of the IR; tests and debug builds run verify() after every change.
#pragma once

#include "ptq/ir/model.h"

namespace ptq::ir {

// Throws InternalError naming the first broken invariant: dangling ids, use lists out of
// sync with node inputs, duplicate names, missing producers, cycles, unresolved outer-scope
// references (checked against the enclosing graphs), Constant outputs without a tensor.
void verify(const Graph& graph);
void verify(const Model& model);

// Runs verify() only in debug builds (NDEBUG unset); release builds skip the cost.
void debug_verify(const Graph& graph);

}  // namespace ptq::ir
