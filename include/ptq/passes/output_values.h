// Tensors whose values reach a graph output unchanged: calibration keeps their exact min/max.
#pragma once

#include <set>

#include "ptq/ir/graph.h"

namespace ptq::passes {

// Graph outputs and the float tensors that flow into one through ops that move values without
// computing new ones (Concat, Reshape, Transpose, Slice, ...) or shift them by a constant (a bias
// Add or Sub). Clipping such a value changes the
// output itself, and what reads the output is outside the graph: YOLOX's decoder takes exp() of
// its raw box sizes, so a clipped size shrinks a box past the IoU threshold while the output SQNR
// barely moves.
std::set<ir::ValueId> output_values(const ir::Graph& graph);

}  // namespace ptq::passes
