// Per-channel maxima of chosen tensors over a dataset, sample-parallel (SmoothQuant, merged shard tables).
#include "ptq/calib/channel_stats.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>

#include "ptq/core/error.h"
#include "ptq/data/ordered_parallel.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::calib {

using ChannelMax = std::map<ir::ValueId, std::vector<float>>;

void fold_channel_max(std::vector<float>& into, const std::vector<float>& from) {
  if (into.size() < from.size()) into.resize(from.size(), 0.f);
  for (size_t c = 0; c < from.size(); ++c) into[c] = std::max(into[c], from[c]);
}

void fold_channel_max_of(std::vector<float>& into, const Tensor& t, int channel_axis, MaxKind kind) {
  if (t.dtype() != DType::kFloat || t.rank() == 0) return;
  const size_t axis = channel_axis < 0 ? t.rank() - 1 : static_cast<size_t>(channel_axis);
  if (axis >= t.rank()) return;
  const size_t c = static_cast<size_t>(t.dims()[axis]);
  size_t inner = 1;
  for (size_t k = axis + 1; k < t.rank(); ++k) inner *= static_cast<size_t>(t.dims()[k]);
  if (c == 0 || inner == 0) return;
  into.resize(std::max(into.size(), c), 0.f);
  const float* p = t.data<float>();
  for (size_t i = 0; i < t.numel(); i += inner) {
    float& mc = into[(i / inner) % c];
    if (kind == MaxKind::kAbsolute)
      for (size_t k = 0; k < inner; ++k) mc = std::max(mc, std::fabs(p[i + k]));
    else
      for (size_t k = 0; k < inner; ++k) mc = std::max(mc, p[i + k]);
  }
}

ChannelMax channel_max_of(const ir::Model& model, data::Dataset& dataset, const std::vector<ir::ValueId>& values,
                          size_t threads, int channel_axis, MaxKind kind) {
  const ir::Graph& g = model.graph;
  std::vector<bool> wanted(g.id_bound_values(), false);
  for (ir::ValueId v : values) wanted[static_cast<size_t>(v)] = true;
  size_t workers = threads ? threads : std::max<unsigned>(1, std::thread::hardware_concurrency());
  workers = std::max<size_t>(1, std::min(workers, dataset.size()));
  struct Worker {
    std::unique_ptr<runtime::Interpreter> interpreter;
    ChannelMax* current = nullptr;
  };
  std::vector<Worker> ws(workers);
  const std::function<ChannelMax(size_t, const data::Sample&)> work = [&](size_t w, const data::Sample& sample) {
    Worker& wk = ws[w];
    if (!wk.interpreter) {
      runtime::InterpreterOptions ro;
      ro.threads = 1;
      ro.observer = [&g, &wk, &wanted, channel_axis, kind](const ir::Graph& graph, ir::ValueId v, const Tensor& t) {
        if (&graph != &g || !wanted[static_cast<size_t>(v)]) return;
        fold_channel_max_of((*wk.current)[v], t, channel_axis, kind);
      };
      wk.interpreter = std::make_unique<runtime::Interpreter>(model, ro);
    }
    ChannelMax out;
    wk.current = &out;
    with_context(str_cat("per-channel statistics, sample ", sample.source_str()),
                 [&] { wk.interpreter->run(sample.inputs); });
    return out;
  };
  ChannelMax result;
  const std::function<void(const data::Sample&, ChannelMax&)> consume = [&](const data::Sample&, ChannelMax& part) {
    for (const auto& [v, m] : part) fold_channel_max(result[v], m);
  };
  const size_t done = data::for_each_ordered<ChannelMax>(dataset, workers, 0, work, consume);
  PTQ_CHECK(done > 0, IoError, "no calibration samples (all were skipped or the data set is empty)");
  return result;
}

}  // namespace ptq::calib
