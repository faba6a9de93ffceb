// Dynamic emission: DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul, ORT's quantize_dynamic pattern.
#include "ptq/emit/dynamic_emitter.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/passes/prepare.h"
#include "weights.h"

namespace ptq::emit {
namespace {

struct DynamicInput {
  ir::ValueId q = ir::kNone, scale = ir::kNone, zero_point = ir::kNone;
};

struct StoredWeight {
  ir::ValueId q = ir::kNone, scale = ir::kNone, zero_point = ir::kNone;
};

void set_type(ir::Graph& g, ir::ValueId v, DType t, const std::optional<ir::Shape>& shape) {
  g.value(v).type.known = true;
  g.value(v).type.dtype = t;
  g.value(v).type.shape = shape;
}

class DynamicEmitter {
 public:
  DynamicEmitter(ir::Model& m, const passes::QuantPlan& plan, const quant::QuantConfig& config)
      : g_(m.graph), plan_(plan), config_(config) {}

  EmitSummary run() {
    for (const passes::NodeQuant& q : plan_.nodes)
      if (dynamic_candidate(g_, q)) rewrite(q);
    passes::Changes dead;
    passes::remove_dead_code(g_, dead);
    ir::debug_verify(g_);
    return summary_;
  }

 private:
  // One DynamicQuantizeLinear per activation, shared by every MatMul reading it (as ORT writes).
  const DynamicInput& quantized_input(ir::ValueId x) {
    auto [it, fresh] = inputs_.try_emplace(x);
    if (!fresh) return it->second;
    const std::string name = g_.value(x).name;
    const ir::NodeId n = g_.add_node(
        "DynamicQuantizeLinear", {x},
        {g_.unique_name(name + "_quantized"), g_.unique_name(name + "_scale"), g_.unique_name(name + "_zero_point")},
        {}, g_.unique_name(name + "_DynamicQuantizeLinear"));
    const std::vector<ir::ValueId>& out = g_.node(n).outputs;
    set_type(g_, out[0], DType::kUint8, g_.value(x).type.shape);
    set_type(g_, out[1], DType::kFloat, ir::Shape{});
    set_type(g_, out[2], DType::kUint8, ir::Shape{});
    it->second = {out[0], out[1], out[2]};
    ++summary_.activation_pairs;
    return it->second;
  }

  // int8 codes, scales and zero points of a weight; stored once however many nodes read it.
  const StoredWeight& stored_weight(ir::ValueId wv, const passes::WeightSpec& spec) {
    auto [it, fresh] = weights_.try_emplace(std::make_tuple(wv, spec.axis, spec.reduce_range));
    if (!fresh) return it->second;
    const QuantizedWeight qw = quantize_weight(*g_.constant(wv), spec.axis, config_.weight_type,
                                               config_.weight_symmetry, {}, spec.reduce_range);
    const bool per_channel = qw.axis >= 0;
    const std::string base = g_.value(wv).name;
    it->second.q = g_.add_initializer(g_.unique_name(base + "_quantized"), qw.q);
    it->second.scale = g_.add_initializer(g_.unique_name(base + "_scale"), scale_tensor(qw.scale, per_channel));
    it->second.zero_point = g_.add_initializer(g_.unique_name(base + "_zero_point"),
                                               zero_point_tensor(qw.zero_point, config_.weight_type, per_channel));
    ++summary_.weights;
    return it->second;
  }

  void rewrite(const passes::NodeQuant& q) {
    const ir::Node& n = g_.node(q.node);
    const ir::ValueId x = n.inputs[0], wv = n.inputs[1], y = n.outputs[0];
    const std::string base = n.name.empty() ? g_.value(y).name : n.name;
    const StoredWeight w = stored_weight(wv, q.weights.front());
    const DynamicInput in = quantized_input(x);
    const std::optional<ir::Shape> y_shape = g_.value(y).type.shape;
    const std::string y_name = g_.value(y).name;
    const ir::NodeId mm = g_.add_node("MatMulInteger", {in.q, w.q, in.zero_point, w.zero_point},
                                      {g_.unique_name(y_name + "_int32")}, {}, g_.unique_name(base + "_quant"));
    const ir::ValueId acc = g_.node(mm).outputs[0];
    set_type(g_, acc, DType::kInt32, y_shape);
    const ir::NodeId cast = g_.add_node("Cast", {acc}, {g_.unique_name(y_name + "_int32_cast")},
                                        {ir::Attribute::make_int("to", static_cast<int64_t>(DType::kFloat))},
                                        g_.unique_name(base + "_cast"));
    const ir::ValueId accf = g_.node(cast).outputs[0];
    set_type(g_, accf, DType::kFloat, y_shape);
    const ir::NodeId sm = g_.add_node("Mul", {in.scale, w.scale}, {g_.unique_name(base + "_scales_mul")}, {},
                                      g_.unique_name(base + "_scales_mul"));
    const ir::ValueId scales = g_.node(sm).outputs[0];
    set_type(g_, scales, DType::kFloat, std::nullopt);
    const ir::NodeId om = g_.add_node("Mul", {accf, scales}, {g_.unique_name(y_name + "_dynamic")}, {},
                                      g_.unique_name(base + "_output_scale_mul"));
    const ir::ValueId out = g_.node(om).outputs[0];
    g_.value(out).type = g_.value(y).type;
    // The Mul's output takes over y (and its name, so graph outputs and labels stay as they were).
    g_.replace_all_uses(y, out);
    std::replace(g_.outputs.begin(), g_.outputs.end(), y, out);
    g_.remove_node(q.node);
    g_.rename_value(out, y_name);
    ++summary_.quantized_nodes;
  }

  ir::Graph& g_;
  const passes::QuantPlan& plan_;
  const quant::QuantConfig& config_;
  std::map<ir::ValueId, DynamicInput> inputs_;
  std::map<std::tuple<ir::ValueId, int64_t, bool>, StoredWeight> weights_;
  EmitSummary summary_;
};

}  // namespace

bool dynamic_candidate(const ir::Graph& graph, const passes::NodeQuant& q) {
  const ir::Node& n = graph.node(q.node);
  if (n.op_type != "MatMul" || n.inputs.size() != 2 || q.weights.size() != 1) return false;
  const passes::WeightSpec& spec = q.weights.front();
  if (spec.slot != 1 || spec.as_activation) return false;
  const Tensor* w = graph.constant(n.inputs[1]);
  // MatMulInteger's b_zero_point is scalar or one per column of a 2-D B.
  return w && w->dtype() == DType::kFloat && w->rank() == 2;
}

EmitSummary emit_dynamic(ir::Model& model, const passes::QuantPlan& plan, const quant::QuantConfig& config) {
  PTQ_CHECK(model.opset() >= 11, UnsupportedError, "dynamic quantization needs opset >= 11, the model has ",
            model.opset());
  PTQ_CHECK(config.weight_type == DType::kInt8 || config.weight_type == DType::kUint8, UnsupportedError,
            "dynamic quantization stores weights as int8 or uint8");
  return DynamicEmitter(model, plan, config).run();
}

}  // namespace ptq::emit
