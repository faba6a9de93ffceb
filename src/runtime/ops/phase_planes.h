// Padded, stride-phase-split copies of one image plane, so window kernels read contiguous runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ptq::runtime {

// Output columns computed together by the window kernels (one AVX-512 register of floats). The
// planes are wide enough that a block may run past the last output column.
constexpr int64_t kWindowBlock = 16;

// Plane geometry: input h×w, output ho×wo, kernel kh×kw, strides, dilations, leading pads.
struct PlaneGeo {
  int64_t h, w, ho, wo, kh, kw, sh, sw, dh, dw, pt, pl;
  // Padded rows every window touches.
  int64_t rows() const { return (ho - 1) * sh + (kh - 1) * dh + 1; }
  // Elements per phase row: output blocks rounded up plus the widest tap offset.
  int64_t wq() const {
    const int64_t wo_r = (wo + kWindowBlock - 1) / kWindowBlock * kWindowBlock;
    return wo_r + (kw - 1) * dw / sw + 1;
  }
  // Start of the run read by tap (padded row r, kernel column kx): output column ox reads
  // element ox of it. Padded column pc = ox·sw + kx·dw lives in phase pc % sw at pc / sw.
  int64_t offset(int64_t r, int64_t kx) const {
    const int64_t c = kx * dw;
    return (r * sw + c % sw) * wq() + c / sw;
  }
};

// Copies plane x (h×w) into buf as rows()×sw×wq() with `fill` outside the image. Padded row r
// is input row r - pt; element i of phase q is input column i·sw + q - pl.
template <typename T>
void build_phase_planes(const T* x, const PlaneGeo& g, T fill, std::vector<T>& buf) {
  const int64_t rows = g.rows(), wq = g.wq();
  buf.resize(static_cast<size_t>(rows * g.sw * wq));
  // Rows are short (7 to 112 columns) and many: which phase elements lie inside the image
  // depends on the phase alone, so it is worked out once per phase, not once per row.
  for (int64_t q = 0; q < g.sw; ++q) {
    // Phase elements i with 0 <= i·sw + q - pl < w are inside: [first, last).
    const int64_t first = q >= g.pl ? 0 : (g.pl - q + g.sw - 1) / g.sw;
    const int64_t span = g.w - 1 + g.pl - q;  // negative: the phase misses the image
    const int64_t last = std::max(first, span < 0 ? 0 : std::min(wq, span / g.sw + 1));
    const int64_t offset = first * g.sw + q - g.pl;
    for (int64_t r = 0; r < rows; ++r) {
      T* out = buf.data() + (r * g.sw + q) * wq;
      const int64_t iy = r - g.pt;
      if (iy < 0 || iy >= g.h || first == last) {
        std::fill(out, out + wq, fill);
        continue;
      }
      std::fill(out, out + first, fill);
      const T* src = x + iy * g.w + offset;
      if (g.sw == 1) {
        std::memcpy(out + first, src, static_cast<size_t>(last - first) * sizeof(T));
      } else if (g.sw == 2) {
        // A constant stride: the compiler vectorizes this gather (loads and shuffles), which the
        // general loop below is not.
        for (int64_t i = first; i < last; ++i) out[i] = src[2 * (i - first)];
      } else {
        for (int64_t i = first; i < last; ++i) out[i] = src[(i - first) * g.sw];
      }
      std::fill(out + last, out + wq, fill);
    }
  }
}

}  // namespace ptq::runtime
