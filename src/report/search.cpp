// Placement search: rounds of fp32 returns ranked by per-node sensitivity, kept by measured gain.
#include "ptq/report/search.h"

#include <algorithm>
#include <cmath>

#include "ptq/core/error.h"
#include "ptq/report/sensitivity.h"

namespace ptq::report {

SearchResult search_placement(const ir::Model& fp32, const Builder& build, const std::vector<Fp32Sample>& kept,
                              const AccuracyOptions& o, const SearchOptions& s) {
  SearchResult r;
  const BuiltModel full = build({});
  const std::vector<QuantNode>& nodes = full.nodes;
  if (nodes.empty() || kept.empty()) return r;
  r.samples = kept.size();
  runtime::InterpreterOptions ro = o.int8_runtime;
  ro.observer = nullptr;
  double cur = output_sqnr(fp32, full.model, kept, ro, false);
  r.before_db = r.after_db = cur;
  if (!(cur < s.target_db)) return r;  // good enough (or exact): nothing to search

  const std::vector<double> sens = node_sensitivity(fp32, build, nodes, kept, o);
  std::vector<size_t> order(nodes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sens[a] < sens[b]; });
  const size_t max_fp32 =
      std::max<size_t>(4, static_cast<size_t>(std::floor(static_cast<double>(nodes.size()) * s.max_fp32_share)));
  NodeSelection sel;
  while (sel.fp32.size() < max_fp32) {
    NodeSelection trial = sel;
    SearchRound round;
    for (size_t i : order) {
      if (trial.fp32.size() >= max_fp32 || !(sens[i] < cur + s.margin_db)) break;
      if (trial.fp32.insert(nodes[i].id).second) round.nodes.push_back(nodes[i].label);
    }
    if (round.nodes.empty()) break;
    round.sqnr_db = output_sqnr(fp32, build(trial).model, kept, ro, false);
    round.kept = round.sqnr_db >= cur + s.min_gain_db;
    r.rounds.push_back(round);
    if (!round.kept) break;
    sel = std::move(trial);
    cur = round.sqnr_db;
    if (!(cur < s.target_db)) break;
  }
  r.selection = sel;
  r.after_db = cur;
  return r;
}

}  // namespace ptq::report
