// QDQ emission: activation Q->DQ pairs, integer weights, int32 biases, in a deterministic order.
#include "ptq/emit/qdq_emitter.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "ptq/core/error.h"
#include "ptq/ir/verify.h"
#include "ptq/passes/activation_inputs.h"
#include "ptq/passes/prepare.h"
#include "bias_correction.h"
#include "weights.h"

namespace ptq::emit {
namespace {

// How ORT's u8×s8 GEMM meets node `n`'s weights (weights.h), where they can saturate a K pair:
// Conv (not depthwise, which has its own exact kernel), MatMul and Gemm with a constant float
// weight, uint8 activations and symmetric int8 weights, with --reduce-range auto.
std::optional<PairLayout> pair_layout(const ir::Graph& g, const ir::Node& n, const quant::QuantConfig& config) {
  if (!quant::pair_safe_weights(config) || !n.is_default_domain() || n.inputs.size() < 2) return std::nullopt;
  const Tensor* w = g.constant(n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat) return std::nullopt;
  if (n.op_type == "Conv" && w->rank() >= 3) {
    const bool depthwise = w->dims()[1] == 1 && w->dims()[0] == n.attr_int("group", 1);
    if (!depthwise) return PairLayout::kConv;
  } else if (n.op_type == "MatMul" && w->rank() >= 2) {
    return PairLayout::kKByN;
  } else if (n.op_type == "Gemm" && w->rank() == 2) {
    return n.attr_int("transB", 0) ? PairLayout::kNByK : PairLayout::kKByN;
  }
  return std::nullopt;
}

// Whether node `n`'s input 0 holds its K on axis 1, so that per-channel maxima of the input
// (gathered on axis 1) are the K pairs' code bounds: Conv, and Gemm without transA (not MatMul,
// whose K is the input's last axis).
bool k_on_input_axis1(const ir::Node& n) {
  return n.op_type == "Conv" || (n.op_type == "Gemm" && !n.attr_int("transA", 0));
}

struct ActParams {
  quant::QuantParams qp;
  ir::ValueId scale = ir::kNone;
  ir::ValueId zero_point = ir::kNone;
};

class Emitter {
 public:
  Emitter(ir::Model& m, const passes::QuantPlan& plan, const passes::RangeMap& ranges,
          const quant::QuantConfig& config, const ChannelMeans& means, const ChannelMeans& bias_shift)
      : g_(m.graph), plan_(plan), ranges_(ranges), config_(config), means_(means), bias_shift_(bias_shift) {
    for (const auto& [v, r] : plan_.tied) tied_.insert(v), tied_.insert(r);
    for (const passes::NodeQuant& q : plan_.nodes) planned_[q.node] = &q;
  }

  EmitSummary run() {
    activation_params();
    absorb_affine_tails();
    float_hardswishes();
    for (const passes::NodeQuant& q : plan_.nodes) node_constants(q);
    for (ir::ValueId v : plan_.activations)
      if (params_.count(v) && !absorbed_.count(v)) insert_pair(v);
    for (ir::ValueId v : moved_) insert_pair(v);
    summary_.quantized_nodes = plan_.nodes.size();
    passes::Changes dead;
    passes::remove_dead_code(g_, dead);
    ir::debug_verify(g_);
    return summary_;
  }

 private:
  ir::ValueId rep(ir::ValueId v) const {
    auto it = plan_.tied.find(v);
    return it == plan_.tied.end() ? v : it->second;
  }

  // Scale and zero point for every planned activation, one pair of initializers per tie group.
  void activation_params() {
    std::map<ir::ValueId, quant::Range> group_range;
    std::map<ir::ValueId, bool> group_missing;
    for (ir::ValueId v : plan_.activations) {
      const ir::ValueId r = rep(v);
      auto fixed = plan_.fixed_ranges.find(v);
      auto it = ranges_.find(g_.value(v).name);
      if (fixed != plan_.fixed_ranges.end()) {
        group_range[r] = group_range.count(r) ? passes::range_union(group_range[r], fixed->second) : fixed->second;
      } else if (it != ranges_.end()) {
        group_range[r] = group_range.count(r) ? passes::range_union(group_range[r], it->second) : it->second;
      } else {
        group_missing[r] = true;
      }
    }
    std::map<ir::ValueId, ActParams> by_group;
    for (ir::ValueId v : plan_.activations) {
      const ir::ValueId r = rep(v);
      if (group_missing[r] || !group_range.count(r)) {
        summary_.notes.push_back(str_cat("tensor '", g_.value(v).name, "' has no calibrated range; left fp32"));
        continue;
      }
      auto [it, fresh] = by_group.try_emplace(r);
      if (fresh) {
        const quant::Range range = group_range[r];
        it->second.qp = quant::compute_scale_zp(range.min, range.max, config_.activation_type,
                                                config_.activation_symmetry);
        const std::string base = g_.value(r).name;
        it->second.scale = g_.add_initializer(g_.unique_name(base + "_scale"),
                                              scale_tensor({it->second.qp.scale}, false));
        it->second.zero_point = g_.add_initializer(
            g_.unique_name(base + "_zero_point"),
            zero_point_tensor({it->second.qp.zero_point}, config_.activation_type, false));
      }
      params_[v] = it->second;
    }
  }

  // A float constant of one element at input `slot` of `n`, if there is one.
  std::optional<double> scalar_constant(const ir::Node& n, size_t slot) const {
    const Tensor* t = g_.constant(slot < n.inputs.size() ? n.inputs[slot] : ir::kNone);
    if (!t || t->dtype() != DType::kFloat || t->numel() != 1) return std::nullopt;
    return t->data<float>()[0];
  }

  // h -> Mul(a) or Div(1/a) -> Add(b) -> out (either step may be missing), each the previous one's
  // sole reader, a and b scalar constants: the float tensor h that `out` is an affine function of,
  // or kNone.
  ir::ValueId affine_source(ir::ValueId out, double& a, double& b) const {
    a = 1, b = 0;
    ir::ValueId v = out;
    for (const char* op : {"Add", "Mul"}) {
      const ir::Node* p = g_.producer(v);
      const bool add = std::string(op) == "Add";
      if (!p || !p->is_default_domain() || p->inputs.size() != 2 ||
          !(p->op_type == op || (!add && p->op_type == "Div")))
        continue;
      for (size_t slot = 0; slot < (p->op_type == "Div" ? 1u : 2u); ++slot) {
        const std::optional<double> c = scalar_constant(*p, 1 - slot);
        const ir::ValueId x = p->inputs[slot];
        if (!c || x == ir::kNone || g_.constant(x) || g_.value(x).uses.size() != 1) continue;
        if (add) b = *c;  // out = a·x + b: the Add comes after the Mul
        else a = p->op_type == "Div" ? 1.0 / *c : *c;
        v = x;
        break;
      }
    }
    return v == out ? ir::kNone : v;
  }

  // A quantized tensor h followed only by a scalar Mul (or Div) and/or Add before the next Q
  // (PP-OCRv4-rec's affine blocks after a HardSwish): out = a·h + b with a > 0 quantizes as h on the grid
  // s_h = s_out / a with zero point z_out + round(b / s_out), read back through out's DQ; the
  // float Mul and Add between the two pairs disappear. The rounding r = b - s_out·round(b / s_out)
  // left in the DQ's output goes into the bias of every reading Conv (r·Σw per output channel,
  // exact where the Conv reads no padding); a tail with other readers stays as it was. Where h is
  // the product of a float HardSwish, float_hardswishes takes the tail.
  void absorb_affine_tails() {
    if (config_.activation_symmetry != quant::Symmetry::kAsymmetric) return;
    for (ir::ValueId out : plan_.activations) {
      double a = 1, b = 0;
      const ir::ValueId h = params_.count(out) && !tied_.count(out) ? affine_source(out, a, b) : ir::kNone;
      if (h == ir::kNone || tied_.count(h) || absorbed_.count(h) || g_.is_output(out)) continue;
      if (!(a > 0) || !std::isfinite(a) || !std::isfinite(b)) continue;
      if (params_.count(h)) absorb(h, out, a, b);
      else if (float_hardswish(h)) float_tails_.push_back({h, out, a, b});
    }
  }

  // The parts of the written-out HardSwish whose Mul writes h, when its Add, Clip and Mul all stay
  // float (--hardswish fp32, or nodes the placement search kept fp32).
  std::optional<passes::HardSwishParts> float_hardswish(ir::ValueId h) const {
    const ir::Node* mul = g_.producer(h);
    if (!mul || mul->op_type != "Mul") return std::nullopt;
    const std::optional<passes::HardSwishParts> parts = passes::decomposed_hardswish(g_, *mul);
    if (!parts || parts->clip == ir::kNone || planned_.count(parts->add) || planned_.count(parts->clip) ||
        planned_.count(parts->mul))
      return std::nullopt;
    return parts;
  }

  // A float HardSwish whose product h goes into a pair: x·Clip(x + 3, 0, 6) becomes
  // 6·x·HardSigmoid(x) (alpha 1/6, beta 1/2), the 6 in the Q's scale; a scalar scale a and shift b
  // after it become the Q's scale over 6a and a float Add of b / 6a before it, out's grid in h's
  // terms. Unlike absorb_affine_tails this moves no rounding into a reading Conv's bias, which is
  // wrong where that Conv reads padding: PP-OCRv4-rec's depthwise Convs on maps 3 rows high. ORT runs
  // the HardSigmoid in one pass where the Add and the Clip took two, and the tail in one where it
  // took two (ORT has no int8 HardSwish, and the HardSwish op needs opset 14).
  void float_hardswishes() {
    if (config_.activation_symmetry != quant::Symmetry::kAsymmetric) return;
    for (const FloatTail& t : float_tails_) {
      const std::optional<passes::HardSwishParts> parts = float_hardswish(t.h);
      const double c = t.b / (6 * t.a);
      if (!parts || !std::isfinite(c)) continue;
      ir::ValueId u = hardsigmoid_product(*parts, t.h);
      if (c != 0) {
        const std::string base = g_.value(t.h).name;
        const ir::ValueId shift =
            g_.add_initializer(g_.unique_name(base + "_shift"), Tensor::scalar(static_cast<float>(c)));
        const ir::NodeId add =
            g_.add_node("Add", {u, shift}, {g_.unique_name(base + "_shifted")}, {}, g_.unique_name(base + "_Add"));
        g_.value(g_.node(add).outputs[0]).type = g_.value(u).type;
        u = g_.node(add).outputs[0];
      }
      const quant::QuantParams qo = params_.at(t.out).qp;
      params_[u] = new_params(g_.value(u).name, {static_cast<float>(qo.scale / (6 * t.a)), qo.zero_point});
      tails_[u] = t.out;
      absorbed_.insert(t.out);
      moved_.push_back(u);
      ++summary_.float_hardswishes;
    }
    // A product with a pair of its own (a quantized node reads it): its Q's scale over 6.
    for (ir::ValueId h : plan_.activations) {
      const std::optional<passes::HardSwishParts> parts =
          params_.count(h) && !tied_.count(h) && !absorbed_.count(h) && !g_.is_output(h) ? float_hardswish(h)
                                                                                         : std::nullopt;
      if (!parts) continue;
      const ir::ValueId h6 = hardsigmoid_product(*parts, h);
      const ActParams& p = params_.at(h);
      params_[h6] = new_params(g_.value(h6).name, {static_cast<float>(p.qp.scale / 6.0), p.qp.zero_point});
      const auto tail = tails_.find(h);
      tails_[h6] = tail == tails_.end() ? h : tail->second;
      if (tail != tails_.end()) tails_.erase(tail);
      absorbed_.insert(h);
      moved_.push_back(h6);
      ++summary_.float_hardswishes;
    }
  }

  // x·HardSigmoid(x) for the HardSwish `parts` whose product is h: h / 6.
  ir::ValueId hardsigmoid_product(const passes::HardSwishParts& parts, ir::ValueId h) {
    const std::string base = g_.value(h).name;
    const ir::NodeId hs = g_.add_node(
        "HardSigmoid", {parts.x}, {g_.unique_name(base + "_hardsigmoid")},
        {ir::Attribute::make_float("alpha", 1.f / 6.f), ir::Attribute::make_float("beta", 0.5f)},
        g_.unique_name(base + "_HardSigmoid"));
    const ir::NodeId mul = g_.add_node("Mul", {parts.x, g_.node(hs).outputs[0]}, {g_.unique_name(base + "_over_6")},
                                       {}, g_.unique_name(base + "_Mul"));
    const ir::ValueId h6 = g_.node(mul).outputs[0];
    g_.value(h6).type = g_.value(h).type;
    return h6;
  }

  // Scale and zero point initializers for `qp`, named after `base`.
  ActParams new_params(const std::string& base, const quant::QuantParams& qp) {
    ActParams p;
    p.qp = qp;
    p.scale = g_.add_initializer(g_.unique_name(base + "_scale"), scale_tensor({qp.scale}, false));
    p.zero_point = g_.add_initializer(g_.unique_name(base + "_zero_point"),
                                      zero_point_tensor({qp.zero_point}, config_.activation_type, false));
    return p;
  }

  // Gives h the grid of out = a·h + b (a > 0 and b finite, checked by absorb_affine_tails), unless
  // the codes leave the range or a reader cannot take the rounding in its bias.
  void absorb(ir::ValueId h, ir::ValueId out, double a, double b) {
    const quant::IntRange codes = quant::full_range(config_.activation_type);
    const quant::QuantParams qo = params_.at(out).qp;
    const double k = std::nearbyint(b / qo.scale);
    const double z = qo.zero_point + k;
    const double r = b - k * qo.scale;
    if (!(z >= codes.qmin && z <= codes.qmax)) return;
    std::map<ir::NodeId, std::vector<double>> shifts;
    // Exact codes (r = 0) need no reader's bias.
    for (const ir::Use& u : g_.value(out).uses) {
      if (r == 0) break;
      const ir::Node& n = g_.node(u.node);
      const auto q = planned_.find(u.node);
      const Tensor* w = n.op_type == "Conv" && n.inputs.size() > 1 ? g_.constant(n.inputs[1]) : nullptr;
      if (q == planned_.end() || u.slot != 0 || q->second->bias_slot < 0 || q->second->bias_node != ir::kNone ||
          !w || w->dtype() != DType::kFloat || w->rank() < 3)
        return;
      const size_t m = static_cast<size_t>(w->dims()[0]), per = w->numel() / std::max<size_t>(m, 1);
      std::vector<double>& sh = shifts[u.node];
      sh.assign(m, 0.0);
      for (size_t c = 0; c < m; ++c)
        for (size_t i = 0; i < per; ++i) sh[c] += r * w->data<float>()[c * per + i];
    }
    // A Conv reads one tensor on input 0, so at most one tail shifts its bias.
    for (auto& [node, sh] : shifts) tail_shift_[node] = std::move(sh);
    params_[h] = new_params(g_.value(h).name, {static_cast<float>(qo.scale / a), static_cast<int32_t>(z)});
    tails_[h] = out;
    absorbed_.insert(out);
    ++summary_.affine_tails;
  }

  ir::ValueId add_dequantize(const std::string& base, ir::ValueId q, ir::ValueId scale, ir::ValueId zp,
                             int64_t axis) {
    std::vector<ir::Attribute> attrs;
    // DequantizeLinear's axis defaults to 1: always write it so Conv weights are never wrong.
    attrs.push_back(ir::Attribute::make_int("axis", axis < 0 ? 0 : axis));
    const ir::NodeId dq = g_.add_node("DequantizeLinear", {q, scale, zp}, {g_.unique_name(base + "_dequantized")},
                                      std::move(attrs), g_.unique_name(base + "_DequantizeLinear"));
    return g_.node(dq).outputs[0];
  }

  ir::ValueId emit_weight(const std::string& base, const QuantizedWeight& w, DType type) {
    const bool per_channel = w.axis >= 0;
    Tensor q = w.q;
    const ir::ValueId qv = g_.add_initializer(g_.unique_name(base + "_quantized"), std::move(q));
    const ir::ValueId s = g_.add_initializer(g_.unique_name(base + "_scale"), scale_tensor(w.scale, per_channel));
    const ir::ValueId z = g_.add_initializer(g_.unique_name(base + "_zero_point"),
                                             zero_point_tensor(w.zero_point, type, per_channel));
    return add_dequantize(base, qv, s, z, w.axis);
  }

  // Per weight channel (or one value per-tensor): the smallest scale with which ORT's u8×s8
  // kernels on x86 without VNNI cannot saturate a K pair (weights.h), for the nodes ORT runs
  // through them (pair_layout), unless --reduce-range or --no-reduce-range. Where the input's
  // range has per-channel maxima (Conv, Gemm without transA), each K pair is bounded by its own
  // channels' codes; otherwise by codes up to kPairSafeActivationCode.
  std::vector<float> pair_safe_scales(const ir::Node& n, const passes::WeightSpec& spec, const Tensor& w) const {
    if (spec.slot != 1 || w.dtype() != DType::kFloat) return {};
    const std::optional<PairLayout> layout = pair_layout(g_, n, config_);
    if (!layout) return {};
    std::vector<float> s = pair_safe_weight_scales(w, *layout, input_codes(n, *layout));
    if (s.empty()) return {};
    if (spec.axis < 0) return {*std::max_element(s.begin(), s.end())};
    // The output-channel axis of each layout is the per-channel axis the rules choose.
    const size_t axis_len = static_cast<size_t>(w.dims()[static_cast<size_t>(spec.axis)]);
    return s.size() == axis_len ? s : std::vector<float>{};
  }

  // Whether node `n`'s weight goes out as uint8 (--uint8-weights; quant_config.h): `safe` holds the
  // pair-safe scales (empty when the node reads input data and gets 7-bit weights instead).
  // kWhereCoarse compares the weight noise of the int8 grid ORT's u8×s8 kernels allow with that of the
  // plain grid, Σ s_c² over the channels (every channel holds as many weights).
  bool uint8_weights(const ir::Node& n, const passes::WeightSpec& spec, const Tensor& w,
                     const std::vector<float>& safe) const {
    // (pair_layout checks that slot 1 holds a float constant; constant Add/Mul operands never get here.)
    if (config_.uint8_weights == quant::Uint8Weights::kOff || config_.uint8_weights == quant::Uint8Weights::kAuto ||
        spec.slot != 1 || !pair_layout(g_, n, config_))
      return false;
    if (config_.uint8_weights == quant::Uint8Weights::kOn || spec.reduce_range) return true;
    if (safe.empty()) return false;
    const std::vector<float> free = weight_scales(w, spec.axis, config_.weight_type, config_.weight_symmetry);
    if (free.size() != safe.size()) return false;
    double noise = 0, plain = 0;
    for (size_t c = 0; c < safe.size(); ++c) {
      const double s = std::max(free[c], safe[c]), p = free[c];
      noise += s * s, plain += p * p;
    }
    return plain > 0 && 10.0 * std::log10(noise / plain) > quant::kUint8WeightsLossDb;
  }

  // The largest uint8 code each input channel of `n` reaches: its calibration maximum on the
  // input's grid, at least kPairCodeFloor (empty: no per-channel maxima for this input).
  std::vector<double> input_codes(const ir::Node& n, PairLayout layout) const {
    if (!k_on_input_axis1(n)) return {};
    const ir::ValueId x = n.inputs[0];
    const auto r = ranges_.find(g_.value(x).name);
    const auto p = params_.find(x);
    if (r == ranges_.end() || r->second.channel_max.empty() || p == params_.end()) return {};
    const Tensor& w = *g_.constant(n.inputs[1]);
    const size_t k = layout == PairLayout::kConv ? static_cast<size_t>(w.dims()[1] * n.attr_int("group", 1))
                     : layout == PairLayout::kNByK ? static_cast<size_t>(w.dims()[1])
                                                   : static_cast<size_t>(w.dims()[0]);
    if (r->second.channel_max.size() != k) return {};
    const double scale = p->second.qp.scale, zero = p->second.qp.zero_point;
    std::vector<double> codes(k);
    for (size_t c = 0; c < k; ++c)
      codes[c] = std::clamp(std::ceil(r->second.channel_max[c] / scale + zero), kPairCodeFloor, 255.0);
    return codes;
  }

  // The node whose input the bias is (a MatMul's bias Add, passes::NodeQuant::bias_node), and the bias.
  ir::NodeId bias_holder(const passes::NodeQuant& q) const { return q.bias_node == ir::kNone ? q.node : q.bias_node; }
  ir::ValueId bias_value(const passes::NodeQuant& q) const {
    return q.bias_slot >= 0 ? g_.node(bias_holder(q)).inputs[static_cast<size_t>(q.bias_slot)] : ir::kNone;
  }

  // Weights, constant operands and biases of one node, rewired to DequantizeLinear outputs.
  void node_constants(const passes::NodeQuant& q) {
    const ir::ValueId x = g_.node(q.node).inputs.empty() ? ir::kNone : g_.node(q.node).inputs[0];
    const bool x_quantized = params_.count(x) > 0;
    std::vector<float> weight_scale;
    std::vector<double> bias_shift;  // bias correction (empty: none)
    for (const passes::WeightSpec& spec : q.weights) {
      // Fetched per weight: emitting one adds nodes, which may move the graph's node storage.
      const ir::Node& n = g_.node(q.node);
      const ir::ValueId wv = n.inputs[static_cast<size_t>(spec.slot)];
      const Tensor& w = *g_.constant(wv);
      const std::string base = g_.value(wv).name;
      if (spec.as_activation) {
        // A constant operand of Add/Mul: activation type, per-tensor, its own exact range.
        const QuantizedWeight qw = quantize_weight(w, -1, config_.activation_type, config_.activation_symmetry);
        g_.set_node_input(q.node, spec.slot, emit_weight(base, qw, config_.activation_type));
        ++summary_.weights;
        continue;
      }
      const ir::ValueId bv = bias_value(q);
      const bool with_bias = bv != ir::kNone && x_quantized && spec.slot == q.weights.front().slot;
      const size_t channels = spec.axis < 0 ? 1 : static_cast<size_t>(w.dims()[static_cast<size_t>(spec.axis)]);
      std::vector<float> min_scale = x_quantized && !spec.reduce_range ? pair_safe_scales(n, spec, w) : std::vector<float>{};
      const bool u8 = x_quantized && uint8_weights(n, spec, w, min_scale);
      const DType wtype = u8 ? DType::kUint8 : config_.weight_type;
      const bool reduce = spec.reduce_range && !u8;
      if (u8) min_scale.clear();
      const bool pair_safe = !min_scale.empty();
      const QuantizedWeight plain = quantize_weight(w, spec.axis, wtype, config_.weight_symmetry, min_scale, reduce);
      if (with_bias) {
        // Products per output: the weights of one output channel (bias has one value per output).
        const Tensor& b = *g_.constant(bv);
        const int64_t terms = static_cast<int64_t>(w.numel() / std::max<size_t>(b.numel(), 1));
        const std::vector<float> bias_min = bias_safe_weight_scales(b, params_[x].qp.scale, channels, terms);
        min_scale.resize(channels, 0.f);
        for (size_t c = 0; c < channels; ++c) min_scale[c] = std::max(min_scale[c], bias_min[c]);
      }
      // Only the bias can raise a scale beyond `plain` (which already has the pair-safe ones); a
      // scale is the larger of its own and the minimum, so where no minimum exceeds plain's
      // scales the codes are plain's (the search builds many models: quantizing every weight
      // twice in each cost 0.15 s on mobilenetv2).
      size_t raised = 0;
      for (size_t c = 0; with_bias && c < plain.scale.size(); ++c)
        raised += c < min_scale.size() && min_scale[c] > plain.scale[c];
      const QuantizedWeight qw =
          raised ? quantize_weight(w, spec.axis, wtype, config_.weight_symmetry, min_scale, reduce) : plain;
      if (raised)
        summary_.notes.push_back(str_cat(n.label(), ": raised the weight scale of ", raised,
                                         " channel(s) so the int32 bias and products cannot overflow"));
      if (spec.slot == q.weights.front().slot) {
        weight_scale = qw.scale;
        const auto mean = means_.find(g_.value(x).name);
        if (x_quantized && mean != means_.end()) bias_shift = weight_bias_shift(n, w, qw, mean->second);
      }
      ir::ValueId dq;
      const auto key = std::make_tuple(wv, spec.axis, reduce, pair_safe, u8);
      if (!raised && weight_cache_.count(key)) {
        dq = weight_cache_[key];  // a weight shared by several nodes is stored once
      } else {
        dq = emit_weight(base, qw, wtype);
        summary_.uint8_weights += u8;
        if (!raised) weight_cache_[key] = dq;
        ++summary_.weights;
      }
      g_.set_node_input(q.node, spec.slot, dq);
    }
    if (q.bias_slot < 0 || !x_quantized || weight_scale.empty()) return;
    const ir::ValueId bv = bias_value(q);
    std::vector<float> bias_scale;
    const Tensor& b = *g_.constant(bv);
    const ir::Node& n = g_.node(q.node);
    const auto measured = n.outputs.empty() ? bias_shift_.end() : bias_shift_.find(g_.value(n.outputs[0]).name);
    // Shifts measured by empirical bias correction and left by absorbed affine tails add up.
    const auto add_shift = [&](const std::vector<double>& shift) {
      if (shift.size() != b.numel()) return;
      bias_shift.resize(b.numel(), 0.0);
      for (size_t c = 0; c < bias_shift.size(); ++c) bias_shift[c] += shift[c];
    };
    if (measured != bias_shift_.end()) add_shift(measured->second);
    if (const auto tail = tail_shift_.find(q.node); tail != tail_shift_.end()) add_shift(tail->second);
    Tensor corrected;
    if (!bias_shift.empty() && b.dtype() == DType::kFloat && b.numel() == bias_shift.size()) {
      std::vector<float> v(b.data<float>(), b.data<float>() + b.numel());
      for (size_t c = 0; c < v.size(); ++c) v[c] = static_cast<float>(static_cast<double>(v[c]) + bias_shift[c]);
      corrected = Tensor::from_vector<float>(b.dims(), v);
    }
    Tensor qb = with_context(str_cat(g_.node(q.node).label(), ": bias '", g_.value(bv).name, "'"), [&] {
      return quantize_bias(corrected.dtype() == DType::kFloat ? corrected : b, params_[x].qp.scale, weight_scale,
                           bias_scale);
    });
    const bool per_channel = bias_scale.size() > 1;
    const std::string base = g_.value(bv).name;
    const ir::ValueId qv = g_.add_initializer(g_.unique_name(base + "_quantized"), std::move(qb));
    const ir::ValueId s = g_.add_initializer(g_.unique_name(base + "_scale"), scale_tensor(bias_scale, per_channel));
    const ir::ValueId z = g_.add_initializer(
        g_.unique_name(base + "_zero_point"),
        zero_point_tensor(std::vector<int32_t>(bias_scale.size(), 0), DType::kInt32, per_channel));
    g_.set_node_input(bias_holder(q), q.bias_slot, add_dequantize(base, qv, s, z, per_channel ? 0 : -1));
    ++summary_.biases;
  }

  // v -> Q -> DQ -> every former consumer of v. A graph output keeps its name on the DQ output.
  // For an absorbed affine tail (absorb_affine_tails) the DQ is out's, and out's readers read it.
  void insert_pair(ir::ValueId v) {
    const ActParams& p = params_.at(v);
    const auto tail = tails_.find(v);
    const ir::ValueId target = tail == tails_.end() ? v : tail->second;
    const ActParams& dp = params_.at(target);
    const std::vector<ir::Use> uses = g_.value(target).uses;
    const std::string name = g_.value(v).name;
    const auto out_it = std::find(g_.outputs.begin(), g_.outputs.end(), target);
    const ir::NodeId qn = g_.add_node("QuantizeLinear", {v, p.scale, p.zero_point},
                                      {g_.unique_name(name + "_quantized")}, {},
                                      g_.unique_name(name + "_QuantizeLinear"));
    const ir::ValueId qv = g_.node(qn).outputs[0];
    g_.value(qv).type.known = true;
    g_.value(qv).type.dtype = config_.activation_type;
    g_.value(qv).type.shape = g_.value(v).type.shape;
    const ir::ValueId dq = add_dequantize(g_.value(target).name, qv, dp.scale, dp.zero_point, -1);
    g_.value(dq).type = g_.value(target).type;
    for (const ir::Use& u : uses) g_.set_node_input(u.node, u.slot, dq);
    if (out_it != g_.outputs.end()) {
      const std::string dq_name = g_.value(dq).name;
      g_.rename_value(v, g_.unique_name(name + "_float"));
      g_.rename_value(dq, name);
      *out_it = dq;
    }
    ++summary_.activation_pairs;
  }

  ir::Graph& g_;
  const passes::QuantPlan& plan_;
  const passes::RangeMap& ranges_;
  const quant::QuantConfig& config_;
  const ChannelMeans& means_;
  const ChannelMeans& bias_shift_;
  std::map<ir::ValueId, ActParams> params_;
  std::map<ir::ValueId, ir::ValueId> tails_;             // h -> out of an absorbed affine tail
  std::set<ir::ValueId> absorbed_;                       // those outs: no pair of their own
  struct FloatTail {
    ir::ValueId h, out;  // out = a·h + b, h the product of a float HardSwish
    double a, b;
  };
  std::vector<FloatTail> float_tails_;
  std::vector<ir::ValueId> moved_;                       // new values that get a pair (float HardSwishes)
  std::set<ir::ValueId> tied_;                           // values in a tie group (plan_.tied)
  std::map<ir::NodeId, const passes::NodeQuant*> planned_;
  std::map<ir::NodeId, std::vector<double>> tail_shift_;  // bias shift of the Convs reading them
  // (weight, axis, 7-bit, pair-safe scales, uint8) -> its DequantizeLinear output
  std::map<std::tuple<ir::ValueId, int64_t, bool, bool, bool>, ir::ValueId> weight_cache_;
  EmitSummary summary_;
};

}  // namespace

std::vector<ir::ValueId> pair_safe_inputs(const ir::Graph& g, const quant::QuantConfig& config) {
  std::vector<ir::ValueId> out;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!k_on_input_axis1(n) || !pair_layout(g, n, config)) continue;
    if (std::find(out.begin(), out.end(), n.inputs[0]) == out.end()) out.push_back(n.inputs[0]);
  }
  return out;
}

EmitSummary emit_qdq(ir::Model& model, const passes::QuantPlan& plan, const passes::RangeMap& ranges,
                     const quant::QuantConfig& config, const ChannelMeans& input_means,
                     const ChannelMeans& bias_shift) {
  PTQ_CHECK(model.opset() >= 13, UnsupportedError, "QDQ emission needs opset >= 13, the model has ",
            model.opset());
  return Emitter(model, plan, ranges, config, input_means, bias_shift).run();
}

}  // namespace ptq::emit
