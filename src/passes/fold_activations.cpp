// ORT profile: Relu / Clip(0, x) after a quantized op disappear into the producer's Q (z = qmin).
#include <set>

#include "ptq/passes/quant_plan.h"
#include "rewrite.h"

namespace ptq::passes {

int fold_activations_into_quantized_producers(ir::Graph& g, const quant::QuantConfig& config,
                                              RangeMap& ranges) {
  return fold_activations_into_quantized_producers(g, config, ranges, NodeFilter{});
}

int fold_activations_into_quantized_producers(ir::Graph& g, const quant::QuantConfig& config, RangeMap& ranges,
                                              const NodeFilter& filter) {
  // Only an asymmetric Q has z = qmin after a [0, max] range, which is what clamps at zero.
  if (!config.fold_relu || config.activation_symmetry != quant::Symmetry::kAsymmetric) return 0;
  std::set<ir::NodeId> quantized_output;
  for (const NodeQuant& q : plan_quantization(g, config, ranges, filter).nodes)
    if (q.quantize_output) quantized_output.insert(q.node);
  int folded = 0;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (n.outputs.empty() || !clamps_at_zero(g, n)) continue;
    const ir::ValueId x = n.inputs[0], y = n.outputs[0];
    const ir::Node* p = g.producer(x);
    if (!p || !quantized_output.count(p->id) || g.value(x).uses.size() != 1 || g.is_output(x))
      continue;
    auto r = ranges.find(g.value(y).name);
    if (r == ranges.end() || !can_bypass(g, x, y)) continue;
    ranges[g.value(x).name] = r->second;
    bypass(g, id, x, y);
    ++folded;
  }
  return folded;
}

}  // namespace ptq::passes
