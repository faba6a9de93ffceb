// Resize (10+) and Upsample (7-9): nearest/linear/cubic as separable per-axis passes, every
// coordinate_transformation_mode except half_pixel_symmetric, scales or sizes, axes (18).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"

namespace ptq::runtime {
namespace {

struct Tap {
  int64_t index;
  float weight;
};

class Resize : public Kernel {
 public:
  Resize(const KernelInit& init, bool upsample) : upsample_(upsample), opset_(init.opset) {
    const ir::Node& n = init.node;
    mode_ = n.attr_string("mode", "nearest");
    if (mode_ == "bilinear") mode_ = "linear";  // Upsample-7 spelling
    PTQ_CHECK(mode_ == "nearest" || mode_ == "linear" || (mode_ == "cubic" && !upsample), ModelError,
              "mode '", mode_, "' is not supported");
    // Before opset 11 there is no coordinate_transformation_mode: it behaves as asymmetric/floor.
    const bool legacy = upsample || init.opset < 11;
    coord_ = legacy ? "asymmetric" : n.attr_string("coordinate_transformation_mode", "half_pixel");
    nearest_ = legacy ? "floor" : n.attr_string("nearest_mode", "round_prefer_floor");
    cubic_a_ = n.attr_float("cubic_coeff_a", -0.75f);
    exclude_outside_ = n.attr_int("exclude_outside", 0) != 0;
    extrapolation_ = n.attr_float("extrapolation_value", 0.f);
    axes_ = n.attr_ints("axes");
    scales_attr_ = n.attr_floats("scales");
    PTQ_CHECK(coord_ == "half_pixel" || coord_ == "pytorch_half_pixel" || coord_ == "align_corners" ||
                  coord_ == "asymmetric" || coord_ == "tf_half_pixel_for_nn" ||
                  coord_ == "tf_crop_and_resize",
              UnsupportedError, "coordinate_transformation_mode '", coord_, "' is not supported");
    PTQ_CHECK(nearest_ == "round_prefer_floor" || nearest_ == "round_prefer_ceil" ||
                  nearest_ == "floor" || nearest_ == "ceil",
              ModelError, "nearest_mode '", nearest_, "' is not valid");
    PTQ_CHECK(n.attr_int("antialias", 0) == 0, UnsupportedError, "Resize antialias=1");
    PTQ_CHECK(n.attr_string("keep_aspect_ratio_policy", "stretch") == "stretch", UnsupportedError,
              "keep_aspect_ratio_policy other than stretch");
  }

  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const int64_t r = static_cast<int64_t>(X.rank());
    std::vector<float> scales, roi;
    std::vector<int64_t> sizes;
    if (upsample_) {
      if (opset_ >= 9) {
        const Tensor& s = float_input(in, 1, "scales");
        scales.assign(s.data<float>(), s.data<float>() + s.numel());
      } else {
        scales = scales_attr_;
      }
    } else if (opset_ < 11) {
      const Tensor& s = float_input(in, 1, "scales");
      scales.assign(s.data<float>(), s.data<float>() + s.numel());
    } else {
      if (const Tensor* t = optional_input(in, 1); t && t->numel())
        roi.assign(t->data<float>(), t->data<float>() + t->numel());
      if (const Tensor* t = optional_input(in, 2); t && t->numel()) {
        PTQ_CHECK(t->dtype() == DType::kFloat, ModelError, "scales must be float");
        scales.assign(t->data<float>(), t->data<float>() + t->numel());
      }
      if (const Tensor* t = optional_input(in, 3); t && t->numel()) sizes = int_values(*t, "sizes");
    }
    PTQ_CHECK(scales.empty() != sizes.empty(), ModelError, "exactly one of scales and sizes must be given");
    std::vector<int64_t> axes = axes_;
    if (axes.empty())
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    const size_t na = axes.size();
    PTQ_CHECK((scales.empty() || scales.size() == na) && (sizes.empty() || sizes.size() == na),
              ModelError, "scales/sizes must have one entry per axis (", na, ")");
    PTQ_CHECK(roi.empty() || roi.size() == 2 * na, ModelError, "roi must have 2 entries per axis");
    Dims od = X.dims();
    std::vector<float> sc(static_cast<size_t>(r), 1.f), rs(static_cast<size_t>(r), 0.f),
        re(static_cast<size_t>(r), 1.f);
    for (size_t i = 0; i < na; ++i) {
      const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
      if (!sizes.empty()) {
        od[a] = sizes[i];
        sc[a] = static_cast<float>(sizes[i]) / static_cast<float>(X.dims()[a]);
      } else {
        PTQ_CHECK(scales[i] > 0, ModelError, "scales must be positive");
        sc[a] = scales[i];
        const double len = std::floor(static_cast<double>(static_cast<float>(X.dims()[a]) * scales[i]));
        // Checked before the cast: a scale of 1e30 made it undefined behaviour.
        PTQ_CHECK(len <= static_cast<double>(max_tensor_elements()), UnsupportedError, "scale ", scales[i],
                  " resizes axis ", a, " to more than ", max_tensor_elements(), " elements");
        od[a] = static_cast<int64_t>(len);
      }
      if (!roi.empty()) {
        rs[a] = roi[i];
        re[a] = roi[i + na];
      }
    }
    // Separable passes, one per resized axis.
    Tensor cur = X;
    for (int64_t a = 0; a < r; ++a) {
      const size_t ua = static_cast<size_t>(a);
      if (od[ua] == cur.dims()[ua] && sc[ua] == 1.f && coord_ != "tf_crop_and_resize") continue;
      cur = resize_axis(cur, a, od[ua], sc[ua], rs[ua], re[ua]);
    }
    PTQ_ASSERT(cur.dims() == od);
    out[0] = cur;
  }

 private:
  float source_coord(int64_t x, int64_t in_len, int64_t out_len, float scale, float start, float end) const {
    const float fx = static_cast<float>(x);
    // ONNX uses the unrounded resized length (in * scale) in the align_corners-style formulas.
    const float out_f = static_cast<float>(in_len) * scale;
    if (coord_ == "half_pixel") return (fx + 0.5f) / scale - 0.5f;
    if (coord_ == "pytorch_half_pixel") return out_len > 1 ? (fx + 0.5f) / scale - 0.5f : 0.f;
    if (coord_ == "align_corners")
      return out_len == 1 ? 0.f : fx * static_cast<float>(in_len - 1) / (out_f - 1.f);
    if (coord_ == "tf_half_pixel_for_nn") return (fx + 0.5f) / scale;
    if (coord_ == "tf_crop_and_resize")
      return out_len > 1 ? start * static_cast<float>(in_len - 1) +
                               fx * (end - start) * static_cast<float>(in_len - 1) / (out_f - 1.f)
                         : 0.5f * (start + end) * static_cast<float>(in_len - 1);
    return fx / scale;  // asymmetric
  }

  // Taps for each output index along one axis; an empty list means "extrapolation value".
  std::vector<std::vector<Tap>> taps(int64_t in_len, int64_t out_len, float scale, float start, float end) const {
    std::vector<std::vector<Tap>> t(static_cast<size_t>(out_len));
    for (int64_t o = 0; o < out_len; ++o) {
      float x = source_coord(o, in_len, out_len, scale, start, end);
      auto& v = t[static_cast<size_t>(o)];
      if (coord_ == "tf_crop_and_resize" && !(x >= 0 && x <= static_cast<float>(in_len - 1))) continue;
      // Indices are clamped into the axis below anyway; clamping the coordinate first keeps the
      // float -> int64 casts defined for NaN or huge coordinates (hostile scales or roi).
      x = std::isnan(x) ? 0.f : std::clamp(x, -4.f, static_cast<float>(in_len) + 4.f);
      auto clampi = [in_len](int64_t i) { return std::clamp<int64_t>(i, 0, in_len - 1); };
      if (mode_ == "nearest") {
        int64_t i;
        const float fl = std::floor(x);
        if (nearest_ == "floor") i = static_cast<int64_t>(fl);
        else if (nearest_ == "ceil") i = static_cast<int64_t>(std::ceil(x));
        else if (x - fl == 0.5f) i = static_cast<int64_t>(nearest_ == "round_prefer_floor" ? fl : fl + 1);
        else i = static_cast<int64_t>(std::round(x));
        v.push_back({clampi(i), 1.f});
      } else if (mode_ == "linear") {
        const float xc = std::clamp(x, 0.f, static_cast<float>(in_len - 1));
        const int64_t i0 = static_cast<int64_t>(std::floor(xc));
        const float w1 = xc - static_cast<float>(i0);
        v.push_back({i0, 1.f - w1});
        v.push_back({clampi(i0 + 1), w1});
      } else {
        const int64_t i0 = static_cast<int64_t>(std::floor(x));
        const float s = x - static_cast<float>(i0), A = cubic_a_;
        auto w_far = [A](float d) { return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A; };  // 1 < d < 2
        auto w_near = [A](float d) { return ((A + 2) * d - (A + 3)) * d * d + 1; };     // d <= 1
        const float w[4] = {w_far(s + 1), w_near(s), w_near(1 - s), w_far(2 - s)};
        float total = 0;
        for (int k = 0; k < 4; ++k) {
          const int64_t i = i0 - 1 + k;
          if (exclude_outside_ && (i < 0 || i >= in_len)) continue;
          v.push_back({clampi(i), w[k]});
          total += w[k];
        }
        if (exclude_outside_ && total != 0)
          for (Tap& tp : v) tp.weight /= total;
      }
    }
    return t;
  }

  Tensor resize_axis(const Tensor& x, int64_t axis, int64_t out_len, float scale, float start, float end) const {
    const Dims& d = x.dims();
    const int64_t in_len = d[static_cast<size_t>(axis)];
    const int64_t outer = numel_of(Dims(d.begin(), d.begin() + axis));
    const int64_t inner = numel_of(Dims(d.begin() + axis + 1, d.end()));
    Dims od = d;
    od[static_cast<size_t>(axis)] = out_len;
    Tensor y = new_tensor(DType::kFloat, od);
    if (y.numel() == 0) return y;
    // A zero-width axis has nothing to interpolate from (the taps would read before the data).
    PTQ_CHECK(in_len > 0, ModelError, "cannot resize axis ", axis, " of length 0 to ", out_len);
    const auto tp = taps(in_len, out_len, scale, start, end);
    const float* px = x.data<float>();
    float* py = y.mutable_data<float>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < out_len; ++j) {
        float* dst = py + (o * out_len + j) * inner;
        const auto& taps_j = tp[static_cast<size_t>(j)];
        if (taps_j.empty()) {
          std::fill_n(dst, inner, extrapolation_);
          continue;
        }
        if (taps_j.size() == 1 && taps_j[0].weight == 1.f) {
          std::memcpy(dst, px + (o * in_len + taps_j[0].index) * inner, static_cast<size_t>(inner) * sizeof(float));
          continue;
        }
        std::fill_n(dst, inner, 0.f);
        for (const Tap& t : taps_j) {
          const float* src = px + (o * in_len + t.index) * inner;
          for (int64_t k = 0; k < inner; ++k) dst[k] += t.weight * src[k];
        }
      }
    }
    return y;
  }

  bool upsample_;
  int64_t opset_;
  std::string mode_, coord_, nearest_;
  float cubic_a_, extrapolation_;
  bool exclude_outside_;
  std::vector<int64_t> axes_;
  std::vector<float> scales_attr_;
};

std::unique_ptr<Kernel> make_resize(const KernelInit& init) { return std::make_unique<Resize>(init, false); }
std::unique_ptr<Kernel> make_upsample(const KernelInit& init) { return std::make_unique<Resize>(init, true); }

}  // namespace

void register_resize(KernelRegistry& r) {
  r.add("", "Resize", 10, INT64_MAX, make_resize);
  r.add("", "Upsample", 7, 9, make_upsample);
}

}  // namespace ptq::runtime
