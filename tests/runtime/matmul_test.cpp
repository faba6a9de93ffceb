// MatMul (batch broadcasting, 1-D promotion) and Gemm (trans, alpha/beta, C broadcast) vs loops.
#include <gtest/gtest.h>

#include "runtime_testutil.h"

namespace ptq {
namespace {

// C[b, i, j] = sum_k A[b?, i, k] B[b?, k, j] for rank-3 (batch broadcast on dim 0 only).
Tensor batched_oracle(const Tensor& a, const Tensor& b) {
  const int64_t ba = a.dims()[0], bb = b.dims()[0], B = std::max(ba, bb);
  const int64_t M = a.dims()[1], K = a.dims()[2], N = b.dims()[2];
  Tensor y = Tensor::zeros(DType::kFloat, {B, M, N});
  for (int64_t q = 0; q < B; ++q)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += double(a.data<float>()[((ba == 1 ? 0 : q) * M + i) * K + k]) *
                 b.data<float>()[((bb == 1 ? 0 : q) * K + k) * N + j];
        y.mutable_data<float>()[(q * M + i) * N + j] = float(acc);
      }
  return y;
}

constexpr const char* kMatMul = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c] x, float[d, e, f] w) => (float[g, h, i] y) { y = MatMul (x, w) })";

TEST(MatMul, BatchBroadcastBothWaysAndThreadInvariance) {
  std::mt19937 rng(7767517);
  for (auto [ba, bb, M, K, N] : std::vector<std::array<int64_t, 5>>{
           {1, 1, 1, 7, 3}, {3, 1, 70, 17, 33}, {1, 4, 5, 9, 2}, {2, 2, 33, 64, 65}}) {
    const Tensor a = test::random_floats(rng, {ba, M, K});
    const Tensor b = test::random_floats(rng, {bb, K, N});
    const Tensor y1 = test::run_text(kMatMul, {{"x", a}, {"w", b}}, 1)[0];
    const Tensor y2 = test::run_text(kMatMul, {{"x", a}, {"w", b}}, 2)[0];
    EXPECT_TRUE(y1.bit_equal(y2));
    EXPECT_LT(test::max_abs_diff(y1, batched_oracle(a, b)), 1e-4f) << ba << " " << bb << " " << M;
  }
}

TEST(MatMul, OneDimensionalOperandsArePromotedAndDropped) {
  std::mt19937 rng(1);
  const Tensor v = test::random_floats(rng, {5});
  const Tensor m = test::random_floats(rng, {5, 3});
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a] v, float[b, c] m) => (float[d] y) { y = MatMul (v, m) })",
                                  {{"v", v}, {"m", m}})[0];
  ASSERT_EQ(y.dims(), (Dims{3}));
  const Tensor ref = batched_oracle(v.reshaped({1, 1, 5}), m.reshaped({1, 5, 3}));
  EXPECT_LT(test::max_abs_diff(y, ref.reshaped({3})), 1e-5f);
}

TEST(Gemm, TransposesAlphaBetaAndBroadcastC) {
  std::mt19937 rng(2345);
  const int64_t M = 37, K = 19, N = 11;
  const Tensor a = test::random_floats(rng, {K, M});  // transA
  const Tensor b = test::random_floats(rng, {N, K});  // transB
  const Tensor c = test::random_floats(rng, {N});     // broadcast over rows
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[p, q] a, float[r, s] b, float[t] c) => (float[u, v] y) {
        y = Gemm <alpha = 0.5, beta = 2.0, transA = 1, transB = 1> (a, b, c)
      })", {{"a", a}, {"b", b}, {"c", c}}, 2)[0];
  ASSERT_EQ(y.dims(), (Dims{M, N}));
  float worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += double(a.data<float>()[k * M + i]) * b.data<float>()[j * K + k];
      const double ref = 0.5 * acc + 2.0 * c.data<float>()[j];
      worst = std::max(worst, float(std::abs(ref - y.data<float>()[i * N + j])));
    }
  EXPECT_LT(worst, 1e-5f);
}

}  // namespace
}  // namespace ptq
