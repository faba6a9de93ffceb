// Internal: a graph prepared for execution (kernels, release lists) and the frame of one run.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ptq/ir/model.h"
#include "ptq/runtime/interpreter.h"
#include "ptq/runtime/kernel.h"

namespace ptq::runtime {

class CompiledGraph {
 public:
  struct Step {
    ir::NodeId node = ir::kNone;
    std::unique_ptr<Kernel> kernel;
    std::vector<ir::ValueId> inputs;   // what the kernel reads (kNone: omitted)
    std::vector<ir::ValueId> outputs;  // what it writes (kNone: omitted)
    std::vector<ir::ValueId> release;  // values whose last reader is this step
  };
  // Creates every kernel of `graph` (and, through KernelInit::compile, of its subgraphs). In
  // QdqMode::kIntegerKernel, fused QDQ groups (qdq_fusion.h) become one step each, and
  // DequantizeLinear nodes read only by fused groups get no step. A Relu/Clip is folded into
  // the kernel producing its input (Kernel::fuse_activation) unless `keep` says that input must
  // be produced (an empty `keep` keeps nothing).
  CompiledGraph(const ir::Model& model, const ir::Graph& graph,
                QdqMode mode = QdqMode::kFakeQuant, ValueFilter keep = {});

  const ir::Graph& graph() const { return graph_; }
  const std::vector<Step>& steps() const { return steps_; }
  // Constant tensors by value id (nullptr elsewhere): the starting point of every frame.
  const std::vector<const Tensor*>& constants() const { return constants_; }
  // Values read from the enclosing scope, with their names.
  const std::vector<std::pair<ir::ValueId, std::string>>& outer() const { return outer_; }
  // Values never read by a step and not graph outputs: released right after their producer.
  const std::vector<bool>& dead() const { return dead_; }

 private:
  const ir::Graph& graph_;
  std::vector<Step> steps_;
  std::vector<const Tensor*> constants_;
  std::vector<std::pair<ir::ValueId, std::string>> outer_;
  std::vector<bool> dead_;

  void fuse_concats(const ir::Graph& graph, const ValueFilter& keep, const std::vector<bool>& captured);
};

// The values of one execution of a compiled graph.
struct Frame {
  const CompiledGraph& compiled;
  const Frame* parent = nullptr;  // the enclosing scope, for subgraphs
  ThreadPool& pool;
  const Observer* observer = nullptr;  // nullptr when unset
  std::vector<const Tensor*> slots;    // what each value id reads now
  std::vector<Tensor> owned;           // storage for values produced in this frame

  Frame(const CompiledGraph& c, const Frame* p, ThreadPool& tp, const Observer* obs);
  void bind(ir::ValueId id, Tensor t);
  // Executes every step and returns the graph outputs (named). With `known`, a step is skipped
  // when `known` gives all its outputs and none of its inputs was recomputed in this run. With
  // `stop`: returns nothing as soon as the step producing `stop` has run.
  std::vector<Tensor> execute(const KnownValues* known = nullptr, ir::ValueId stop = ir::kNone);
};

}  // namespace ptq::runtime
