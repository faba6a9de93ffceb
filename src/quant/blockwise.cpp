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
      BlockParams p = params_for(v, bits, symmetric, 1.f);
      if (clip_search) {
        double best = block_error(v, p, qmax);
        for (int i = 1; i <= 5; ++i) {
          const BlockParams t = params_for(v, bits, symmetric, 1.f - 0.05f * static_cast<float>(i));
          const double e = block_error(v, t, qmax);
          if (e < best) best = e, p = t;
        }
      }
      q.scales[static_cast<size_t>(r * blocks + b)] = p.scale;
      if (!symmetric) put_code(q.zero_points, r * zbytes, b, bits, p.zero);
      const int64_t base = (r * blocks + b) * blob;
      for (int64_t i = 0; i < block_size; ++i)  // padding past cols holds the zero point (value 0)
        put_code(q.data, base, i, bits, c0 + i < c1 ? code_of(v[static_cast<size_t>(i)], p, qmax) : p.zero);
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
