// Elementwise ops: broadcasting, opset-dependent Softmax and Clip, integer Div, Cast truncation,
// the AVX2 Sigmoid against the std::exp formula.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ptq/runtime/fast_kernels.h"

#include "runtime_testutil.h"

namespace ptq {
namespace {

// The fast Sigmoid (8 lanes, Cephes exp) against the reference formula 1 / (1 + std::exp(-x)):
// a sweep over [-100, 100] with the specials, longer than one parallel chunk and not a multiple
// of 8, so chunk boundaries and the tail are covered; and bit-identical for 1 and 3 threads.
TEST(Unary, FastSigmoidMatchesTheStdFormulaAndIgnoresChunking) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> v;
  for (int i = 0; i < 40003; ++i) v.push_back(-100.f + 200.f * float(i) / 40002.f);
  for (float s : {0.f, -0.f, kInf, -kInf, 1e-40f, -1e-40f, 87.f, -87.f, 88.5f, -88.5f, 89.f, -89.f, 17.f})
    v.push_back(s);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  const Tensor x = Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[n] x) => (float[n] y) { y = Sigmoid (x) })";
  runtime::set_fast_kernels(true);
  const Tensor y1 = test::run_text(text, {{"x", x}}, 1)[0];
  const Tensor y3 = test::run_text(text, {{"x", x}}, 3)[0];
  EXPECT_TRUE(y1.bit_equal(y3));
  runtime::set_avx512_kernels(false);  // 8 lanes: the same bits as 16
  const Tensor y8 = test::run_text(text, {{"x", x}}, 1)[0];
  runtime::set_avx512_kernels(true);
  EXPECT_TRUE(y1.bit_equal(y8));
  for (size_t i = 0; i < v.size(); ++i) {
    const float want = 1.f / (1.f + std::exp(-v[i])), got = y1.data<float>()[i];
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << v[i];
      continue;
    }
    // A few ulp of the result, or denormal-small where exp overflows (sigmoid(-89) ~ 2e-39).
    EXPECT_LE(std::fabs(got - want), 4 * std::numeric_limits<float>::epsilon() * want + 1e-37f)
        << "x " << v[i] << " want " << want << " got " << got << " (fast kernels: " << runtime::fast_kernels_active() << ")";
  }
}

TEST(Binary, GeneralBroadcastMatchesIndexArithmetic) {
  std::mt19937 rng(7767517);
  const Tensor a = test::random_floats(rng, {2, 1, 4, 3});
  const Tensor b = test::random_floats(rng, {5, 1, 3});
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[p, q, r, s] a, float[t, u, v] b) => (float[w, x, y, z] y) { y = Sub (a, b) })",
                                  {{"a", a}, {"b", b}})[0];
  ASSERT_EQ(y.dims(), (Dims{2, 5, 4, 3}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t k = 0; k < 4; ++k)
        for (int64_t l = 0; l < 3; ++l)
          ASSERT_EQ(y.data<float>()[((i * 5 + j) * 4 + k) * 3 + l],
                    a.data<float>()[(i * 4 + k) * 3 + l] - b.data<float>()[j * 3 + l]);
}

TEST(Binary, IntegerDivTruncatesTowardZero) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (int64[n] a, int64[m] b) => (int64[k] y) { y = Div (a, b) })",
                                  {{"a", Tensor::from_vector<int64_t>({4}, {7, -7, 7, -7})},
                                   {"b", Tensor::from_vector<int64_t>({4}, {2, 2, -2, -2})}})[0];
  EXPECT_EQ(std::vector<int64_t>(y.data<int64_t>(), y.data<int64_t>() + 4),
            (std::vector<int64_t>{3, -3, -3, 3}));
}

// Softmax before 13 normalizes over the flattened tail from `axis`; from 13 over one axis.
TEST(Softmax, OpsetChangesTheNormalizedAxes) {
  std::mt19937 rng(3);
  const Tensor x = test::random_floats(rng, {2, 3, 4});
  auto run = [&](int opset) {
    return test::run_text("<ir_version: 7, opset_import: [\"\" : " + std::to_string(opset) + R"(]>
        g (float[a, b, c] x) => (float[d, e, f] y) { y = Softmax <axis = 1> (x) })",
                          {{"x", x}})[0];
  };
  const Tensor y11 = run(11), y13 = run(13);
  const float* p = x.data<float>();
  for (int64_t n = 0; n < 2; ++n) {
    double tail = 0;
    for (int64_t i = 0; i < 12; ++i) tail += std::exp(double(p[n * 12 + i]));
    for (int64_t i = 0; i < 12; ++i)
      EXPECT_NEAR(y11.data<float>()[n * 12 + i], std::exp(double(p[n * 12 + i])) / tail, 1e-6);
    for (int64_t k = 0; k < 4; ++k) {
      double s = 0;
      for (int64_t c = 0; c < 3; ++c) s += std::exp(double(p[n * 12 + c * 4 + k]));
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_NEAR(y13.data<float>()[n * 12 + c * 4 + k], std::exp(double(p[n * 12 + c * 4 + k])) / s, 1e-6);
    }
  }
}

TEST(Clip, AttributesBefore11InputsFrom11) {
  const Tensor x = Tensor::from_vector<float>({5}, {-3, -0.5f, 0.25f, 2, 9});
  const Tensor a = test::run_text(R"(<ir_version: 7, opset_import: ["" : 6]>
      g (float[n] x) => (float[m] y) { y = Clip <min = -1.0, max = 1.0> (x) })", {{"x", x}})[0];
  const Tensor b = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[n] x) => (float[m] y) <float lo = {0.0}, float hi = {6.0}> { y = Clip (x, lo, hi) })",
                                  {{"x", x}})[0];
  EXPECT_EQ(std::vector<float>(a.data<float>(), a.data<float>() + 5),
            (std::vector<float>{-1, -0.5f, 0.25f, 1, 1}));
  EXPECT_EQ(std::vector<float>(b.data<float>(), b.data<float>() + 5),
            (std::vector<float>{0, 0, 0.25f, 2, 6}));
}

TEST(Cast, FloatToIntTruncatesAndBoolIsNonZero) {
  const Tensor x = Tensor::from_vector<float>({4}, {2.7f, -2.7f, 0.f, -0.5f});
  const auto y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[n] x) => (int32[m] i, bool[k] b) { i = Cast <to = 6> (x)  b = Cast <to = 9> (x) })",
                                {{"x", x}});
  EXPECT_EQ(std::vector<int32_t>(y[0].data<int32_t>(), y[0].data<int32_t>() + 4),
            (std::vector<int32_t>{2, -2, 0, 0}));
  EXPECT_EQ(std::vector<bool>(y[1].data<bool>(), y[1].data<bool>() + 4),
            (std::vector<bool>{true, true, false, true}));
}

}  // namespace
}  // namespace ptq
