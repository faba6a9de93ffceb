// The single-pass streaming calibration driver over runtime::Interpreter's observer hook.
#include "ptq/calib/calibrate.h"

#include <map>
#include <memory>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::calib {
namespace {

// A batch of n samples as n runs of one: GEMM kernels sum in an order that depends on the batch
// size, so only batch-1 runs give statistics that do not depend on how samples were grouped.
// Splits along dim 0 when every runtime input declares a non-static dim 0 and all share its size.
std::vector<std::map<std::string, Tensor>> split_batch(const ir::Graph& g,
                                                       const std::map<std::string, Tensor>& inputs) {
  int64_t n = -1;
  for (ir::ValueId v : g.runtime_inputs()) {
    const ir::Value& val = g.value(v);
    const auto it = inputs.find(val.name);
    if (it == inputs.end() || it->second.rank() == 0 || it->second.is_string()) return {inputs};
    if (val.type.shape && !val.type.shape->empty() && (*val.type.shape)[0].is_static()) return {inputs};
    const int64_t d0 = it->second.dims()[0];
    if (n >= 0 && d0 != n) return {inputs};
    n = d0;
  }
  if (n <= 1) return {inputs};
  std::vector<std::map<std::string, Tensor>> rows(static_cast<size_t>(n));
  for (const auto& [name, t] : inputs) {
    Dims dims = t.dims();
    dims[0] = 1;
    const size_t row_bytes = t.nbytes() / static_cast<size_t>(n);
    for (int64_t r = 0; r < n; ++r)
      rows[static_cast<size_t>(r)][name] = Tensor::from_bytes(
          t.dtype(), dims, static_cast<const uint8_t*>(t.raw()) + static_cast<size_t>(r) * row_bytes, row_bytes);
  }
  return rows;
}

}  // namespace

CalibTable calibrate(const ir::Model& model, data::Dataset& dataset, const CalibrateOptions& o,
                     const std::string& model_sha256) {
  const Method* method = find_method(o.method);
  PTQ_CHECK(method, UsageError, "--method: unknown method '", o.method, "' (use ", method_names(), ")");
  const ir::Graph& g = model.graph;
  // One Observation per float tensor of the top-level graph, created when first seen.
  std::vector<std::unique_ptr<Observation>> obs(g.id_bound_values());
  const bool histograms = method->histogram(o.params) != HistogramKind::kNone;
  const int bins = histogram_bins(o.params);

  runtime::InterpreterOptions ro;
  ro.threads = o.threads;
  // Subgraph tensors (If/Loop bodies) are never quantized: only the top-level graph is observed.
  ro.observer = [&](const ir::Graph& graph, ir::ValueId v, const Tensor& t) {
    if (&graph != &g || t.dtype() != DType::kFloat || g.value(v).is_constant()) return;
    auto& ob = obs[static_cast<size_t>(v)];
    if (!ob) ob = std::make_unique<Observation>(histograms ? bins : 1);
    ob->observe(t.data<float>(), t.numel(), histograms);
  };
  const runtime::Interpreter interpreter(model, ro);

  size_t samples = 0, done = 0;
  while (auto sample = dataset.next()) {
    with_context(str_cat("calibration sample ", sample->source_str()), [&] {
      for (const auto& row : split_batch(g, sample->inputs)) interpreter.run(row);
    });
    ++done;
    // Count batch rows, not files, so the table reads the same however samples were batched.
    const Tensor& first = sample->inputs.begin()->second;
    samples += first.rank() > 0 ? static_cast<size_t>(first.dims()[0]) : 1;
    if (o.progress) o.progress(1, 1, done, dataset.size());
  }
  PTQ_CHECK(done > 0, IoError, "no calibration samples (all were skipped or the data set is empty)");

  CalibTable table;
  table.model_sha256 = model_sha256;
  table.method = o.method;
  table.params = o.params;
  table.samples = samples;
  for (size_t v = 0; v < obs.size(); ++v) {
    if (!obs[v]) continue;
    const ir::Value& val = g.value(static_cast<ir::ValueId>(v));
    // Graph inputs hold preprocessed data whose range is meant (MNIST's background sits at the
    // minimum): clipping it moves every such pixel, so inputs keep their exact min/max.
    const bool input = val.kind == ir::ValueKind::kGraphInput;
    table.ranges[val.name] = input ? Range{static_cast<float>(obs[v]->range.min), static_cast<float>(obs[v]->range.max)}
                                   : method->compute(*obs[v], o.params);
  }
  return table;
}

}  // namespace ptq::calib
