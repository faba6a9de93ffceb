// ConvTranspose against a scatter-loop oracle over groups, strides, dilations, pads, output_padding
// and 1-D, bit-identical for any thread count; the shape rules for auto_pad and output_shape.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

struct Case {
  int64_t n, c, h, w, m, kh, kw, group;
  std::vector<int64_t> strides, pads, dilations, output_padding;
};

std::string ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The ONNX definition read forwards: input pixel (iy, ix) of channel c adds x·w[c, m, ky, kx] to
// output (iy·s - p + ky·d, ix·s - p + kx·d) when that lies inside the output.
Tensor oracle(const Tensor& x, const Tensor& w, const Tensor& b, int64_t group,
              const std::vector<int64_t>& s, const std::vector<int64_t>& p,
              const std::vector<int64_t>& d, const std::vector<int64_t>& op) {
  const int64_t N = x.dims()[0], C = x.dims()[1], H = x.dims()[2], W = x.dims()[3];
  const int64_t Mg = w.dims()[1], KH = w.dims()[2], KW = w.dims()[3], Cg = C / group, M = Mg * group;
  const int64_t Ho = (H - 1) * s[0] + op[0] + (KH - 1) * d[0] + 1 - p[0] - p[2];
  const int64_t Wo = (W - 1) * s[1] + op[1] + (KW - 1) * d[1] + 1 - p[1] - p[3];
  std::vector<double> acc(static_cast<size_t>(N * M * Ho * Wo));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < Ho * Wo; ++i) acc[static_cast<size_t>((n * M + m) * Ho * Wo + i)] = b.data<float>()[m];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t iy = 0; iy < H; ++iy)
        for (int64_t ix = 0; ix < W; ++ix)
          for (int64_t mm = 0; mm < Mg; ++mm)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t oy = iy * s[0] - p[0] + ky * d[0], ox = ix * s[1] - p[1] + kx * d[1];
                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                const int64_t m = c / Cg * Mg + mm;
                acc[static_cast<size_t>(((n * M + m) * Ho + oy) * Wo + ox)] +=
                    double(x.data<float>()[((n * C + c) * H + iy) * W + ix]) *
                    w.data<float>()[((c * Mg + mm) * KH + ky) * KW + kx];
              }
  Tensor y = Tensor::zeros(DType::kFloat, {N, M, Ho, Wo});
  for (size_t i = 0; i < acc.size(); ++i) y.mutable_data<float>()[i] = float(acc[i]);
  return y;
}

class ConvTransposeTest : public ::testing::TestWithParam<Case> {};

TEST_P(ConvTransposeTest, MatchesScatterOracleAndIsThreadCountInvariant) {
  const Case& k = GetParam();
  std::mt19937 rng(4242);
  const Tensor x = test::random_floats(rng, {k.n, k.c, k.h, k.w});
  const Tensor w = test::random_floats(rng, {k.c, k.m / k.group, k.kh, k.kw});
  const Tensor b = test::random_floats(rng, {k.m});
  std::string attrs = "group = " + std::to_string(k.group);
  if (!k.strides.empty()) attrs += ", strides = " + ints(k.strides);
  if (!k.pads.empty()) attrs += ", pads = " + ints(k.pads);
  if (!k.dilations.empty()) attrs += ", dilations = " + ints(k.dilations);
  if (!k.output_padding.empty()) attrs += ", output_padding = " + ints(k.output_padding);
  const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
      y = ConvTranspose <)" + attrs + R"(> (x, w, bias)
    })";
  const std::map<std::string, Tensor> in = {{"x", x}, {"w", w}, {"bias", b}};
  const Tensor y1 = test::run_text(text, in, 1)[0];
  const Tensor y3 = test::run_text(text, in, 3)[0];
  EXPECT_TRUE(y1.bit_equal(y3)) << "results depend on the thread count";
  auto or_default = [](const std::vector<int64_t>& v, std::vector<int64_t> d) { return v.empty() ? d : v; };
  const Tensor ref = oracle(x, w, b, k.group, or_default(k.strides, {1, 1}), or_default(k.pads, {0, 0, 0, 0}),
                            or_default(k.dilations, {1, 1}), or_default(k.output_padding, {0, 0}));
  EXPECT_LT(test::max_abs_diff(y1, ref), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvTransposeTest,
    ::testing::Values(
        Case{1, 3, 5, 5, 4, 3, 3, 1, {}, {}, {}, {}},
        Case{2, 4, 6, 7, 6, 4, 4, 2, {2, 2}, {1, 1, 1, 1}, {}, {}},          // the usual 2x upsampler
        Case{1, 8, 9, 8, 8, 3, 3, 8, {2, 2}, {1, 1, 1, 1}, {}, {1, 1}},      // depthwise, output_padding
        Case{1, 5, 4, 6, 7, 3, 2, 1, {3, 2}, {2, 0, 1, 1}, {2, 3}, {1, 0}},  // dilated, uneven
        Case{1, 6, 7, 7, 40, 2, 2, 1, {2, 2}, {}, {}, {}},                   // > 1 channel block
        Case{3, 4, 1, 20, 6, 1, 5, 2, {1, 3}, {0, 2, 0, 1}, {}, {}}),        // H = 1
    [](const ::testing::TestParamInfo<Case>& i) { return "case" + std::to_string(i.index); });

TEST(ConvTranspose, OneDimensionalMatchesUnitHeight) {
  std::mt19937 rng(99);
  const Tensor x = test::random_floats(rng, {2, 4, 11});
  const Tensor w = test::random_floats(rng, {4, 3, 5});
  const Tensor b = test::random_floats(rng, {6});
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c] x, float[e, f, g] w, float[i] bias) => (float[j, k, l] y) {
      y = ConvTranspose <group = 2, strides = [2], pads = [2, 1], dilations = [2], output_padding = [1]> (x, w, bias)
    })", {{"x", x}, {"w", w}, {"bias", b}})[0];
  const Tensor ref = oracle(x.reshaped({2, 4, 1, 11}), w.reshaped({4, 3, 1, 5}), b, 2, {1, 2}, {0, 2, 0, 1},
                            {1, 2}, {0, 1});
  EXPECT_LT(test::max_abs_diff(y, ref.reshaped({2, 6, ref.dims()[3]})), 1e-4f);
}

// Output sizes: auto_pad SAME_* gives in·stride (ONNX reference); output_shape is taken as given.
TEST(ConvTranspose, AutoPadAndOutputShapeSetTheOutputSize) {
  std::mt19937 rng(3);
  const Tensor x = test::random_floats(rng, {1, 2, 5, 4});
  const Tensor w = test::random_floats(rng, {2, 3, 3, 3});
  auto run = [&](const std::string& attrs) {
    return test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x, float[e, f, g, h] w) => (float[j, k, l, m] y) {
        y = ConvTranspose <)" + attrs + R"(> (x, w)
      })", {{"x", x}, {"w", w}})[0];
  };
  EXPECT_EQ(run("strides = [2, 3], auto_pad = \"SAME_UPPER\"").dims(), (Dims{1, 3, 10, 12}));
  EXPECT_EQ(run("strides = [2, 3], auto_pad = \"SAME_LOWER\"").dims(), (Dims{1, 3, 10, 12}));
  EXPECT_EQ(run("strides = [2, 2], output_shape = [12, 10]").dims(), (Dims{1, 3, 12, 10}));
  // SAME_UPPER drops the odd padding pixel at the end: it equals explicit pads [0, 0, 1, 1].
  EXPECT_TRUE(run("strides = [2, 2], auto_pad = \"SAME_UPPER\"")
                  .bit_equal(run("strides = [2, 2], pads = [0, 0, 1, 1]")));
  EXPECT_THROW(run("pads = [9, 9, 9, 9]"), ModelError);
}

}  // namespace
}  // namespace ptq
