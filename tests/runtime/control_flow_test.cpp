// If with outer-scope captures (nested), Resize against direct formulas, LSTM against loop equations.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime_testutil.h"

namespace ptq {
namespace {

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

TEST(If, BranchesReadTheEnclosingScopeIncludingNested) {
  const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (bool c, bool d, float[2] x) => (float[2] y) <float[2] k = {10.0, 20.0}> {
      s = Relu (x)
      y = If (c) <
        then_branch = t () => (float[2] a) {
          a = If (d) <then_branch = tt () => (float[2] p) { p = Add (s, k) },
                      else_branch = te () => (float[2] q) { q = Mul (s, k) }>
        },
        else_branch = e () => (float[2] b) { b = Sub (s, k) }>
    })";
  auto run = [&](bool c, bool d) {
    return values(test::run_text(text, {{"c", Tensor::scalar(c)}, {"d", Tensor::scalar(d)},
                                        {"x", Tensor::from_vector<float>({2}, {1, -2})}})[0]);
  };
  EXPECT_EQ(run(true, true), (std::vector<float>{11, 20}));
  EXPECT_EQ(run(true, false), (std::vector<float>{10, 0}));
  EXPECT_EQ(run(false, true), (std::vector<float>{-9, -20}));
}

TEST(Resize, NearestAsymmetricFloorAndLinearHalfPixel) {
  Tensor x = Tensor::empty(DType::kFloat, {1, 1, 3, 4});
  for (int i = 0; i < 12; ++i) x.mutable_data<float>()[i] = float(i * i % 7);
  auto run = [&](const std::string& attrs, const std::string& scales) {
    return test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x) => (float[e, f, g, h] y) <float[4] s = )" + scales + R"(> {
        y = Resize <)" + attrs + R"(> (x, , s) })", {{"x", x}})[0];
  };
  const Tensor n = run(R"(mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor")",
                       "{1.0, 1.0, 2.0, 1.5}");
  ASSERT_EQ(n.dims(), (Dims{1, 1, 6, 6}));
  for (int oy = 0; oy < 6; ++oy)
    for (int ox = 0; ox < 6; ++ox)
      EXPECT_EQ(n.data<float>()[oy * 6 + ox],
                x.data<float>()[int(std::floor(oy / 2.0f)) * 4 + int(std::floor(ox / 1.5f))]);
  const Tensor l = run(R"(mode = "linear")", "{1.0, 1.0, 2.0, 2.0}");
  ASSERT_EQ(l.dims(), (Dims{1, 1, 6, 8}));
  auto at = [&](int y, int xx) {
    return x.data<float>()[std::clamp(y, 0, 2) * 4 + std::clamp(xx, 0, 3)];
  };
  for (int oy = 0; oy < 6; ++oy)
    for (int ox = 0; ox < 8; ++ox) {
      const float sy = std::clamp((oy + 0.5f) / 2 - 0.5f, 0.f, 2.f), sx = std::clamp((ox + 0.5f) / 2 - 0.5f, 0.f, 3.f);
      const int y0 = int(std::floor(sy)), x0 = int(std::floor(sx));
      const float wy = sy - y0, wx = sx - x0;
      const float ref = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                        wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
      EXPECT_NEAR(l.data<float>()[oy * 8 + ox], ref, 1e-5) << oy << "," << ox;
    }
}

TEST(Lstm, ForwardMatchesTheGateEquations) {
  std::mt19937 rng(7767517);
  const int64_t T = 3, N = 2, I = 5, H = 4;
  const Tensor x = test::random_floats(rng, {T, N, I});
  const Tensor w = test::random_floats(rng, {1, 4 * H, I});
  const Tensor r = test::random_floats(rng, {1, 4 * H, H});
  const Tensor b = test::random_floats(rng, {1, 8 * H});
  const Tensor h0 = test::random_floats(rng, {1, N, H});
  const Tensor c0 = test::random_floats(rng, {1, N, H});
  const auto y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 14]>
      g (float[a, b, c] x, float[d, e, f] w, float[g, h, i] r, float[j, k] bias, float[l, m, n] h0,
         float[o, p, q] c0) => (float[s, t, u, v] y, float[w1, x1, y1] yh, float[w2, x2, y2] yc) {
        y, yh, yc = LSTM <hidden_size = 4> (x, w, r, bias, , h0, c0) })",
                                {{"x", x}, {"w", w}, {"r", r}, {"bias", b}, {"h0", h0}, {"c0", c0}});
  std::vector<double> h(h0.data<float>(), h0.data<float>() + N * H), c(c0.data<float>(), c0.data<float>() + N * H);
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> hn(h.size()), cn(c.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < H; ++k) {
        double g[4];
        for (int gate = 0; gate < 4; ++gate) {  // i, o, f, c
          const int64_t row = gate * H + k;
          double v = b.data<float>()[row] + b.data<float>()[4 * H + row];
          for (int64_t q = 0; q < I; ++q) v += x.data<float>()[(t * N + n) * I + q] * w.data<float>()[row * I + q];
          for (int64_t q = 0; q < H; ++q) v += h[n * H + q] * r.data<float>()[row * H + q];
          g[gate] = v;
        }
        cn[n * H + k] = sig(g[2]) * c[n * H + k] + sig(g[0]) * std::tanh(g[3]);
        hn[n * H + k] = sig(g[1]) * std::tanh(cn[n * H + k]);
        EXPECT_NEAR(y[0].data<float>()[(t * N + n) * H + k], hn[n * H + k], 1e-5);
      }
    h = hn;
    c = cn;
  }
  for (int64_t i = 0; i < N * H; ++i) {
    EXPECT_NEAR(y[1].data<float>()[i], h[i], 1e-5);
    EXPECT_NEAR(y[2].data<float>()[i], c[i], 1e-5);
  }
}

}  // namespace
}  // namespace ptq
