// Which Relu/Clip (or Mul by the input) may be folded into the kernel producing its input, and which
// zero Pad into the Conv reading it (CompiledGraph's fusions).
#pragma once

#include <optional>
#include <vector>

#include "ptq/ir/model.h"
#include "ptq/runtime/kernel.h"

namespace ptq::runtime {

struct FusableActivation {
  ir::NodeId node = ir::kNone;  // the Relu or Clip
  Activation act{};
};

// The Relu/Clip reading `producer`'s only output, when nothing else reads that value (no other
// node, graph output or subgraph capture: `captured` by value id) and a Clip's min/max are
// constant float scalars; nullopt otherwise.
std::optional<FusableActivation> fusable_activation(const ir::Model& model, const ir::Graph& graph,
                                                    const ir::Node& producer,
                                                    const std::vector<bool>& captured);

struct FusableMultiply {
  ir::NodeId node = ir::kNone;  // the Mul
  bool input_first = true;      // Mul(x, f(x)), else Mul(f(x), x)
};

// The Mul reading `producer`'s only output f(x) and the producer's first input x (either order,
// no other reader of f(x), no graph output or subgraph capture); nullopt otherwise.
std::optional<FusableMultiply> fusable_multiply_by_input(const ir::Graph& graph, const ir::Node& producer,
                                                         const std::vector<bool>& captured);

struct FusablePad {
  ir::NodeId conv = ir::kNone;  // the Conv reading the Pad's output as X
  std::vector<int64_t> pads;    // spatial [b0, b1, ..., e0, e1, ...], as Conv's `pads` attribute
};

// The Conv that is the only reader of `pad`'s output (as X; no graph output or subgraph capture),
// when the Pad adds zeros (mode constant, value +0 or absent, no axes input) with constant
// non-negative pads on the spatial axes only and the Conv has no auto_pad: the Conv with these
// pads added reads the same zeros. nullopt otherwise.
std::optional<FusablePad> fusable_pad(const ir::Model& model, const ir::Graph& graph, const ir::Node& pad,
                                      const std::vector<bool>& captured);

}  // namespace ptq::runtime
