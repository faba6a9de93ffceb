// SmoothQuant statistics (measured or estimated without data) and their application, by tensor name.
#include "smoothing.h"

#include <cmath>

#include <spdlog/spdlog.h>

#include "ptq/calib/channel_stats.h"
#include "ptq/ir/verify.h"
#include "ptq/passes/smoothquant.h"

namespace ptq::pipeline {

std::map<std::string, std::vector<float>> smoothing_statistics(const ir::Model& model, data::Dataset& ds,
                                                               size_t threads) {
  std::vector<ir::ValueId> values;
  for (const passes::SmoothGroup& grp : passes::smoothquant_groups(model.graph)) values.push_back(grp.activation);
  std::map<std::string, std::vector<float>> by_name;
  if (values.empty()) return by_name;
  for (auto& [v, m] : calib::channel_max_of(model, ds, values, threads)) by_name[model.graph.value(v).name] = std::move(m);
  return by_name;
}

std::map<std::string, std::vector<float>> estimated_smoothing_statistics(const ir::Model& model) {
  std::map<std::string, std::vector<float>> by_name;
  for (auto& [v, m] : passes::norm_channel_estimates(model.graph, passes::smoothquant_groups(model.graph)))
    by_name[model.graph.value(v).name] = std::move(m);
  return by_name;
}

void apply_smoothquant(ir::Model& model, const std::map<std::string, std::vector<float>>& channel_max, float alpha) {
  const std::vector<passes::SmoothGroup> groups = passes::smoothquant_groups(model.graph);
  std::map<ir::ValueId, std::vector<float>> stats;
  for (const passes::SmoothGroup& grp : groups) {
    const auto it = channel_max.find(model.graph.value(grp.activation).name);
    if (it != channel_max.end()) stats[grp.activation] = it->second;
  }
  const std::vector<std::string> notes = passes::apply_smoothquant(model.graph, groups, stats, alpha);
  spdlog::info("smoothquant (alpha {}): {} activations smoothed into the next MatMul weights", alpha, notes.size());
  for (const std::string& n : notes) spdlog::debug("smoothquant: {}", n);
  ir::verify(model);
}

passes::RangeMap placeholder_ranges(const ir::Graph& g) {
  // Placeholder range [0, (v+1) * 2^-20] tags value v, so a range the fold copies to another name
  // still tells which tensor's statistics it came from. Scaled down (exactly, a power of two) so
  // that no tag looks like a mask value (|x| >= 1e4, passes/mask_paths.h) in a large graph.
  passes::RangeMap ranges;
  for (size_t v = 0; v < g.id_bound_values(); ++v) {
    const ir::Value& val = g.value(static_cast<ir::ValueId>(v));
    if (!val.alive || val.is_constant() || val.name.empty()) continue;
    // Over-approximating (a non-float tensor of unknown type) costs one histogram, nothing else.
    if (val.type.known && val.type.dtype != DType::kUndefined && val.type.dtype != DType::kFloat) continue;
    ranges[val.name] = {0.f, std::ldexp(static_cast<float>(v + 1), -20)};
  }
  return ranges;
}

passes::NodeFilter to_filter(const report::NodeSelection& s) {
  passes::NodeFilter f;
  f.use_only = s.use_only;
  f.only = s.only;
  f.fp32 = s.fp32;
  f.searched = s.searched;
  return f;
}

}  // namespace ptq::pipeline
