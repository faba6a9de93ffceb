// Integer kernels (QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, ORT's QLinear* ops)
// against straight-loop oracles of the formulas in quantization-reference §5.3.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/ops/int8_gemm.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

template <typename T>
Tensor random_ints(std::mt19937& rng, Dims dims, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  Tensor t = Tensor::empty(DTypeOf<T>::value, std::move(dims));
  for (size_t i = 0; i < t.numel(); ++i) t.mutable_data<T>()[i] = static_cast<T>(d(rng));
  return t;
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

uint8_t requant_u8(int64_t acc, float mult, int zero) {
  const float r = std::nearbyint(static_cast<float>(acc) * mult) + static_cast<float>(zero);
  return static_cast<uint8_t>(std::min(255.f, std::max(0.f, r)));
}

// ORT's accumulator for codes a, b in K order: exact, or (u8 × s8 on x86 without VNNI, see
// int8_gemm.h) the raw products summed in saturated int16 pairs (2j, 2j+1), zero points after.
int64_t ort_dot(const std::vector<int>& a, const std::vector<int>& b, int za, int zb, bool pairs) {
  int64_t s = 0;
  if (!pairs || runtime::int8::u8s8_arith() == runtime::int8::Arith::kExact) {
    for (size_t k = 0; k < a.size(); ++k) s += static_cast<int64_t>(a[k] - za) * (b[k] - zb);
    return s;
  }
  int64_t sa = 0, sb = 0;
  for (size_t k = 0; k < a.size(); k += 2) {
    const int64_t p = a[k] * b[k] + (k + 1 < a.size() ? a[k + 1] * b[k + 1] : 0);
    s += std::min<int64_t>(32767, std::max<int64_t>(-32768, p));
  }
  for (size_t k = 0; k < a.size(); ++k) sa += a[k], sb += b[k];
  return s - za * sb - zb * sa + static_cast<int64_t>(a.size()) * za * zb;
}

// Direct 2-D convolution on integers (pads [1,1,1,1], stride 1), padding reads z_x; K in ORT's
// order (ky, kx, c); depthwise convolutions are exact in ORT.
std::vector<int64_t> conv_oracle(const Tensor& x, int zx, const Tensor& w, const std::vector<int>& zw,
                                 int64_t group) {
  const int64_t C = x.dims()[1], H = x.dims()[2], W = x.dims()[3], M = w.dims()[0];
  const int64_t cg = C / group, mg = M / group, k = w.dims()[2];
  std::vector<int64_t> acc(static_cast<size_t>(M * H * W), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t oy = 0; oy < H; ++oy)
      for (int64_t ox = 0; ox < W; ++ox) {
        std::vector<int> xs, ws;
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx)
            for (int64_t c = 0; c < cg; ++c) {
              const int64_t iy = oy + ky - 1, ix = ox + kx - 1;
              const int64_t ci = (m / mg) * cg + c;
              xs.push_back((iy < 0 || iy >= H || ix < 0 || ix >= W)
                               ? zx : x.data<uint8_t>()[(ci * H + iy) * W + ix]);
              ws.push_back(w.data<int8_t>()[((m * cg + c) * k + ky) * k + kx]);
            }
        acc[static_cast<size_t>((m * H + oy) * W + ox)] =
            ort_dot(xs, ws, zx, zw[static_cast<size_t>(m)], !(cg == 1 && mg == 1));
      }
  return acc;
}

void check_qlinear_conv(int64_t C, int64_t M, int64_t group, int wlo, int whi, size_t threads) {
  std::mt19937 rng(static_cast<unsigned>(C * 131 + M + group));
  const Tensor x = random_ints<uint8_t>(rng, {1, C, 6, 5}, 0, 255);
  const Tensor w = random_ints<int8_t>(rng, {M, C / group, 3, 3}, wlo, whi);
  const Tensor b = random_ints<int32_t>(rng, {M}, -5000, 5000);
  std::vector<float> ws(static_cast<size_t>(M));
  std::vector<int> zw(static_cast<size_t>(M), 0);
  for (auto& s : ws) s = 0.001f + 0.01f * std::uniform_real_distribution<float>(0, 1)(rng);
  const float xs = 0.02f, ys = C > 32 ? 20.f : 0.05f;
  const int zx = 117, zy = 121;
  std::string wsl, zeros;
  for (float s : ws) wsl += (wsl.empty() ? "" : ", ") + std::to_string(s);
  for (int64_t i = 0; i < M; ++i) zeros += i ? ", 0" : "0";
  const std::string m = std::to_string(M);
  const std::string text = "<ir_version: 8, opset_import: [\"\" : 13]>\n"
      "g (uint8[1," + std::to_string(C) + ",6,5] x, int8[a,b,c,d] w, int32[m] bias) => (uint8[n,o,p,q] y)\n"
      "<float xs = {" + std::to_string(xs) + "}, uint8 zx = {117}, float[" + m + "] ws = {" + wsl +
      "}, int8[" + m + "] zw = {" + zeros + "}, float ys = {" + std::to_string(ys) + "}, uint8 zy = {121}> {\n"
      "  y = QLinearConv <pads = [1, 1, 1, 1], group = " + std::to_string(group) +
      "> (x, xs, zx, w, ws, zw, ys, zy, bias) }";
  const Tensor y = test::run_text(text, {{"x", x}, {"w", w}, {"bias", b}}, threads)[0];
  const std::vector<int64_t> acc = conv_oracle(x, zx, w, zw, group);
  ASSERT_EQ(y.numel(), acc.size());
  const float xs_f = std::stof(std::to_string(xs)), ys_f = std::stof(std::to_string(ys));
  for (size_t i = 0; i < acc.size(); ++i) {
    const size_t ch = i / 30;
    const float wsf = std::stof(std::to_string(ws[ch]));
    ASSERT_EQ(y.data<uint8_t>()[i], requant_u8(acc[i] + b.data<int32_t>()[ch], xs_f * wsf / ys_f, zy)) << i;
  }
}

TEST(QLinearConv, MatchesIntegerOracle) { check_qlinear_conv(8, 6, 1, -30, 30, 1); }
TEST(QLinearConv, Depthwise) { check_qlinear_conv(8, 8, 8, -128, 127, 2); }
TEST(QLinearConv, GroupedAndThreaded) { check_qlinear_conv(8, 4, 2, -128, 127, 3); }
// K = 64·9 with full-range weights: large accumulators, many saturating pairs on AVX2.
TEST(QLinearConv, LargeAccumulatorsStayExact) { check_qlinear_conv(64, 4, 1, -128, 127, 2); }

TEST(ConvInteger, AccumulatesWithZeroPoints) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (uint8[1,1,2,2] x, uint8[1,1,2,2] w) => (int32[a,b,c,d] y) <uint8 zx = {10}, uint8 zw = {3}> {
        y = ConvInteger <pads = [0, 0, 1, 1]> (x, w, zx, zw) })",
                                  {{"x", Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {11, 12, 13, 14})},
                                   {"w", Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {4, 5, 6, 7})}})[0];
  // Centred x = [1 2; 3 4] padded with 0 at the bottom/right, w = [1 2; 3 4].
  EXPECT_EQ(values<int32_t>(y), (std::vector<int32_t>{1 + 4 + 9 + 16, 2 * 1 + 4 * 3, 3 * 1 + 4 * 2, 4}));
}

TEST(MatMulInteger, BatchedWithPerColumnZeroPoint) {
  std::mt19937 rng(7);
  const Tensor a = random_ints<uint8_t>(rng, {2, 3, 4}, 0, 255);
  const Tensor b = random_ints<int8_t>(rng, {4, 5}, -128, 127);
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (uint8[2,3,4] a, int8[4,5] b) => (int32[p,q,r] y) <uint8 za = {100}, int8[5] zb = {0, 1, -1, 5, -7}> {
        y = MatMulInteger (a, b, za, zb) })", {{"a", a}, {"b", b}})[0];
  const int zb[5] = {0, 1, -1, 5, -7};
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) {
        std::vector<int> av, bv;
        for (int64_t k = 0; k < 4; ++k) {
          av.push_back(a.data<uint8_t>()[(n * 3 + i) * 4 + k]);
          bv.push_back(b.data<int8_t>()[k * 5 + j]);
        }
        EXPECT_EQ(y.data<int32_t>()[(n * 3 + i) * 5 + j], ort_dot(av, bv, 100, zb[j], true));
      }
}

TEST(QLinearMatMul, RequantizesPerTensor) {
  std::mt19937 rng(3);
  const Tensor a = random_ints<uint8_t>(rng, {3, 40}, 0, 255);
  const Tensor b = random_ints<int8_t>(rng, {40, 2}, -128, 127);
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (uint8[3,40] a, int8[40,2] b) => (uint8[p,q] y)
      <float sa = {0.5}, uint8 za = {128}, float sb = {0.25}, int8 zb = {0}, float sy = {64.0}, uint8 zy = {128}> {
        y = QLinearMatMul (a, sa, za, b, sb, zb, sy, zy) })", {{"a", a}, {"b", b}})[0];
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      std::vector<int> av, bv;
      for (int64_t k = 0; k < 40; ++k) {
        av.push_back(a.data<uint8_t>()[i * 40 + k]);
        bv.push_back(b.data<int8_t>()[k * 2 + j]);
      }
      const int64_t s = ort_dot(av, bv, 128, 0, true);
      EXPECT_EQ(y.data<uint8_t>()[i * 2 + j], requant_u8(s, 0.5f * 0.25f / 64.f, 128));
    }
}

TEST(QLinearAdd, ExactSumsAndBroadcast) {
  // s_a/s_c = 1 and s_b/s_c = 2: every result is an integer, so rounding cannot hide errors.
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (uint8[2,3] a, uint8[3] b) => (uint8[p,q] y)
      <float sa = {0.5}, uint8 za = {10}, float sb = {1.0}, uint8 zb = {20}, float sc = {0.5}, uint8 zc = {30}> {
        y = com.microsoft.QLinearAdd (a, sa, za, b, sb, zb, sc, zc) })",
      {{"a", Tensor::from_vector<uint8_t>({2, 3}, {10, 11, 255, 0, 50, 100})},
       {"b", Tensor::from_vector<uint8_t>({3}, {20, 21, 0})}})[0];
  // c = (a − 10) + 2(b − 20) + 30, saturated.
  EXPECT_EQ(values<uint8_t>(y), (std::vector<uint8_t>{30, 33, 235, 20, 72, 80}));
  // Both operands broadcast ([2, 1] + [1, 3]), and a scalar operand (HardSwish's Add(x, 3)).
  const auto add = [](Dims ad, std::vector<uint8_t> av, Dims bd, std::vector<uint8_t> bv) {
    return values<uint8_t>(test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (uint8[p,q] a, uint8[r,s] b) => (uint8[m,n] y)
      <float sa = {0.5}, uint8 za = {10}, float sb = {1.0}, uint8 zb = {20}, float sc = {0.5}, uint8 zc = {30}> {
        y = com.microsoft.QLinearAdd (a, sa, za, b, sb, zb, sc, zc) })",
        {{"a", Tensor::from_vector<uint8_t>(ad, av)}, {"b", Tensor::from_vector<uint8_t>(bd, bv)}})[0]);
  };
  EXPECT_EQ(add({2, 1}, {10, 12}, {1, 3}, {20, 21, 22}), (std::vector<uint8_t>{30, 32, 34, 32, 34, 36}));
  EXPECT_EQ(add({2, 3}, {10, 11, 12, 13, 14, 15}, {1, 1}, {21}), (std::vector<uint8_t>{32, 33, 34, 35, 36, 37}));
}

TEST(QLinearMul, ProductOfCentredValues) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (int8[4] a, int8[4] b) => (int8[p] y)
      <float sa = {0.5}, int8 za = {0}, float sb = {0.5}, int8 zb = {2}, float sc = {0.25}, int8 zc = {-1}> {
        y = com.microsoft.QLinearMul (a, sa, za, b, sb, zb, sc, zc) })",
      {{"a", Tensor::from_vector<int8_t>({4}, {3, -4, 100, 0})},
       {"b", Tensor::from_vector<int8_t>({4}, {5, 3, 10, 9})}})[0];
  // c = a(b − 2) − 1, saturated to int8.
  EXPECT_EQ(values<int8_t>(y), (std::vector<int8_t>{8, -5, 127, -1}));
}

TEST(QLinearGlobalAveragePool, IntegerSumThenRequantize) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (uint8[1,2,2,2] x) => (uint8[a,b,c,d] y)
      <float sx = {0.1}, uint8 zx = {4}, float sy = {0.1}, uint8 zy = {6}> {
        y = com.microsoft.QLinearGlobalAveragePool (x, sx, zx, sy, zy) })",
      {{"x", Tensor::from_vector<uint8_t>({1, 2, 2, 2}, {4, 6, 8, 10, 0, 1, 2, 4})}})[0];
  EXPECT_EQ(y.dims(), (Dims{1, 2, 1, 1}));
  // Channel 0: mean(x − 4) = 3 -> 9. Channel 1: mean = −2.25 -> −2 -> 4.
  EXPECT_EQ(values<uint8_t>(y), (std::vector<uint8_t>{9, 4}));
}

TEST(QLinearConcat, CopiesEqualParametersAndRequantizesOthers) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (uint8[1,2] a, uint8[1,1] b) => (uint8[p,q] y)
      <float sy = {0.5}, uint8 zy = {10}, float sb = {1.0}, uint8 zb = {0}> {
        y = com.microsoft.QLinearConcat <axis = 1> (sy, zy, a, sy, zy, b, sb, zb) })",
      {{"a", Tensor::from_vector<uint8_t>({1, 2}, {7, 250})}, {"b", Tensor::from_vector<uint8_t>({1, 1}, {3})}})[0];
  // b = 3.0 real -> 3 / 0.5 + 10 = 16.
  EXPECT_EQ(values<uint8_t>(y), (std::vector<uint8_t>{7, 250, 16}));
}

TEST(QLinearSigmoid, TableOfDequantizeSigmoidQuantize) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
      g (int8[3] x) => (int8[p] y) <float sx = {0.1}, int8 zx = {0}, float sy = {0.00390625}, int8 zy = {-128}> {
        y = com.microsoft.QLinearSigmoid (x, sx, zx, sy, zy) })",
      {{"x", Tensor::from_vector<int8_t>({3}, {0, 127, -128})}})[0];
  // sigmoid(0) = 0.5 -> 128 − 128; sigmoid(12.7) -> 256 − 128, saturated; sigmoid(−12.8) -> −128.
  EXPECT_EQ(values<int8_t>(y), (std::vector<int8_t>{0, 127, -128}));
}

}  // namespace
}  // namespace ptq
