// Dynamic emission: DynamicQuantizeLinear -> MatMulInteger/ConvInteger -> Cast -> Mul, ORT's quantize_dynamic pattern.
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

struct ChannelQuantizedWeight {
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

  // int8 codes, scales and zero points of a weight as the integer op reads it, stored once however
  // many nodes read it: MatMul B [K, N] per column; Gemm B transposed to [K, N] when transB;
  // Conv W per output channel with a scalar zero point (ConvInteger's) and scales shaped
  // [M, 1, ...] to broadcast over the NCHW output.
  const ChannelQuantizedWeight& stored_weight(const ir::Node& n, const passes::WeightSpec& spec) {
    const ir::ValueId wv = n.inputs[1];
    const bool conv = n.op_type == "Conv", trans = n.op_type == "Gemm" && n.attr_int("transB", 0);
    auto [it, fresh] = weights_.try_emplace(std::make_tuple(wv, spec.axis, spec.reduce_range, conv || trans));
    if (!fresh) return it->second;
    Tensor w = *g_.constant(wv);
    int64_t axis = spec.axis;
    if (trans) {
      const int64_t rows = w.dims()[0], cols = w.dims()[1];
      Tensor t = Tensor::empty(DType::kFloat, {cols, rows});
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) t.mutable_data<float>()[j * rows + i] = w.data<float>()[i * cols + j];
      w = std::move(t);
      axis = axis < 0 ? -1 : 1;
    }
    const QuantizedWeight qw =
        quantize_weight(w, axis, config_.weight_type, config_.weight_symmetry, {}, spec.reduce_range);
    const bool per_channel = qw.axis >= 0;
    const std::string base = g_.value(wv).name;
    it->second.q = g_.add_initializer(g_.unique_name(base + "_quantized"), qw.q);
    Tensor scale = scale_tensor(qw.scale, per_channel);
    Tensor zero = zero_point_tensor(qw.zero_point, config_.weight_type, per_channel);
    if (conv && per_channel) {
      Dims d(w.rank() - 1, 1);
      d[0] = static_cast<int64_t>(qw.scale.size());
      scale = Tensor::from_vector<float>(d, qw.scale);
      zero = zero_point_tensor({0}, config_.weight_type, false);  // symmetric: every channel's is 0
    }
    it->second.scale = g_.add_initializer(g_.unique_name(base + "_scale"), std::move(scale));
    it->second.zero_point = g_.add_initializer(g_.unique_name(base + "_zero_point"), std::move(zero));
    ++summary_.weights;
    return it->second;
  }

  void rewrite(const passes::NodeQuant& q) {
    const ir::Node n = g_.node(q.node);  // a copy: adding nodes below may move the node table
    const ir::ValueId x = n.inputs[0], y = n.outputs[0];
    const ir::ValueId bias = n.inputs.size() > 2 ? n.inputs[2] : ir::kNone;
    const std::string base = n.name.empty() ? g_.value(y).name : n.name;
    const ChannelQuantizedWeight w = stored_weight(n, q.weights.front());
    const bool conv = n.op_type == "Conv";
    const DynamicInput in = quantized_input(x);
    const std::optional<ir::Shape> y_shape = g_.value(y).type.shape;
    const std::string y_name = g_.value(y).name;
    std::vector<ir::Attribute> attrs;
    if (conv)
      for (const ir::Attribute& a : n.attributes)
        if (a.name != "kernel_shape") attrs.push_back(a);  // ConvInteger takes Conv's attributes
    const ir::NodeId mm = g_.add_node(conv ? "ConvInteger" : "MatMulInteger", {in.q, w.q, in.zero_point, w.zero_point},
                                      {g_.unique_name(y_name + "_int32")}, std::move(attrs), g_.unique_name(base + "_quant"));
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
    ir::ValueId out = g_.node(om).outputs[0];
    if (bias != ir::kNone) {
      ir::ValueId b = bias;
      if (conv) {  // [M] -> [M, 1, ...] over the NCHW output
        const Tensor& bt = *g_.constant(bias);
        Dims d(g_.constant(n.inputs[1])->rank() - 1, 1);
        d[0] = static_cast<int64_t>(bt.numel());
        b = g_.add_initializer(g_.unique_name(g_.value(bias).name + "_reshaped"),
                               Tensor::from_vector<float>(d, std::vector<float>(bt.data<float>(), bt.data<float>() + bt.numel())));
      }
      g_.value(out).type = g_.value(y).type;
      const ir::NodeId add = g_.add_node("Add", {out, b}, {g_.unique_name(y_name + "_biased")}, {},
                                         g_.unique_name(base + "_bias_add"));
      out = g_.node(add).outputs[0];
    }
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
  std::map<std::tuple<ir::ValueId, int64_t, bool, bool>, ChannelQuantizedWeight> weights_;  // (weight, axis, 7-bit, reshaped)
  EmitSummary summary_;
};

}  // namespace

bool dynamic_candidate(const ir::Graph& graph, const passes::NodeQuant& q) {
  const ir::Node& n = graph.node(q.node);
  if (q.weights.size() != 1 || q.weights.front().slot != 1 || q.weights.front().as_activation) return false;
  const Tensor* w = n.inputs.size() > 1 ? graph.constant(n.inputs[1]) : nullptr;
  if (!w || w->dtype() != DType::kFloat) return false;
  const Tensor* b = n.inputs.size() > 2 && n.inputs[2] != ir::kNone ? graph.constant(n.inputs[2]) : nullptr;
  const bool no_bias = n.inputs.size() < 3 || n.inputs[2] == ir::kNone;
  // MatMulInteger's b_zero_point is scalar or one per column of a 2-D B.
  if (n.op_type == "MatMul") return n.inputs.size() == 2 && w->rank() == 2;
  // Gemm as MatMulInteger (+ Add): plain A · B (+ 1-D C).
  if (n.op_type == "Gemm")
    return w->rank() == 2 && !n.attr_int("transA", 0) && n.attr_float("alpha", 1.f) == 1.f &&
           n.attr_float("beta", 1.f) == 1.f && (no_bias || (b && b->dtype() == DType::kFloat && b->rank() == 1));
  if (n.op_type == "Conv") return w->rank() >= 3 && (no_bias || (b && b->dtype() == DType::kFloat && b->rank() == 1));
  return false;
}

EmitSummary emit_dynamic(ir::Model& model, const passes::QuantPlan& plan, const quant::QuantConfig& config) {
  PTQ_CHECK(model.opset() >= 11, UnsupportedError, "dynamic quantization needs opset >= 11, the model has ",
            model.opset());
  PTQ_CHECK(config.weight_type == DType::kInt8 || config.weight_type == DType::kUint8, UnsupportedError,
            "dynamic quantization stores weights as int8 or uint8");
  return DynamicEmitter(model, plan, config).run();
}

}  // namespace ptq::emit
