// The tensor a Constant node produces, from whichever value* attribute it carries.
#pragma once

#include <memory>

#include "ptq/ir/node.h"

namespace ptq::ir {

// nullptr when the Constant holds a sparse tensor (not modelled) or has no value attribute.
std::shared_ptr<const Tensor> constant_node_tensor(const Node& node);

}  // namespace ptq::ir
