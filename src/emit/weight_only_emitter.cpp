// Weight-only emission: MatMul/Gemm -> MatMulNBits, Gather tables -> GatherBlockQuantized (com.microsoft).
#include "ptq/emit/weight_only_emitter.h"

#include <algorithm>
#include <map>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/passes/prepare.h"
#include "ptq/quant/blockwise.h"

namespace ptq::emit {
namespace {

constexpr const char* kMs = "com.microsoft";

struct BlockQuantizedWeight {
  ir::ValueId data = ir::kNone, scales = ir::kNone, zero_points = ir::kNone;
  int64_t k = 0, n = 0;
};

Tensor bytes_tensor(Dims dims, const std::vector<uint8_t>& v) { return Tensor::from_vector<uint8_t>(std::move(dims), v); }

const Tensor* float_constant(const ir::Graph& g, const ir::Node& n, size_t slot) {
  if (n.inputs.size() <= slot || n.inputs[slot] == ir::kNone) return nullptr;
  const Tensor* t = g.constant(n.inputs[slot]);
  return t && t->dtype() == DType::kFloat ? t : nullptr;
}

class WeightOnlyEmitter {
 public:
  WeightOnlyEmitter(ir::Model& m, const passes::QuantPlan& plan, const WeightOnlyConfig& config)
      : model_(m), g_(m.graph), plan_(plan), config_(config) {}

  EmitSummary run() {
    bool any = false;
    for (const passes::NodeQuant& q : plan_.nodes) {
      if (!weight_only_reason(g_, q.node, config_).empty()) continue;
      if (g_.node(q.node).op_type == "Gather") gather(q.node);
      else matmul(q.node);
      any = true;
    }
    if (any && model_.opset(kMs) == 0) model_.opset_import.push_back({kMs, 1});
    passes::Changes dead;
    passes::remove_dead_code(g_, dead);
    ir::debug_verify(g_);
    return summary_;
  }

 private:
  std::string suffix() const { return str_cat("_Q", config_.bits); }

  // W as MatMulNBits reads it: [K, N] quantized along K per column n (Gemm's transB: [N, K]).
  // With statistics for its input x, by GPTQ (a weight read by several nodes: the first one's x).
  const BlockQuantizedWeight& stored_matmul_weight(ir::ValueId wv, bool trans, ir::ValueId x) {
    auto [it, fresh] = weights_.try_emplace({wv, trans});
    if (!fresh) return it->second;
    const Tensor& w = *g_.constant(wv);
    const int64_t r0 = w.dims()[0], r1 = w.dims()[1];
    const int64_t k = trans ? r1 : r0, n = trans ? r0 : r1;
    const auto gram = config_.grams ? config_.grams->find(x) : std::map<ir::ValueId, std::vector<double>>::const_iterator{};
    const bool gptq = config_.grams && gram != config_.grams->end() && static_cast<int64_t>(gram->second.size()) == k * k;
    const quant::BlockQuantized q =
        gptq ? quant::quantize_blockwise_gptq(w.data<float>(), n, k, trans ? k : 1, trans ? 1 : n, gram->second,
                                              config_.bits, config_.block_size, config_.symmetric, config_.clip_search)
             : quant::quantize_blockwise(w.data<float>(), n, k, trans ? k : 1, trans ? 1 : n, config_.bits,
                                         config_.block_size, config_.symmetric, config_.clip_search);
    const std::string base = g_.value(wv).name;
    BlockQuantizedWeight& s = it->second;
    s.k = k;
    s.n = n;
    s.data = g_.add_initializer(g_.unique_name(base + suffix()), bytes_tensor({n, q.blocks(), q.blob_bytes()}, q.data));
    s.scales = g_.add_initializer(g_.unique_name(base + "_scales"), Tensor::from_vector<float>({n, q.blocks()}, q.scales));
    if (!config_.symmetric)
      s.zero_points = g_.add_initializer(g_.unique_name(base + "_zero_points"),
                                         bytes_tensor({n, q.zero_point_bytes()}, q.zero_points));
    ++summary_.weights;
    return s;
  }

  // Replaces node `id`'s only output y by the new node's output (keeping y's name and type).
  void take_over(ir::NodeId id, ir::NodeId replacement) {
    const ir::ValueId y = g_.node(id).outputs[0];
    const ir::ValueId out = g_.node(replacement).outputs[0];
    const std::string y_name = g_.value(y).name;
    g_.value(out).type = g_.value(y).type;
    g_.replace_all_uses(y, out);
    std::replace(g_.outputs.begin(), g_.outputs.end(), y, out);
    g_.remove_node(id);
    g_.rename_value(out, y_name);
    ++summary_.quantized_nodes;
  }

  void matmul(ir::NodeId id) {
    const ir::Node n = g_.node(id);  // a copy: adding nodes may move the node table
    const bool trans = n.op_type == "Gemm" && n.attr_int("transB", 0) != 0;
    const BlockQuantizedWeight& w = stored_matmul_weight(n.inputs[1], trans, n.inputs[0]);
    const std::string base = n.name.empty() ? g_.value(n.outputs[0]).name : n.name;
    std::vector<ir::ValueId> inputs = {n.inputs[0], w.data, w.scales, w.zero_points};
    if (n.op_type == "Gemm" && n.inputs.size() > 2 && n.inputs[2] != ir::kNone) {
      inputs.push_back(ir::kNone);  // g_idx
      inputs.push_back(n.inputs[2]);  // bias
    }
    while (inputs.back() == ir::kNone) inputs.pop_back();
    const ir::NodeId nb = g_.add_node(
        "MatMulNBits", inputs, {g_.unique_name(g_.value(n.outputs[0]).name + suffix())},
        {ir::Attribute::make_int("K", w.k), ir::Attribute::make_int("N", w.n),
         ir::Attribute::make_int("bits", config_.bits), ir::Attribute::make_int("block_size", config_.block_size)},
        g_.unique_name(base + suffix()), kMs);
    take_over(id, nb);
  }

  void gather(ir::NodeId id) {
    const ir::Node n = g_.node(id);
    const ir::ValueId tv = n.inputs[0];
    const Tensor& t = *g_.constant(tv);
    const int64_t rows = t.dims()[0], cols = t.dims()[1];
    const quant::BlockQuantized q = quant::quantize_blockwise(t.data<float>(), rows, cols, cols, 1, config_.bits,
                                                              config_.block_size, config_.symmetric, config_.clip_search);
    const std::string base = g_.value(tv).name;
    // cols % block_size == 0 (weight_only_reason): the [rows, blocks, blob] codes are [rows, cols·bits/8].
    std::vector<ir::ValueId> inputs = {
        g_.add_initializer(g_.unique_name(base + suffix()), bytes_tensor({rows, cols * config_.bits / 8}, q.data)),
        n.inputs[1], g_.add_initializer(g_.unique_name(base + "_scales"),
                                        Tensor::from_vector<float>({rows, q.blocks()}, q.scales))};
    if (!config_.symmetric)
      inputs.push_back(g_.add_initializer(g_.unique_name(base + "_zero_points"),
                                          bytes_tensor({rows, q.zero_point_bytes()}, q.zero_points)));
    ++summary_.weights;
    const std::string name = n.name.empty() ? g_.value(n.outputs[0]).name : n.name;
    const ir::NodeId gb = g_.add_node(
        "GatherBlockQuantized", inputs, {g_.unique_name(g_.value(n.outputs[0]).name + suffix())},
        {ir::Attribute::make_int("bits", config_.bits), ir::Attribute::make_int("block_size", config_.block_size),
         ir::Attribute::make_int("gather_axis", 0), ir::Attribute::make_int("quantize_axis", 1)},
        g_.unique_name(name + suffix()), kMs);
    take_over(id, gb);
  }

  ir::Model& model_;
  ir::Graph& g_;
  const passes::QuantPlan& plan_;
  const WeightOnlyConfig& config_;
  std::map<std::pair<ir::ValueId, bool>, BlockQuantizedWeight> weights_;  // (weight, transposed)
  EmitSummary summary_;
};

}  // namespace

std::string weight_only_reason(const ir::Graph& g, ir::NodeId id, const WeightOnlyConfig& config) {
  const ir::Node& n = g.node(id);
  if (n.op_type == "Gather") {
    const Tensor* t = float_constant(g, n, 0);
    if (!t || t->rank() != 2 || n.attr_int("axis", 0) != 0) return "weight-only: only a constant 2-D table gathered on axis 0";
    if (t->dims()[1] % config.block_size != 0)
      return str_cat("weight-only: table width ", t->dims()[1], " is not a multiple of --block-size ", config.block_size);
    return {};
  }
  if (n.op_type != "MatMul" && n.op_type != "Gemm") return str_cat("weight-only mode has no blockwise ", n.op_type, " kernel");
  const Tensor* w = float_constant(g, n, 1);
  if (!w || w->rank() != 2) return "weight-only: B is not a constant 2-D float weight";
  if (n.op_type == "MatMul") return n.inputs.size() == 2 ? std::string() : "weight-only: unexpected inputs";
  const Tensor* c = float_constant(g, n, 2);
  const bool no_bias = n.inputs.size() < 3 || n.inputs[2] == ir::kNone;
  const int64_t cols = n.attr_int("transB", 0) ? w->dims()[0] : w->dims()[1];
  if (n.attr_int("transA", 0) || n.attr_float("alpha", 1.f) != 1.f || n.attr_float("beta", 1.f) != 1.f ||
      !(no_bias || (c && c->rank() == 1 && c->dims()[0] == cols)))
    return "weight-only: Gemm with transA, alpha/beta != 1 or a bias that is not one value per column";
  return {};
}

EmitSummary emit_weight_only(ir::Model& model, const passes::QuantPlan& plan, const WeightOnlyConfig& config) {
  PTQ_CHECK(config.bits == 4 || config.bits == 8, UsageError, "--bits must be 4 or 8, not ", config.bits);
  PTQ_CHECK(config.block_size >= 16 && (config.block_size & (config.block_size - 1)) == 0, UsageError,
            "--block-size must be a power of two >= 16, not ", config.block_size);
  return WeightOnlyEmitter(model, plan, config).run();
}

}  // namespace ptq::emit
