// Per-node sensitivity: the fp32 values of a few samples computed once, then each one-node model
// run only downstream of its Q/DQ (Interpreter::run with known values).
#include "ptq/report/sensitivity.h"

#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

#include "ptq/core/error.h"
#include "ptq/data/ordered_parallel.h"
#include "ptq/data/rows.h"

namespace ptq::report {

std::vector<Fp32Sample> fp32_values(const ir::Model& fp32, data::Dataset& ds, size_t n, const AccuracyOptions& o,
                                    bool rows) {
  struct Worker {
    std::unique_ptr<runtime::Interpreter> interpreter;
    Fp32Sample* current = nullptr;
  };
  const size_t workers = worker_count(o.fp32_runtime.threads, n);
  std::vector<Worker> ws(workers);
  const std::function<std::vector<Fp32Sample>(size_t, const data::Sample&)> work = [&](size_t w, const data::Sample& s) {
    Worker& wk = ws[w];
    if (!wk.interpreter) {
      runtime::InterpreterOptions ro = o.fp32_runtime;
      ro.threads = 1;
      ro.observer = [&fp32, &wk](const ir::Graph& g, ir::ValueId v, const Tensor& t) {
        if (&g == &fp32.graph) wk.current->values[static_cast<size_t>(v)] = t;
      };
      wk.interpreter = std::make_unique<runtime::Interpreter>(fp32, ro);
    }
    std::vector<Fp32Sample> out;
    for (auto& inputs : rows ? data::split_batch(fp32.graph, s.inputs) : std::vector{s.inputs}) {
      if (out.size() == n) break;  // no sample needs more rows than are kept in all
      Fp32Sample& r = out.emplace_back();
      r.inputs = std::move(inputs);
      r.values.resize(fp32.graph.id_bound_values());
      wk.current = &r;
      r.outputs = with_context(str_cat("sample ", s.source_str()), [&] { return wk.interpreter->run(r.inputs); });
    }
    return out;
  };
  std::vector<Fp32Sample> kept;
  const std::function<void(const data::Sample&, std::vector<Fp32Sample>&)> consume =
      [&](const data::Sample&, std::vector<Fp32Sample>& r) {
        for (Fp32Sample& s : r)
          if (kept.size() < n) kept.push_back(std::move(s));
      };
  ds.rewind();
  // Rows: a sample holds at least one, so n samples cover n rows.
  data::for_each_ordered<std::vector<Fp32Sample>>(ds, workers, n, work, consume);
  return kept;
}

void parallel_indexed(size_t n, size_t workers, const std::function<void(size_t)>& fn) {
  std::vector<std::exception_ptr> errors(n);
  std::atomic<size_t> next{0};
  const auto loop = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(loop);
  loop();
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

double output_sqnr(const ir::Model& fp32, const ir::Model& test, const std::vector<Fp32Sample>& kept,
                   const runtime::InterpreterOptions& runtime, bool reuse) {
  const runtime::Interpreter ib(test, runtime);
  // Reusable fp32 values: those the test graph produces with the same op from inputs of the same
  // names (a value the emitter re-made under an fp32 name is recomputed instead).
  std::vector<bool> reusable(fp32.graph.id_bound_values(), false);
  const ir::Graph& gb = test.graph;
  for (size_t v = 0; reuse && v < gb.id_bound_values(); ++v) {
    const ir::Value& val = gb.value(static_cast<ir::ValueId>(v));
    const ir::Node* p = val.alive ? gb.producer(static_cast<ir::ValueId>(v)) : nullptr;
    const ir::ValueId fv = p ? fp32.graph.find(val.name) : ir::kNone;
    const ir::Node* q = fv == ir::kNone ? nullptr : fp32.graph.producer(fv);
    if (!q || q->op_type != p->op_type || q->domain != p->domain || q->inputs.size() != p->inputs.size()) continue;
    bool same = true;
    for (size_t k = 0; same && k < p->inputs.size(); ++k) {
      const bool na = p->inputs[k] == ir::kNone, nb = q->inputs[k] == ir::kNone;
      same = na == nb && (na || gb.value(p->inputs[k]).name == fp32.graph.value(q->inputs[k]).name);
    }
    reusable[static_cast<size_t>(fv)] = same;
  }
  std::vector<ErrorStats> stats;
  std::vector<bool> compared;
  for (const Fp32Sample& s : kept) {
    const runtime::KnownValues known = [&](const std::string& name) -> const Tensor* {
      const ir::ValueId v = fp32.graph.find(name);
      if (v == ir::kNone || !reusable[static_cast<size_t>(v)]) return nullptr;
      const Tensor& t = s.values[static_cast<size_t>(v)];
      return t.dtype() == DType::kUndefined ? nullptr : &t;
    };
    const std::vector<Tensor> yb = ib.run(s.inputs, known);
    PTQ_CHECK(yb.size() == s.outputs.size(), UsageError, "the models have ", s.outputs.size(), " and ", yb.size(),
              " outputs");
    if (stats.empty()) {
      stats.resize(yb.size());
      for (const Tensor& t : s.outputs) compared.push_back(t.dtype() == DType::kFloat);
    }
    for (size_t k = 0; k < yb.size(); ++k)
      if (compared[k]) stats[k].add(s.outputs[k], yb[k]);
  }
  double v = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < stats.size(); ++k)
    if (compared[k]) v = std::min(v, sqnr_or_inf(stats[k].sqnr_db()));
  return v;
}

std::vector<double> node_sensitivity(const ir::Model& fp32, const Builder& build, const std::vector<QuantNode>& nodes,
                                     const std::vector<Fp32Sample>& kept, const AccuracyOptions& o) {
  std::vector<double> sqnr(nodes.size());
  std::mutex build_mutex;  // the builder is not promised to be thread-safe
  parallel_indexed(nodes.size(), worker_count(o.fp32_runtime.threads, nodes.size()), [&](size_t i) {
    NodeSelection sel;
    sel.use_only = true;
    sel.only.insert(nodes[i].id);
    BuiltModel one;
    {
      std::lock_guard<std::mutex> lock(build_mutex);
      one = build(sel);
    }
    runtime::InterpreterOptions bo = o.int8_runtime;
    bo.threads = 1;
    bo.observer = nullptr;
    sqnr[i] = output_sqnr(fp32, one.model, kept, bo, true);
  });
  return sqnr;
}

}  // namespace ptq::report
