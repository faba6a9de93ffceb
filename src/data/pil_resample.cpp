// Pillow's two-pass fixed-point resampling (precompute_coeffs, normalize_coeffs_8bpc, 8bpc passes).
#include "pil_resample.h"

#include <cmath>

namespace ptq::data {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output pixel: the first input index, the tap count, and ksize fixed-point weights.
struct Coeffs {
  int64_t ksize = 0;
  std::vector<int64_t> bounds;  // xmin, count per output pixel
  std::vector<int32_t> k;
};

Coeffs precompute(int64_t in_size, int64_t out_size, PilFilter f) {
  double (*filter)(double) = f == PilFilter::kBilinear ? bilinear_filter : bicubic_filter;
  const double filter_support = f == PilFilter::kBilinear ? 1.0 : 2.0;
  const double scale = double(in_size) / double(out_size);  // box (0, in_size), as resize() passes
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  Coeffs c;
  c.ksize = int64_t(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(out_size) * 2);
  c.k.assign(size_t(out_size * c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (double(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = int64_t(center - support + 0.5);  // C's (int): truncation toward zero
    if (xmin < 0) xmin = 0;
    int64_t xmax = int64_t(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      w[size_t(x)] = filter((double(x + xmin) - center + 0.5) * ss);
      ww += w[size_t(x)];
    }
    for (int64_t x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      // normalize_coeffs_8bpc: round half away from zero.
      c.k[size_t(xx * c.ksize + x)] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                                            : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[size_t(xx) * 2] = xmin;
    c.bounds[size_t(xx) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t in) {
  const int32_t v = in >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup table
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

std::vector<uint8_t> pil_resize(const uint8_t* in, int64_t in_w, int64_t in_h, int channels, int64_t out_w,
                                int64_t out_h, PilFilter filter) {
  const size_t ch = size_t(channels);
  std::vector<uint8_t> cur(in, in + size_t(in_w * in_h) * ch);
  int64_t w = in_w;
  if (out_w != in_w) {  // horizontal pass (Pillow skips a pass whose size does not change)
    const Coeffs c = precompute(in_w, out_w, filter);
    std::vector<uint8_t> next(size_t(out_w * in_h) * ch);
    for (int64_t y = 0; y < in_h; ++y)
      for (int64_t xx = 0; xx < out_w; ++xx) {
        const int64_t xmin = c.bounds[size_t(xx) * 2], n = c.bounds[size_t(xx) * 2 + 1];
        const int32_t* k = &c.k[size_t(xx * c.ksize)];
        for (size_t b = 0; b < ch; ++b) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int64_t x = 0; x < n; ++x) ss += int32_t(cur[size_t(y * w + xmin + x) * ch + b]) * k[x];
          next[size_t(y * out_w + xx) * ch + b] = clip8(ss);
        }
      }
    cur.swap(next);
    w = out_w;
  }
  if (out_h != in_h) {  // vertical pass
    const Coeffs c = precompute(in_h, out_h, filter);
    std::vector<uint8_t> next(size_t(w * out_h) * ch);
    for (int64_t yy = 0; yy < out_h; ++yy) {
      const int64_t ymin = c.bounds[size_t(yy) * 2], n = c.bounds[size_t(yy) * 2 + 1];
      const int32_t* k = &c.k[size_t(yy * c.ksize)];
      for (int64_t x = 0; x < w; ++x)
        for (size_t b = 0; b < ch; ++b) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int64_t y = 0; y < n; ++y) ss += int32_t(cur[size_t((ymin + y) * w + x) * ch + b]) * k[y];
          next[size_t(yy * w + x) * ch + b] = clip8(ss);
        }
    }
    cur.swap(next);
  }
  return cur;
}

}  // namespace ptq::data
