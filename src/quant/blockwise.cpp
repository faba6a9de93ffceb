// Blockwise RTN quantization and packing for MatMulNBits / GatherBlockQuantized (4 and 8 bits).
#include "ptq/quant/blockwise.h"

#include <algorithm>
#include <cmath>

#include "ptq/core/error.h"

namespace ptq::quant {
namespace {

void put_code(std::vector<uint8_t>& bytes, int64_t base, int64_t index, int bits, int32_t code) {
  if (bits == 8) {
    bytes[static_cast<size_t>(base + index)] = static_cast<uint8_t>(code);
    return;
  }
  uint8_t& b = bytes[static_cast<size_t>(base + index / 2)];
  b = static_cast<uint8_t>(index % 2 ? (b & 0x0F) | (code << 4) : (b & 0xF0) | code);
}

int32_t get_code(const std::vector<uint8_t>& bytes, int64_t base, int64_t index, int bits) {
  if (bits == 8) return bytes[static_cast<size_t>(base + index)];
  const uint8_t b = bytes[static_cast<size_t>(base + index / 2)];
  return index % 2 ? b >> 4 : b & 0x0F;
}

struct BlockParams {
  float scale = 0.f;
  int32_t zero = 0;
};

int32_t code_of(float v, const BlockParams& p, int32_t qmax) {
  if (p.scale == 0.f) return p.zero;
  const float q = std::nearbyint(v / p.scale) + static_cast<float>(p.zero);
  return static_cast<int32_t>(std::clamp(q, 0.f, static_cast<float>(qmax)));
}

// Parameters for the block's values shrunk by `shrink` (1: the exact range).
BlockParams params_for(const std::vector<float>& v, int bits, bool symmetric, float shrink) {
  const int32_t qmax = (1 << bits) - 1, half = 1 << (bits - 1);
  BlockParams p;
  if (symmetric) {
    float a = 0.f;
    for (float x : v)
      if (std::fabs(x) > std::fabs(a)) a = x;
    p.zero = half;
    p.scale = a * shrink / static_cast<float>(-half);
    return p;
  }
  float lo = 0.f, hi = 0.f;
  for (float x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  lo *= shrink;
  hi *= shrink;
  p.scale = (hi - lo) / static_cast<float>(qmax);
  if (p.scale == 0.f) return p;
  p.zero = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / p.scale), 0.f, static_cast<float>(qmax)));
  return p;
}

double block_error(const std::vector<float>& v, const BlockParams& p, int32_t qmax) {
  double e = 0;
  for (float x : v) {
    const double d = static_cast<double>(x) - static_cast<double>(code_of(x, p, qmax) - p.zero) * p.scale;
    e += d * d;
  }
  return e;
}

// The block's parameters: its full range, or with clip_search the best of ranges shrunk by up to
// 25 % in 5 % steps (least squared error on the block).
BlockParams best_params(const std::vector<float>& v, int bits, bool symmetric, int32_t qmax, bool clip_search) {
  BlockParams p = params_for(v, bits, symmetric, 1.f);
  if (!clip_search) return p;
  double best = block_error(v, p, qmax);
  for (int i = 1; i <= 5; ++i) {
    const BlockParams t = params_for(v, bits, symmetric, 1.f - 0.05f * static_cast<float>(i));
    const double e = block_error(v, t, qmax);
    if (e < best) best = e, p = t;
  }
  return p;
}

}  // namespace

BlockQuantized quantize_blockwise(const float* w, int64_t rows, int64_t cols, int64_t row_stride,
                                  int64_t col_stride, int bits, int64_t block_size, bool symmetric,
                                  bool clip_search) {
  PTQ_CHECK(bits == 4 || bits == 8, InternalError, "blockwise quantization to ", bits, " bits");
  PTQ_CHECK(block_size >= 16 && (block_size & (block_size - 1)) == 0, InternalError, "block size ", block_size);
  BlockQuantized q;
  q.bits = bits;
  q.block_size = block_size;
  q.rows = rows;
  q.cols = cols;
  q.symmetric = symmetric;
  const int64_t blocks = q.blocks(), blob = q.blob_bytes(), zbytes = q.zero_point_bytes();
  const int32_t qmax = (1 << bits) - 1;
  q.data.assign(static_cast<size_t>(rows * blocks * blob), 0);
  q.scales.assign(static_cast<size_t>(rows * blocks), 0.f);
  if (!symmetric) q.zero_points.assign(static_cast<size_t>(rows * zbytes), 0);
  std::vector<float> v;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block_size, c1 = std::min(cols, c0 + block_size);
      v.clear();
      for (int64_t c = c0; c < c1; ++c) v.push_back(w[r * row_stride + c * col_stride]);
      const BlockParams p = best_params(v, bits, symmetric, qmax, clip_search);
      q.scales[static_cast<size_t>(r * blocks + b)] = p.scale;
      if (!symmetric) put_code(q.zero_points, r * zbytes, b, bits, p.zero);
      const int64_t base = (r * blocks + b) * blob;
      for (int64_t i = 0; i < block_size; ++i)  // padding past cols holds the zero point (value 0)
        put_code(q.data, base, i, bits, c0 + i < c1 ? code_of(v[static_cast<size_t>(i)], p, qmax) : p.zero);
    }
  }
  return q;
}

namespace {

// Lower Cholesky factor of the n×n row-major a in place (upper part zeroed); false unless positive definite.
bool cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[static_cast<size_t>(j * n + j)];
    for (int64_t k = 0; k < j; ++k) d -= a[static_cast<size_t>(j * n + k)] * a[static_cast<size_t>(j * n + k)];
    if (!(d > 0)) return false;
    const double l = std::sqrt(d);
    a[static_cast<size_t>(j * n + j)] = l;
    for (int64_t i = j + 1; i < n; ++i) {
      double v = a[static_cast<size_t>(i * n + j)];
      for (int64_t k = 0; k < j; ++k) v -= a[static_cast<size_t>(i * n + k)] * a[static_cast<size_t>(j * n + k)];
      a[static_cast<size_t>(i * n + j)] = v / l;
    }
    for (int64_t i = 0; i < j; ++i) a[static_cast<size_t>(i * n + j)] = 0;
  }
  return true;
}

// U (upper, row-major) with Uᵀ·U = H⁻¹ for the damped Hessian H; empty when H is not positive definite.
std::vector<double> inverse_hessian_factor(std::vector<double> h, int64_t n) {
  if (!cholesky_lower(h, n)) return {};
  // L⁻¹ (lower) by forward substitution, row by row: contiguous inner loops.
  std::vector<double> li(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double* row = li.data() + i * n;
    row[i] = 1.0;
    for (int64_t k = 0; k < i; ++k) {
      const double a = h[static_cast<size_t>(i * n + k)];
      if (a == 0) continue;
      const double* lk = li.data() + k * n;
      for (int64_t c = 0; c <= k; ++c) row[c] -= a * lk[c];
    }
    const double d = h[static_cast<size_t>(i * n + i)];
    for (int64_t c = 0; c <= i; ++c) row[c] /= d;
  }
  // H⁻¹ = L⁻ᵀ·L⁻¹, summed over the rows of L⁻¹ (upper triangle, then mirrored).
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double* lk = li.data() + k * n;
    for (int64_t i = 0; i <= k; ++i) {
      const double a = lk[i];
      if (a == 0) continue;
      double* out = inv.data() + i * n;
      for (int64_t j = i; j <= k; ++j) out[j] += a * lk[j];
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) inv[static_cast<size_t>(i * n + j)] = inv[static_cast<size_t>(j * n + i)];
  if (!cholesky_lower(inv, n)) return {};
  std::vector<double> u(static_cast<size_t>(n * n), 0.0);  // Lᵀ of H⁻¹'s factor
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) u[static_cast<size_t>(j * n + i)] = inv[static_cast<size_t>(i * n + j)];
  return u;
}

}  // namespace

BlockQuantized quantize_blockwise_gptq(const float* w, int64_t rows, int64_t cols, int64_t row_stride,
                                       int64_t col_stride, const std::vector<double>& gram, int bits,
                                       int64_t block_size, bool symmetric, bool clip_search) {
  PTQ_CHECK(static_cast<int64_t>(gram.size()) == cols * cols, InternalError, "GPTQ: Hessian of ", gram.size(),
            " values for K = ", cols);
  const int64_t k = cols;
  std::vector<double> h = gram;
  std::vector<bool> dead(static_cast<size_t>(k), false);
  double mean_diag = 0;
  for (int64_t i = 0; i < k; ++i) {
    double& d = h[static_cast<size_t>(i * k + i)];
    if (d == 0) d = 1, dead[static_cast<size_t>(i)] = true;  // an input channel that is always 0
    mean_diag += d;
  }
  mean_diag /= static_cast<double>(std::max<int64_t>(k, 1));
  for (int64_t i = 0; i < k; ++i) h[static_cast<size_t>(i * k + i)] += 0.01 * mean_diag;
  const std::vector<double> u = inverse_hessian_factor(std::move(h), k);
  if (u.empty()) return quantize_blockwise(w, rows, cols, row_stride, col_stride, bits, block_size, symmetric, clip_search);

  BlockQuantized q = quantize_blockwise(w, rows, cols, row_stride, col_stride, bits, block_size, symmetric, false);
  const int64_t blocks = q.blocks(), blob = q.blob_bytes(), zbytes = q.zero_point_bytes();
  const int32_t qmax = (1 << bits) - 1;
  std::vector<double> wr(static_cast<size_t>(k));
  std::vector<float> v;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < k; ++c)
      wr[static_cast<size_t>(c)] = dead[static_cast<size_t>(c)] ? 0.0 : w[r * row_stride + c * col_stride];
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * block_size, c1 = std::min(k, c0 + block_size);
      v.assign(wr.begin() + c0, wr.begin() + c1);
      const BlockParams p = best_params(v, bits, symmetric, qmax, clip_search);
      q.scales[static_cast<size_t>(r * blocks + b)] = p.scale;
      if (!symmetric) put_code(q.zero_points, r * zbytes, b, bits, p.zero);
      const int64_t base = (r * blocks + b) * blob;
      for (int64_t c = c0; c < c1; ++c) {
        const int32_t code = code_of(static_cast<float>(wr[static_cast<size_t>(c)]), p, qmax);
        put_code(q.data, base, c - c0, bits, code);
        const double err = (wr[static_cast<size_t>(c)] - static_cast<double>(code - p.zero) * p.scale) /
                           u[static_cast<size_t>(c * k + c)];
        for (int64_t j = c + 1; j < k; ++j) wr[static_cast<size_t>(j)] -= err * u[static_cast<size_t>(c * k + j)];
      }
      for (int64_t c = c1; c < c0 + block_size; ++c) put_code(q.data, base, c - c0, bits, p.zero);
    }
  }
  return q;
}

int32_t block_zero_point(const BlockQuantized& q, int64_t r, int64_t block) {
  if (q.symmetric) return 1 << (q.bits - 1);
  return get_code(q.zero_points, r * q.zero_point_bytes(), block, q.bits);
}

int32_t block_code(const BlockQuantized& q, int64_t r, int64_t c) {
  const int64_t b = c / q.block_size;
  return get_code(q.data, (r * q.blocks() + b) * q.blob_bytes(), c % q.block_size, q.bits);
}

std::vector<float> dequantize_blockwise(const BlockQuantized& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t c = 0; c < q.cols; ++c) {
      const int64_t b = c / q.block_size;
      out[static_cast<size_t>(r * q.cols + c)] =
          static_cast<float>(block_code(q, r, c) - block_zero_point(q, r, b)) * q.scales[static_cast<size_t>(r * q.blocks() + b)];
    }
  return out;
}

}  // namespace ptq::quant
