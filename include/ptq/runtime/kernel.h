// The kernel interface: one object per node, attributes validated at creation, compute in run().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/graph.h"

namespace ptq::runtime {

class ThreadPool;
class CompiledGraph;  // a subgraph prepared for execution (src/runtime/compiled_graph.h)
struct Frame;         // the values of one graph execution (src/runtime/compiled_graph.h)

// What a kernel factory sees: the node, its graph, the opset of the node's domain.
struct KernelInit {
  const ir::Node& node;
  const ir::Graph& graph;
  int64_t opset = 0;
  // Prepares a subgraph attribute (If branches) for execution; nested kernels are created too.
  std::function<std::shared_ptr<const CompiledGraph>(const ir::Graph&)> compile;
};

// What a kernel sees at run time: the thread pool and, for control flow, the enclosing frame.
class KernelContext {
 public:
  KernelContext(ThreadPool& pool, const Frame& frame) : pool_(pool), frame_(frame) {}
  // Runs fn(i) for i in [0, n) on the pool. Kernels choose chunks from the problem shape only,
  // never from the thread count, so results are bit-identical for any number of threads.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn) const;
  size_t threads() const;
  // Runs a compiled subgraph with this frame as its enclosing scope; returns its outputs.
  std::vector<Tensor> run_subgraph(const CompiledGraph& graph) const;

 private:
  ThreadPool& pool_;
  const Frame& frame_;
};

// A Relu or Clip folded into the kernel that produces its input: y = min(max(x, lo), hi) with
// std::max/std::min's argument order, as those kernels compute it (NaN passes through).
struct Activation {
  float lo, hi;
  float operator()(float v) const { return std::min(std::max(v, lo), hi); }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Offered when this node's only output feeds nothing but a Relu/Clip (and no observer needs
  // the value in between): true when the kernel will apply `a` to its output itself, bit for
  // bit, so the activation needs no pass of its own over memory.
  virtual bool fuse_activation(const Activation& a) {
    (void)a;
    return false;
  }
  // Offered when this node's only output f(x) feeds nothing but a Mul by the node's own first
  // input x (SiLU: x · Sigmoid(x)), again with no observer in between: true when the kernel will
  // write the product itself, bit for bit what the Mul computes (`input_first`: Mul(x, f(x)),
  // else Mul(f(x), x); the order decides which NaN a product of two NaNs returns).
  virtual bool fuse_multiply_by_input(bool input_first) {
    (void)input_first;
    return false;
  }
  // Offered when X (input 0) comes from a Pad adding zeros on the spatial axes only, read by
  // nothing else: true when the kernel will read its input with `pads` (spatial [begin..., end...])
  // added to its own, which sums the same zeros, so the Pad needs no pass of its own.
  virtual bool fuse_input_pads(const std::vector<int64_t>& pads) {
    (void)pads;
    return false;
  }
  // Offered when this node's only output is one input of a Concat (CompiledGraph's in-place
  // Concat): true when run_into() can write that output straight into the Concat's output.
  virtual bool supports_run_into() const { return false; }
  // With supports_run_into(): the float output run() would produce from `inputs` (its dims, or
  // nullopt where run_into cannot produce it, e.g. a non-float input), ...
  virtual std::optional<Dims> run_into_dims(const std::vector<const Tensor*>& inputs) const {
    (void)inputs;
    return std::nullopt;
  }
  // ... written bit for bit to y (room for those dims, contiguous).
  virtual void run_into(const KernelContext& ctx, const std::vector<const Tensor*>& inputs, float* y) {
    (void)ctx, (void)inputs, (void)y;
  }
  // inputs[i] is nullptr for an omitted optional input; outputs has one slot per node output
  // (omitted outputs may be left empty).
  virtual void run(const KernelContext& ctx, const std::vector<const Tensor*>& inputs,
                   std::vector<Tensor>& outputs) = 0;
};

using KernelFactory = std::unique_ptr<Kernel> (*)(const KernelInit&);

}  // namespace ptq::runtime
