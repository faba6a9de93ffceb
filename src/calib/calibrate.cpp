// The single-pass streaming calibration driver over runtime::Interpreter's observer hook.
#include "ptq/calib/calibrate.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "ptq/calib/channel_stats.h"
#include "ptq/core/error.h"
#include "ptq/data/ordered_parallel.h"
#include "ptq/data/rows.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::calib {

CalibTable calibrate(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& o,
                     const std::string& model_sha256) {
  return ranges_from(calibrate_stats(model, dataset, o, model_sha256));
}

CalibStats calibrate_stats(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& o,
                           const std::string& model_sha256) {
  const Method* method = find_method(o.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", o.method, "' (use ", method_names(), ")");
  const ir::Graph& g = model.graph;
  const bool histograms = method->histogram(o.params) != HistogramKind::kNone;
  const int bins = histogram_bins(o.params);
  // Histograms only where the caller says a range will be used (or everywhere when it does not
  // say), and never for graph inputs: they keep their exact range (below).
  const auto wants_histogram = [&](size_t v) {
    return histograms && g.value(static_cast<ir::ValueId>(v)).kind != ir::ValueKind::kGraphInput &&
           (o.histogram_values.empty() || (v < o.histogram_values.size() && o.histogram_values[v]));
  };
  using Observations = std::vector<std::unique_ptr<Observation>>;  // by value id, created when first seen

  // One interpreter per worker with single-threaded kernels: samples run side by side, each
  // batch row's ranges into its own Observations, merged below in sample order. Histograms go
  // into one accumulator per worker (see Observation::observe), added up at the end.
  size_t workers = o.threads ? o.threads : std::max<unsigned>(1, std::thread::hardware_concurrency());
  workers = std::max<size_t>(1, std::min(workers, dataset.size()));
  struct Worker {
    std::unique_ptr<runtime::Interpreter> interpreter;
    Observations* current = nullptr;
    Observations histograms;
    std::map<size_t, std::vector<float>> channel_max;  // a max: merged in any order
  };
  std::vector<bool> wants_channel_max(g.id_bound_values(), false);
  for (ir::ValueId v : o.channel_max_values) wants_channel_max[static_cast<size_t>(v)] = true;
  std::vector<Worker> ws(workers);
  const std::function<std::vector<Observations>(size_t, const data::Sample&)> work =
      [&](size_t w, const data::Sample& sample) {
        Worker& wk = ws[w];
        if (!wk.interpreter) {
          runtime::InterpreterOptions ro;
          ro.threads = 1;
          // Subgraph tensors (If/Loop bodies) are never quantized: only the top-level graph is observed.
          ro.observer = [&g, &wk, &wants_histogram, &wants_channel_max, bins](const ir::Graph& graph, ir::ValueId v,
                                                                             const Tensor& t) {
            if (&graph != &g || t.dtype() != DType::kFloat || g.value(v).is_constant()) return;
            const auto id = static_cast<size_t>(v);
            if (wants_channel_max[id]) fold_channel_max_of(wk.channel_max[id], t, 1, MaxKind::kSigned);
            auto& ob = (*wk.current)[id];
            if (!ob) ob = std::make_unique<Observation>(1);
            Observation* into = nullptr;
            if (wants_histogram(id)) {
              auto& h = wk.histograms[id];
              if (!h) h = std::make_unique<Observation>(bins);
              into = h.get();
            }
            ob->observe(t.data<float>(), t.numel(), into);
          };
          wk.interpreter = std::make_unique<runtime::Interpreter>(model, ro);
          wk.histograms.resize(g.id_bound_values());
        }
        std::vector<Observations> rows;
        with_context(str_cat("calibration sample ", sample.source_str()), [&] {
          for (const auto& row : data::split_batch(g, sample.inputs)) {
            rows.emplace_back(g.id_bound_values());
            wk.current = &rows.back();
            wk.interpreter->run(row);
          }
        });
        return rows;
      };

  Observations obs(g.id_bound_values());
  size_t samples = 0, done = 0;
  const std::function<void(const data::Sample&, std::vector<Observations>&)> consume =
      [&](const data::Sample& sample, std::vector<Observations>& rows) {
        for (Observations& row : rows)
          for (size_t v = 0; v < row.size(); ++v) {
            if (!row[v]) continue;
            if (!obs[v]) obs[v] = std::move(row[v]);
            else obs[v]->merge(*row[v]);
          }
        ++done;
        // Count batch rows, not files, so the table reads the same however samples were batched.
        const Tensor& first = sample.inputs.begin()->second;
        samples += first.rank() > 0 ? static_cast<size_t>(first.dims()[0]) : 1;
        if (o.progress) o.progress(1, 1, done, dataset.size());
      };
  data::for_each_ordered<std::vector<Observations>>(dataset, workers, 0, work, consume);
  PTQ_CHECK(done > 0, IoError, "no calibration samples (all were skipped or the data set is empty)");

  CalibStats stats;
  stats.model_sha256 = model_sha256;
  stats.method = o.method;
  stats.params = o.params;
  stats.samples = samples;
  for (const Worker& wk : ws)
    for (const auto& [v, m] : wk.channel_max) fold_channel_max(stats.channel_max[g.value(static_cast<ir::ValueId>(v)).name], m);
  for (size_t v = 0; v < obs.size(); ++v) {
    if (!obs[v]) continue;
    if (wants_histogram(v)) {
      obs[v]->positive = Pow2Histogram(bins);
      obs[v]->negative = Pow2Histogram(bins);
      for (const Worker& wk : ws)
        if (v < wk.histograms.size() && wk.histograms[v]) {
          obs[v]->positive.merge(wk.histograms[v]->positive);
          obs[v]->negative.merge(wk.histograms[v]->negative);
        }
    }
    const ir::Value& val = g.value(static_cast<ir::ValueId>(v));
    // Graph inputs hold preprocessed data whose range is meant (MNIST's background sits at the
    // minimum): clipping it moves every such pixel, so inputs keep their exact min/max.
    const bool exact = val.kind == ir::ValueKind::kGraphInput || (histograms && !wants_histogram(v));
    stats.tensors.emplace(val.name, TensorStats{exact, std::move(*obs[v]), Through::kIdentity});
  }
  return stats;
}

}  // namespace ptq::calib
