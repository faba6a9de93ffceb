// Weight and bias quantization: exact per-channel ranges, ORT's rounding, int32 bias scales.
#include "weights.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "ptq/core/error.h"

namespace ptq::emit {
namespace {

constexpr double kInt32Max = 2147483647.0;

// A view, not a copy: a weight of 256 MB would otherwise be held twice while it is quantized.
std::span<const float> to_floats(const Tensor& t) {
  PTQ_CHECK(t.dtype() == DType::kFloat, UnsupportedError, "only float32 weights can be quantized, not ",
            dtype_name(t.dtype()));
  return {t.data<float>(), t.numel()};
}

template <typename T>
void store(Tensor& q, size_t i, int32_t v) {
  q.mutable_data<T>()[i] = static_cast<T>(v);
}

// quantize_weight, with the codes only when `codes` (weight_scales needs the scales alone).
QuantizedWeight quantize(const Tensor& w, int64_t axis, DType type, quant::Symmetry symmetry,
                         const std::vector<float>& min_scale, bool reduce_range, bool codes) {
  const std::span<const float> v = to_floats(w);
  QuantizedWeight r;
  const int64_t rank = static_cast<int64_t>(w.rank());
  if (axis >= 0 || axis < -1) {
    if (axis < 0) axis += rank;
    PTQ_CHECK(axis >= 0 && axis < rank, InternalError, "weight axis out of range");
  }
  r.axis = axis;
  const size_t channels = axis < 0 ? 1 : static_cast<size_t>(w.dims()[static_cast<size_t>(axis)]);
  size_t inner = 1;
  for (int64_t d = axis + 1; axis >= 0 && d < rank; ++d) inner *= static_cast<size_t>(w.dims()[static_cast<size_t>(d)]);
  if (axis < 0) inner = v.size();
  // Element i = (o·channels + c)·inner + j: loops over (o, c, j), no division per weight.
  const size_t outer = v.size() / std::max<size_t>(channels * inner, 1);
  const auto each = [&](auto&& fn) {
    for (size_t o = 0, i = 0; o < outer; ++o)
      for (size_t c = 0; c < channels; ++c)
        for (size_t j = 0; j < inner; ++j, ++i) fn(i, c);
  };
  std::vector<float> lo(channels, std::numeric_limits<float>::infinity()), hi(channels, -lo[0]);
  each([&](size_t i, size_t c) {
    lo[c] = std::min(lo[c], v[i]);
    hi[c] = std::max(hi[c], v[i]);
  });
  const quant::IntRange grid = reduce_range ? quant::reduced_range(type, symmetry)
                                            : symmetry == quant::Symmetry::kSymmetric ? quant::symmetric_range(type)
                                                                                      : quant::full_range(type);
  // Clamp to the grid too when reduced: saturating to the type's full range would let a rounded
  // value leave the 7-bit range the reduction promises.
  const quant::IntRange full = reduce_range ? grid : quant::full_range(type);
  r.scale.resize(channels);
  r.zero_point.resize(channels);
  for (size_t c = 0; c < channels; ++c) {
    if (lo[c] > hi[c]) lo[c] = hi[c] = 0.f;  // empty channel
    quant::QuantParams p = quant::compute_scale_zp(lo[c], hi[c], grid, symmetry);
    if (c < min_scale.size() && p.scale < min_scale[c]) p.scale = min_scale[c];
    r.scale[c] = p.scale;
    r.zero_point[c] = p.zero_point;
  }
  if (!codes) return r;
  r.q = Tensor::empty(type, w.dims());
  PTQ_CHECK(v.empty() || type == DType::kInt8 || type == DType::kUint8, UnsupportedError, "weight type ", dtype_name(type),
            " is not supported");
  each([&](size_t i, size_t c) {
    const int32_t q = quant::quantize_value(v[i], r.scale[c], r.zero_point[c], full);
    if (type == DType::kInt8) store<int8_t>(r.q, i, q);
    else store<uint8_t>(r.q, i, q);
  });
  return r;
}

}  // namespace

QuantizedWeight quantize_weight(const Tensor& w, int64_t axis, DType type, quant::Symmetry symmetry,
                                const std::vector<float>& min_scale, bool reduce_range) {
  return quantize(w, axis, type, symmetry, min_scale, reduce_range, true);
}

std::vector<float> weight_scales(const Tensor& w, int64_t axis, DType type, quant::Symmetry symmetry) {
  return quantize(w, axis, type, symmetry, {}, false, false).scale;
}

std::vector<float> bias_safe_weight_scales(const Tensor& b, float input_scale, size_t channels, int64_t terms) {
  const std::span<const float> v = to_floats(b);
  std::vector<float> min_scale(channels, 0.f);
  // What the bias may use of int32: the products' worst case stays free (at most half the range;
  // past that the products alone could overflow, which no bias scale changes).
  const double products = std::min(static_cast<double>(std::max<int64_t>(terms, 1)) * 255.0 * 128.0, kInt32Max / 2);
  const double limit = kInt32Max - products;
  for (size_t c = 0; c < channels; ++c) {
    double bc = 0;  // per-channel: this channel's bias; per-tensor: the largest of all
    if (channels == v.size()) bc = std::fabs(static_cast<double>(v[c]));
    else for (float x : v) bc = std::max(bc, std::fabs(static_cast<double>(x)));
    // s_x * s_w >= |b| / limit, with a margin for the float32 product's rounding.
    double need = bc / (static_cast<double>(input_scale) * limit) * (1.0 + 1e-6);
    // The bias scale s_x * s_w must also stay a normal float (a product of two tiny scales
    // underflowed to 0, an invalid scale), and the cast below must not overflow float.
    need = std::max(need, static_cast<double>(std::numeric_limits<float>::min()) / input_scale * (1.0 + 1e-6));
    min_scale[c] = static_cast<float>(std::min(need, static_cast<double>(std::numeric_limits<float>::max())));
  }
  return min_scale;
}

std::vector<float> pair_safe_weight_scales(const Tensor& w, PairLayout layout, const std::vector<double>& k_codes) {
  const std::span<const float> v = to_floats(w);
  const Dims& d = w.dims();
  const size_t rank = d.size();
  PTQ_CHECK(layout == PairLayout::kConv ? rank >= 3 : rank >= 2, InternalError, "weight rank ", rank);
  // Output channels, and each weight's channel and K pair, per layout.
  size_t channels = 0, pairs = 0;
  std::vector<double> pos, neg;
  // Per channel and pair: the sums of its positive and of its negative weights, in element order
  // (loops over the layout's dimensions: a division per weight made this most of an int8 build).
  // With k_codes, each weight counts times its K's activation code.
  const bool coded = !k_codes.empty();
  const auto add = [&](size_t c, size_t j, float x, double code) {
    const double a = coded ? code * x : x;
    if (x > 0) pos[c * pairs + j] += a;
    else neg[c * pairs + j] -= a;
  };
  const auto code_of = [&](size_t k) { return coded && k < k_codes.size() ? k_codes[k] : 0.0; };
  if (layout == PairLayout::kConv) {
    const size_t m = static_cast<size_t>(d[0]), cg = static_cast<size_t>(d[1]);
    const size_t taps = w.numel() / std::max<size_t>(m * cg, 1);  // kh·kw
    // Grouped: output channel o reads input channels (o / (m / groups)) · cg + c.
    const size_t groups = coded ? k_codes.size() / std::max<size_t>(cg, 1) : 1;
    const size_t per_group = std::max<size_t>(m / std::max<size_t>(groups, 1), 1);
    channels = m;
    pairs = (cg * taps + 1) / 2;
    pos.assign(channels * pairs, 0.0), neg.assign(channels * pairs, 0.0);
    for (size_t o = 0, i = 0; o < m; ++o)
      for (size_t c = 0; c < cg; ++c) {
        const double code = code_of(o / per_group * cg + c);
        for (size_t tap = 0; tap < taps; ++tap, ++i) add(o, (tap * cg + c) / 2, v[i], code);
      }
  } else if (layout == PairLayout::kKByN) {
    // Batched B [..., K, N]: each matrix pairs its own K.
    const size_t n = static_cast<size_t>(d[rank - 1]), k = static_cast<size_t>(d[rank - 2]);
    const size_t per = (k + 1) / 2, batch = w.numel() / std::max<size_t>(n * k, 1);
    channels = n;
    pairs = per * batch;
    pos.assign(channels * pairs, 0.0), neg.assign(channels * pairs, 0.0);
    for (size_t b = 0, i = 0; b < batch; ++b)
      for (size_t r = 0; r < k; ++r)
        for (size_t col = 0; col < n; ++col, ++i) add(col, b * per + r / 2, v[i], code_of(r));
  } else {
    const size_t k = static_cast<size_t>(d[1]);
    channels = static_cast<size_t>(d[0]);
    pairs = (k + 1) / 2;
    pos.assign(channels * pairs, 0.0), neg.assign(channels * pairs, 0.0);
    for (size_t c = 0, i = 0; c < channels; ++c)
      for (size_t r = 0; r < k; ++r, ++i) add(c, r / 2, v[i], code_of(r));
  }
  // Without codes: a pair's codes may sum to L = floor(32767 / kPairSafeActivationCode) (170):
  // with activation codes up to that value the pair sum stays within int16.
  // round(a/s) + round(b/s) <= (a + b)/s + 1 <= L when s >= (a + b)/(L - 1).
  // With codes: sum code_k · round(|w_k|/s) <= A/s + (code_a + code_b)/2 <= A/s + 255 <= 32767
  // when s >= A / (32767 - 255), A = sum code_k · |w_k| over the pair's weights of one sign.
  const double divisor = coded ? 32767.0 - 255.0 : std::floor(32767.0 / kPairSafeActivationCode) - 1;
  std::vector<float> out(channels, 0.f);
  for (size_t c = 0; c < channels; ++c) {
    double worst = 0;
    for (size_t j = 0; j < pairs; ++j) worst = std::max({worst, pos[c * pairs + j], neg[c * pairs + j]});
    out[c] = static_cast<float>(worst / divisor * (1.0 + 1e-6));
  }
  return out;
}

Tensor quantize_bias(const Tensor& b, float input_scale, const std::vector<float>& weight_scale,
                     std::vector<float>& scale) {
  const std::span<const float> v = to_floats(b);
  const bool per_channel = weight_scale.size() > 1;
  scale.resize(weight_scale.size());
  for (size_t c = 0; c < scale.size(); ++c) scale[c] = input_scale * weight_scale[c];  // float32, as ORT
  Tensor q = Tensor::empty(DType::kInt32, b.dims());
  int32_t* out = q.mutable_data<int32_t>();
  for (size_t i = 0; i < v.size(); ++i) {
    // A NaN would reach the int32 conversion (undefined; found by the pipeline fuzz target).
    PTQ_CHECK(std::isfinite(v[i]), ModelError, "bias value ", i, " is ", v[i]);
    const double s = scale[per_channel ? i : 0];
    const double r = v[i] == 0 ? 0.0 : std::nearbyint(static_cast<double>(v[i]) / s);
    out[i] = static_cast<int32_t>(std::clamp(r, -kInt32Max - 1.0, kInt32Max));
  }
  return q;
}

Tensor zero_point_tensor(const std::vector<int32_t>& zp, DType type, bool per_channel) {
  Tensor t = Tensor::empty(type, per_channel ? Dims{static_cast<int64_t>(zp.size())} : Dims{});
  for (size_t i = 0; i < zp.size() && i < t.numel(); ++i) {
    if (type == DType::kInt8) store<int8_t>(t, i, zp[i]);
    else if (type == DType::kUint8) store<uint8_t>(t, i, zp[i]);
    else if (type == DType::kInt32) store<int32_t>(t, i, zp[i]);
    else throw UnsupportedError(str_cat("zero point type ", dtype_name(type), " is not supported"));
  }
  return t;
}

Tensor scale_tensor(const std::vector<float>& scale, bool per_channel) {
  // Every scale the emitter writes passes here: inf, NaN, 0 or denormal would be an invalid
  // model (ORT outputs NaN); the planner and rules must have kept such tensors fp32.
  for (float s : scale)
    PTQ_CHECK(std::isfinite(s) && s >= std::numeric_limits<float>::min(), InternalError,
              "quantization scale ", s, " is not a finite normal float");
  if (!per_channel) return Tensor::scalar<float>(scale.at(0));
  return Tensor::from_vector<float>({static_cast<int64_t>(scale.size())}, scale);
}

}  // namespace ptq::emit
