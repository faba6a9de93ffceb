// A Concat whose inputs all come from kernels that write into given memory (Conv): one step that
// runs them straight into the Concat's output instead of copying their outputs (CompiledGraph).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ptq/runtime/kernel.h"

namespace ptq::runtime {

struct ConcatPart {
  std::unique_ptr<Kernel> kernel;  // supports_run_into()
  size_t inputs = 0;               // how many of the step's inputs are this part's (in order)
  std::string label;               // the part's node, for error messages
};

// The kernel of the fused step: its inputs are each part's inputs in turn. A batch-1 output along
// axis 1 is contiguous per part, so each part writes its slice in place; any other case (a batch,
// another axis, an input run_into cannot take) runs the parts and `concat` as separate kernels.
std::unique_ptr<Kernel> make_concat_in_place(std::vector<ConcatPart> parts, std::unique_ptr<Kernel> concat,
                                             int64_t axis);

}  // namespace ptq::runtime
