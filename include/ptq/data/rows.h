// A batched sample as batch-1 rows: what runs whose figures must not depend on batching read.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/graph.h"

namespace ptq::data {

// A batch of n samples as n runs of one: GEMM kernels sum in an order that depends on the batch
// size, so only batch-1 runs give statistics that do not depend on how samples were grouped.
// Splits along dim 0 when every runtime input declares a non-static dim 0 and all share its size;
// otherwise the sample as it is.
std::vector<std::map<std::string, Tensor>> split_batch(const ir::Graph& g, const std::map<std::string, Tensor>& inputs);

}  // namespace ptq::data
