// Interpreter: binds and checks the inputs, then executes the compiled main graph.
#include "ptq/runtime/interpreter.h"

#include <thread>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "compiled_graph.h"
#include "ptq/core/error.h"
#include "thread_pool.h"

namespace ptq::runtime {

namespace {

std::string dims_text(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(d[i]);
  }
  return s + "]";
}

void check_input(const ir::Value& v, const Tensor& t) {
  if (!v.type.known) return;
  PTQ_CHECK(v.type.dtype == DType::kUndefined || t.dtype() == v.type.dtype, UsageError, "input '",
            v.name, "': expected dtype ", dtype_name(v.type.dtype), ", got ", dtype_name(t.dtype()));
  if (!v.type.shape) return;
  const ir::Shape& s = *v.type.shape;
  bool ok = s.size() == t.rank();
  for (size_t i = 0; ok && i < s.size(); ++i)
    if (s[i].is_static() && s[i].value != t.dims()[i]) ok = false;
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < s.size(); ++i)
    {
      if (i) want += ',';
      want += s[i].is_static() ? std::to_string(s[i].value) : s[i].param.empty() ? "?" : s[i].param;
    }
    PTQ_CHECK(false, UsageError, "input '", v.name, "': expected shape ", want, "], got ",
              dims_text(t.dims()));
  }
}

}  // namespace

Interpreter::Interpreter(const ir::Model& model, InterpreterOptions options)
    : model_(model), observer_(std::move(options.observer)) {
  // An observer without a filter sees every value: nothing may be fused away.
  ValueFilter keep = options.observed;
  if (observer_ && !keep) keep = [](const ir::Graph&, ir::ValueId) { return true; };
  if (!observer_) keep = nullptr;
  main_ = std::make_shared<const CompiledGraph>(model, model.graph, options.qdq_mode, std::move(keep));
#ifdef __GLIBC__
  // Activations are large, short-lived buffers. glibc serves them with mmap by default, so
  // every run paid page faults and kernel page zeroing (a fifth of mobilenetv2's time); keep
  // them in the heap, where freed buffers are reused by the next run.
  static const bool heap_only = [] {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
    return true;
  }();
  (void)heap_only;
#endif
  size_t threads = options.threads;
  if (threads == 0) threads = std::max<size_t>(1, std::thread::hardware_concurrency());
  pool_ = std::make_unique<ThreadPool>(threads);
}

Interpreter::~Interpreter() = default;

void Interpreter::set_observer(Observer observer) { observer_ = std::move(observer); }

size_t Interpreter::threads() const { return pool_->size(); }

std::vector<Tensor> Interpreter::run(const std::map<std::string, Tensor>& inputs) const {
  return run_impl(inputs, nullptr);
}

std::vector<Tensor> Interpreter::run(const std::map<std::string, Tensor>& inputs, const KnownValues& known) const {
  return run_impl(inputs, &known);
}

void Interpreter::run_until(const std::map<std::string, Tensor>& inputs, const KnownValues& known,
                            const std::string& last) const {
  const ir::ValueId stop = model_.graph.find(last);
  PTQ_CHECK(stop != ir::kNone, UsageError, "'", last, "' is not a value of the model");
  run_impl(inputs, &known, stop);
}

std::vector<Tensor> Interpreter::run_impl(const std::map<std::string, Tensor>& inputs, const KnownValues* known,
                                          ir::ValueId stop) const {
  const ir::Graph& g = model_.graph;
  Frame frame(*main_, nullptr, *pool_, observer_ ? &observer_ : nullptr);
  const std::vector<ir::ValueId> runtime = g.runtime_inputs();
  for (const auto& [name, tensor] : inputs) {
    const ir::ValueId id = g.find(name);
    const bool is_input = std::find(runtime.begin(), runtime.end(), id) != runtime.end();
    PTQ_CHECK(id != ir::kNone && is_input, UsageError, "'", name,
              "' is not an input of the model");
  }
  for (ir::ValueId id : runtime) {
    const ir::Value& v = g.value(id);
    auto it = inputs.find(v.name);
    PTQ_CHECK(it != inputs.end(), UsageError, "missing input '", v.name, "'");
    check_input(v, it->second);
    frame.bind(id, it->second);
  }
  return frame.execute(known, stop);
}

}  // namespace ptq::runtime
