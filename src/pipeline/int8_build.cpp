// One int8 model: fold, plan and emit with a node filter; the nodes it quantizes named for the report.
#include "int8_build.h"

#include <algorithm>

#include "ptq/ir/verify.h"
#include "ptq/onnx_io/opset.h"
#include "ptq/passes/depthwise_scales.h"

namespace ptq::pipeline {

Int8Build build_int8(const ir::Model& prepared, const passes::RangeMap& table_ranges, const quant::QuantConfig& config,
                     const passes::NodeFilter& filter, const emit::ChannelMeans& means,
                     const DepthwiseMax& depthwise_max, const emit::ChannelMeans& bias_shift,
                     const emit::ChannelMeans& output_gain) {
  Int8Build b;
  b.built.model = prepared;
  ir::Model& model = b.built.model;
  passes::RangeMap ranges = table_ranges;
  b.folded = passes::fold_activations_into_quantized_producers(model.graph, config, ranges, filter);
  b.plan = passes::plan_quantization(model.graph, config, ranges, filter);
  for (const passes::NodeQuant& q : b.plan.nodes) {
    const ir::Node& n = model.graph.node(q.node);
    const std::string out = n.outputs.empty() || n.outputs[0] == ir::kNone ? "" : model.graph.value(n.outputs[0]).name;
    // A folded Relu/Clip: the fp32 graph's equivalent of this output is the activation's output.
    std::string ref = out;
    const ir::ValueId x = prepared.graph.find(out);
    if (x != ir::kNone && prepared.graph.value(x).uses.size() == 1) {
      const ir::Node& act = prepared.graph.node(prepared.graph.value(x).uses[0].node);
      const bool folded = !model.graph.node(act.id).alive && (act.op_type == "Relu" || act.op_type == "Clip");
      if (folded && !act.outputs.empty()) ref = prepared.graph.value(act.outputs[0]).name;
    }
    b.built.nodes.push_back({q.node, n.name.empty() ? str_cat(n.op_type, " -> ", out) : n.name, n.op_type, ref, out, {}});
  }
  // Depthwise inputs' per-channel grids: the scaled inputs' means scale with them.
  emit::ChannelMeans scaled_means = means;
  for (const auto& [x, s] : passes::scale_depthwise_inputs(model.graph, b.plan, ranges, depthwise_max)) {
    for (report::QuantNode& n : b.built.nodes)
      if (n.test_output == model.graph.value(x).name) n.channel_scale = s;
    model.metadata_props.emplace_back(report::kChannelScaleKey + model.graph.value(x).name,
                                      report::format_channel_scale(s));
    const auto m = scaled_means.find(model.graph.value(x).name);
    if (m == scaled_means.end() || m->second.size() != s.size()) continue;
    for (size_t c = 0; c < s.size(); ++c) m->second[c] *= static_cast<double>(s[c]);
  }
  passes::scale_conv_outputs(model.graph, b.plan, output_gain);
  b.summary = emit::emit_qdq(model, b.plan, ranges, config, scaled_means, bias_shift);
  model.ir_version = std::max(model.ir_version, onnx_io::min_ir_version_for_opset(model.opset()));
  ir::verify(model);
  return b;
}

DepthwiseMax depthwise_max_by_node(const ir::Graph& prepared, const std::map<std::string, std::vector<float>>& by_name) {
  DepthwiseMax out;
  for (const auto& [node, x] : passes::depthwise_scale_candidates(prepared)) {
    const auto m = by_name.find(prepared.value(x).name);
    if (m != by_name.end()) out[node] = m->second;
  }
  return out;
}

}  // namespace ptq::pipeline
