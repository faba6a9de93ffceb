// The two-pass streaming calibration driver over runtime::Interpreter's observer hook.
#include "ptq/calib/calibrate.h"

#include <vector>

#include "ptq/core/error.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::calib {
namespace {

// One Observation per value id of the top-level graph; only float tensors are tracked.
struct Observations {
  std::vector<Observation> by_value;
  std::vector<char> seen;
};

}  // namespace

CalibTable calibrate(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& o,
                     const std::string& model_sha256) {
  const Method* method = find_method(o.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", o.method, "' (use ", method_names(), ")");
  const ir::Graph& g = model.graph;
  Observations obs;
  obs.by_value.resize(g.id_bound_values());
  obs.seen.assign(g.id_bound_values(), 0);
  const HistogramKind kind = method->histogram(o.params);
  const int passes = kind == HistogramKind::kNone ? 1 : 2;
  int pass = 1;

  runtime::InterpreterOptions ro;
  ro.threads = o.threads;
  // Subgraph tensors (If/Loop bodies) are never quantized: only the top-level graph is observed.
  ro.observer = [&](const ir::Graph& graph, ir::ValueId v, const Tensor& t) {
    if (&graph != &g || t.dtype() != DType::kFloat || g.value(v).is_constant()) return;
    Observation& ob = obs.by_value[static_cast<size_t>(v)];
    if (pass == 1) {
      ob.range.observe(t.data<float>(), t.numel());
      obs.seen[static_cast<size_t>(v)] = 1;
    } else {
      observe_histogram(ob, kind, t.data<float>(), t.numel());
    }
  };
  const runtime::Interpreter interpreter(model, ro);

  size_t samples = 0;
  for (; pass <= passes; ++pass) {
    if (pass == 2) {
      for (size_t v = 0; v < obs.by_value.size(); ++v)
        if (obs.seen[v]) prepare_histograms(obs.by_value[v], kind, o.params.num_bins);
      dataset.rewind();
    }
    size_t done = 0;
    while (auto sample = dataset.next()) {
      with_context(str_cat("calibration sample ", sample->source_str()),
                   [&] { interpreter.run(sample->inputs); });
      ++done;
      if (o.progress) o.progress(pass, passes, done, dataset.size());
    }
    if (pass == 1) samples = done;
    PTQ_CHECK(done > 0, IoError, "no calibration samples (all were skipped or the data set is empty)");
  }

  CalibTable table;
  table.model_sha256 = model_sha256;
  table.method = o.method;
  table.params = o.params;
  table.samples = samples;
  for (size_t v = 0; v < obs.by_value.size(); ++v)
    if (obs.seen[v]) table.ranges[g.value(static_cast<ir::ValueId>(v)).name] = method->compute(obs.by_value[v], o.params);
  return table;
}

}  // namespace ptq::calib
