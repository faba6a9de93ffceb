// Executes an ir::Model on the CPU with the built-in kernels (fp32 reference runtime).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/model.h"

namespace ptq::runtime {

class CompiledGraph;
class ThreadPool;

// Called for every tensor a graph input binds or a node produces (subgraphs included).
using Observer = std::function<void(const ir::Graph&, ir::ValueId, const Tensor&)>;

// Tensors already computed elsewhere, by value name (nullptr: unknown), for partial runs.
using KnownValues = std::function<const Tensor*(const std::string& name)>;

// How QDQ graphs execute.
enum class QdqMode {
  // DequantizeLinear -> fp32 op -> QuantizeLinear, node by node: what the graph means.
  kFakeQuant,
  // The node groups ONNX Runtime's CPU EP fuses (DQ... -> Conv/MatMul/Gemm/Add/Mul/pools/
  // Sigmoid/Concat -> Q, and value-preserving ops between equal Q/DQ parameters) run as ORT's
  // integer kernels: int32 accumulation and float requantization, so the outputs predict
  // ORT's. Fused groups do not produce their float intermediates (the observer never sees them).
  kIntegerKernel,
};

// Selects values of a graph (subgraphs included).
using ValueFilter = std::function<bool(const ir::Graph&, ir::ValueId)>;

struct InterpreterOptions {
  size_t threads = 0;  // 0: std::thread::hardware_concurrency()
  Observer observer;   // optional; no cost when unset
  QdqMode qdq_mode = QdqMode::kFakeQuant;
  // With an observer: the values it needs (unset: all of them). A value nobody needs may be
  // fused away and never reach the observer (a Conv output read only by a Relu/Clip: the Conv
  // applies the activation to its own output). Without an observer, everything may be fused.
  ValueFilter observed;
};

class Interpreter {
 public:
  // Creates every kernel (validating attributes); throws UnsupportedError for an op without a
  // kernel, naming the node, op and opset. The model must outlive the interpreter.
  explicit Interpreter(const ir::Model& model, InterpreterOptions options = {});
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Runs the main graph. `inputs` maps graph input names to tensors; every runtime input must
  // be given, with the declared dtype and a shape matching the static dims (UsageError
  // otherwise). Returns the graph outputs in order, each with Tensor::name set.
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs) const;

  // Partial run: a node of the main graph is skipped when `known` gives all its outputs and none
  // of its inputs was recomputed in this run, so only what depends on changed nodes runs (the
  // accuracy report's sensitivity reuses the fp32 model's activations upstream of the one
  // quantized node). Nodes with subgraphs always run. Outputs equal those of run() whenever
  // `known` holds what those nodes would compute.
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs, const KnownValues& known) const;

  // The same partial run, ended once the main-graph value named `last` is computed (the observer
  // has seen it): for passes that correct a model value by value, in graph order.
  void run_until(const std::map<std::string, Tensor>& inputs, const KnownValues& known, const std::string& last) const;

  // Values fused away when the interpreter was built (InterpreterOptions::observed) stay unseen.
  void set_observer(Observer observer);
  size_t threads() const;

 private:
  std::vector<Tensor> run_impl(const std::map<std::string, Tensor>& inputs, const KnownValues* known,
                               ir::ValueId stop = ir::kNone) const;
  const ir::Model& model_;
  std::shared_ptr<const CompiledGraph> main_;
  std::unique_ptr<ThreadPool> pool_;
  Observer observer_;
};

}  // namespace ptq::runtime
