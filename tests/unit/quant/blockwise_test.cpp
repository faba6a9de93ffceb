// Blockwise 4/8-bit packing (MatMulNBits / GatherBlockQuantized layout): round trips, nibble order, padding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ptq/quant/blockwise.h"

namespace ptq::quant {
namespace {

std::vector<float> random_values(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Every value comes back within half a step of its block; symmetric within one: the step is set by
// the largest magnitude, so a value near its opposite clamps at 2^(bits-1)-1.
TEST(Blockwise, RoundTripWithinHalfAStep) {
  for (int bits : {4, 8})
    for (bool symmetric : {false, true})
      for (int64_t block : {16, 32, 128}) {
        SCOPED_TRACE(testing::Message() << bits << " bits, block " << block << (symmetric ? " sym" : " asym"));
        const int64_t rows = 5, cols = 200;  // 200: the last block is partial
        const std::vector<float> w = random_values(static_cast<size_t>(rows * cols), 7);
        const BlockQuantized q = quantize_blockwise(w.data(), rows, cols, cols, 1, bits, block, symmetric);
        ASSERT_EQ(q.data.size(), static_cast<size_t>(rows * q.blocks() * block * bits / 8));
        ASSERT_EQ(q.scales.size(), static_cast<size_t>(rows * q.blocks()));
        EXPECT_EQ(q.zero_points.size(), symmetric ? 0u : static_cast<size_t>(rows * q.zero_point_bytes()));
        const std::vector<float> back = dequantize_blockwise(q);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) {
            const float s = std::fabs(q.scales[static_cast<size_t>(r * q.blocks() + c / block)]);
            ASSERT_LE(std::fabs(back[r * cols + c] - w[r * cols + c]), (symmetric ? 1.f : 0.5f) * s * 1.0001f)
                << r << "," << c;
          }
      }
}

// Codes two per byte, the even index in the low nibble; zero points packed the same way.
TEST(Blockwise, NibbleOrderAndZeroPointPacking) {
  // One row, two blocks of 16: block 0 holds 0..15 (scale 1, zero point 0), block 1 is all -1.
  std::vector<float> w(32);
  for (int i = 0; i < 16; ++i) w[i] = static_cast<float>(i);
  for (int i = 16; i < 32; ++i) w[i] = -1.f;
  const BlockQuantized q = quantize_blockwise(w.data(), 1, 32, 32, 1, 4, 16, false);
  EXPECT_FLOAT_EQ(q.scales[0], 1.f);
  EXPECT_EQ(q.data[0], 0x10);  // codes 0 (low) and 1 (high)
  EXPECT_EQ(q.data[7], 0xFE);  // codes 14 and 15
  // Block 1: range [-1, 0] -> scale 1/15, zero point 15, -1 -> code 0.
  EXPECT_EQ(q.data[8], 0x00);
  ASSERT_EQ(q.zero_points.size(), 1u);
  EXPECT_EQ(q.zero_points[0], 0xF0);  // block 0's zero point 0 low, block 1's 15 high
  EXPECT_EQ(block_zero_point(q, 0, 1), 15);
  EXPECT_EQ(block_code(q, 0, 5), 5);
  // 8 bits: one code per byte.
  const BlockQuantized q8 = quantize_blockwise(w.data(), 1, 32, 32, 1, 8, 16, false);
  EXPECT_EQ(q8.data.size(), 32u);
  EXPECT_EQ(q8.zero_points.size(), 2u);
}

// Symmetric: the largest magnitude maps to code 0 (-2^(bits-1) steps), zero to the implicit 8/128.
TEST(Blockwise, SymmetricUsesTheWholeSignedRange) {
  std::vector<float> w(16, 0.f);
  w[3] = 4.f;
  w[4] = -2.f;
  const BlockQuantized q = quantize_blockwise(w.data(), 1, 16, 16, 1, 4, 16, true);
  EXPECT_FLOAT_EQ(q.scales[0], -0.5f);
  EXPECT_EQ(block_code(q, 0, 3), 0);
  EXPECT_EQ(block_code(q, 0, 4), 12);
  EXPECT_EQ(block_code(q, 0, 0), 8);
  EXPECT_EQ(block_zero_point(q, 0, 0), 8);
  EXPECT_FLOAT_EQ(dequantize_blockwise(q)[3], 4.f);
}

// A [K, N] weight quantized along K per column (MatMulNBits) equals the transposed table's rows;
// the padding past K holds the zero point; an all-zero block dequantizes to zeros.
TEST(Blockwise, StridesPaddingAndZeroBlocks) {
  const int64_t K = 40, N = 3;
  std::vector<float> w = random_values(static_cast<size_t>(K * N), 3);
  for (int64_t n = 0; n < N; ++n) w[static_cast<size_t>(0 * N + n)] = 0.f;
  std::vector<float> t(static_cast<size_t>(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) t[static_cast<size_t>(n * K + k)] = w[static_cast<size_t>(k * N + n)];
  const BlockQuantized a = quantize_blockwise(w.data(), N, K, 1, N, 4, 16, false);
  const BlockQuantized b = quantize_blockwise(t.data(), N, K, K, 1, 4, 16, false);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zero_points, b.zero_points);
  // Block 2 covers k = 32..47: codes 8..15 of it are padding.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 8; j < 16; ++j)
      EXPECT_EQ(block_code(a, n, 32 + j), block_zero_point(a, n, 2)) << n << "," << j;
  const std::vector<float> zeros(32, 0.f);
  for (bool symmetric : {false, true}) {
    const BlockQuantized z = quantize_blockwise(zeros.data(), 1, 32, 32, 1, 4, 16, symmetric, true);
    for (float v : dequantize_blockwise(z)) EXPECT_EQ(v, 0.f);
  }
}

// The clip search never increases a block's squared error over plain RTN.
TEST(Blockwise, ClipSearchNeverWorse) {
  std::vector<float> w = random_values(64 * 128, 11);
  for (size_t i = 0; i < w.size(); i += 97) w[i] *= 8.f;  // outliers, where clipping pays
  for (int bits : {4, 8}) {
    const BlockQuantized rtn = quantize_blockwise(w.data(), 64, 128, 128, 1, bits, 32, false, false);
    const BlockQuantized clip = quantize_blockwise(w.data(), 64, 128, 128, 1, bits, 32, false, true);
    const std::vector<float> a = dequantize_blockwise(rtn), b = dequantize_blockwise(clip);
    double ea = 0, eb = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      ea += (a[i] - w[i]) * (a[i] - w[i]);
      eb += (b[i] - w[i]) * (b[i] - w[i]);
    }
    EXPECT_LE(eb, ea) << bits;
    if (bits == 4) {
      EXPECT_LT(eb, ea);
    }
  }
}

}  // namespace
}  // namespace ptq::quant

namespace ptq::quant {
namespace {

// GPTQ lowers the MatMul output error ||X·W - X·Ŵ||² below RTN's with the same blocks on
// correlated inputs, keeps the layout (codes of an unused input channel are irrelevant: its
// weights are zeroed), and falls back to RTN for a Hessian that is not positive definite.
TEST(Blockwise, GptqBeatsRtnOnTheOutputError) {
  const int64_t rows = 256, K = 48, N = 10;
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(rows * K)), w(static_cast<size_t>(K * N));
  for (int64_t r = 0; r < rows; ++r) {
    const float common = d(rng);
    for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(r * K + k)] = k == 7 ? 0.f : common + 0.3f * d(rng);
  }
  for (float& v : w) v = d(rng);
  std::vector<double> gram(static_cast<size_t>(K * K), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j)
        gram[static_cast<size_t>(i * K + j)] += static_cast<double>(x[r * K + i]) * x[r * K + j];
  const auto output_error = [&](const BlockQuantized& q) {
    const std::vector<float> wq = dequantize_blockwise(q);  // [N, K]
    double e = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < N; ++n) {
        double a = 0, b = 0;
        for (int64_t k = 0; k < K; ++k) {
          a += static_cast<double>(x[r * K + k]) * w[k * N + n];
          b += static_cast<double>(x[r * K + k]) * wq[n * K + k];
        }
        e += (a - b) * (a - b);
      }
    return e;
  };
  for (int bits : {4, 8}) {
    SCOPED_TRACE(bits);
    const BlockQuantized rtn = quantize_blockwise(w.data(), N, K, 1, N, bits, 16, false, true);
    const BlockQuantized gptq = quantize_blockwise_gptq(w.data(), N, K, 1, N, gram, bits, 16, false, true);
    EXPECT_EQ(gptq.data.size(), rtn.data.size());
    EXPECT_EQ(gptq.zero_points.size(), rtn.zero_points.size());
    EXPECT_LT(output_error(gptq), 0.8 * output_error(rtn));
  }
  std::vector<double> bad(static_cast<size_t>(K * K), 0.0);
  bad[1] = -5.0;  // zero diagonal (dead channels) but an impossible off-diagonal: not positive definite
  bad[K] = -5.0;
  const BlockQuantized fallback = quantize_blockwise_gptq(w.data(), N, K, 1, N, bad, 4, 16, false, true);
  EXPECT_EQ(fallback.data, quantize_blockwise(w.data(), N, K, 1, N, 4, 16, false, true).data);
}

}  // namespace
}  // namespace ptq::quant
