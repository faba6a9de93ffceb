// MatMul (batch broadcasting, 1-D promotion) and Gemm (trans, alpha/beta, C broadcast) vs loops.
#include <gtest/gtest.h>

#include <cstdio>

#include "ptq/runtime/fast_kernels.h"
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

// ONNX text for a constant tensor: float[d0, d1] name = {v, ...} with round-trip digits.
std::string literal(const std::string& name, const Tensor& t) {
  std::string s = "float[";
  for (size_t i = 0; i < t.rank(); ++i) s += (i ? ", " : "") + std::to_string(t.dims()[i]);
  s += "] " + name + " = {";
  char buf[32];
  for (size_t i = 0; i < t.numel(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", double(t.data<float>()[i]));
    s += buf;
  }
  return s + "}";
}

struct FastKernels {
  explicit FastKernels(bool on) { runtime::set_fast_kernels(on); }
  ~FastKernels() { runtime::set_fast_kernels(true); }
};

// A constant B is packed once for the fast kernel; row and column blocks must not change bits.
TEST(MatMul, ConstantWeightsFastKernelMatchesReference) {
  std::mt19937 rng(99);
  for (auto [ba, M, K, N] : std::vector<std::array<int64_t, 4>>{
           {1, 1, 64, 300}, {2, 100, 40, 70}, {1, 7, 5, 16}, {3, 13, 33, 17}}) {
    const Tensor a = test::random_floats(rng, {ba, M, K});
    const Tensor b = test::random_floats(rng, {K, N});
    const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
        g (float[p, q, r] x) => (float[s, t, u] y) <)" + literal("w", b) + R"(> {
          y = MatMul (x, w)
        })";
    std::vector<Tensor> ys;
    for (bool fast : {true, false}) {
      FastKernels mode(fast);
      const Tensor y1 = test::run_text(text, {{"x", a}}, 1)[0];
      const Tensor y3 = test::run_text(text, {{"x", a}}, 3)[0];
      EXPECT_TRUE(y1.bit_equal(y3)) << "fast " << fast << " M " << M;
      EXPECT_LT(test::max_abs_diff(y1, batched_oracle(a, b.reshaped({1, K, N}))), 1e-4f);
      ys.push_back(y1);
    }
    EXPECT_LT(test::max_abs_diff(ys[0], ys[1]), 1e-5f) << M << " " << K << " " << N;
  }
}

TEST(Gemm, ConstantWeightsFastKernelMatchesReference) {
  std::mt19937 rng(77);
  const int64_t M = 201, K = 23, N = 40;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Tensor a = test::random_floats(rng, ta ? Dims{K, M} : Dims{M, K});
      const Tensor b = test::random_floats(rng, tb ? Dims{N, K} : Dims{K, N});
      const Tensor c = test::random_floats(rng, {M, 1});
      const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
          g (float[p, q] a, float[r, s] c) => (float[u, v] y) <)" + literal("b", b) + R"(> {
            y = Gemm <alpha = 0.75, beta = -1.5, transA = )" + std::to_string(ta) +
                               ", transB = " + std::to_string(tb) + R"(> (a, b, c)
          })";
      std::vector<Tensor> ys;
      for (bool fast : {true, false}) {
        FastKernels mode(fast);
        const Tensor y1 = test::run_text(text, {{"a", a}, {"c", c}}, 1)[0];
        const Tensor y2 = test::run_text(text, {{"a", a}, {"c", c}}, 2)[0];
        EXPECT_TRUE(y1.bit_equal(y2));
        ys.push_back(y1);
      }
      ASSERT_EQ(ys[0].dims(), (Dims{M, N}));
      float worst = 0;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc += double(a.data<float>()[ta ? k * M + i : i * K + k]) *
                   b.data<float>()[tb ? j * K + k : k * N + j];
          const double ref = 0.75 * acc - 1.5 * c.data<float>()[i];
          worst = std::max(worst, float(std::abs(ref - ys[0].data<float>()[i * N + j])));
        }
      EXPECT_LT(worst, 1e-5f) << ta << tb;
      EXPECT_LT(test::max_abs_diff(ys[0], ys[1]), 1e-5f) << ta << tb;
    }
}

}  // namespace
}  // namespace ptq
