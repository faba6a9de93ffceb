// Conv against a straight-loop oracle over groups, depthwise, pads, strides, dilations, auto_pad, 1-D,
// for the fast AVX2 kernels and the Eigen reference, W fed or constant; results must be
// bit-identical for any thread count. Empty outputs (M = 0, N = 0) and C = 0 must not crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "ptq/runtime/fast_kernels.h"
#include "runtime/ops/shared_packs.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

struct ConvCase {
  int64_t n, c, h, w, m, kh, kw, group;
  std::vector<int64_t> strides, pads, dilations;
  std::string auto_pad = "NOTSET";
};

std::string ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Direct definition of ONNX Conv (2-D), with explicit begin/end pads.
Tensor conv_oracle(const Tensor& x, const Tensor& w, const Tensor& b, int64_t group,
                   const std::vector<int64_t>& s, const std::vector<int64_t>& p,
                   const std::vector<int64_t>& d) {
  const int64_t N = x.dims()[0], C = x.dims()[1], H = x.dims()[2], W = x.dims()[3];
  const int64_t M = w.dims()[0], KH = w.dims()[2], KW = w.dims()[3], Cg = C / group, Mg = M / group;
  const int64_t Ho = (H + p[0] + p[2] - d[0] * (KH - 1) - 1) / s[0] + 1;
  const int64_t Wo = (W + p[1] + p[3] - d[1] * (KW - 1) - 1) / s[1] + 1;
  Tensor y = Tensor::zeros(DType::kFloat, {N, M, Ho, Wo});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          double acc = b.data<float>()[m];
          const int64_t g = m / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t iy = oy * s[0] - p[0] + ky * d[0], ix = ox * s[1] - p[1] + kx * d[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += double(x.data<float>()[((n * C + g * Cg + c) * H + iy) * W + ix]) *
                       w.data<float>()[((m * Cg + c) * KH + ky) * KW + kx];
              }
          y.mutable_data<float>()[((n * M + m) * Ho + oy) * Wo + ox] = float(acc);
        }
  return y;
}

// ONNX text for a constant tensor: float[d0, d1, ...] name = {v, ...} with round-trip digits.
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

// Restores the default (fast kernels on) even when an assertion returns early.
struct FastKernels {
  explicit FastKernels(bool on) { runtime::set_fast_kernels(on); }
  ~FastKernels() { runtime::set_fast_kernels(true); }
};

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, MatchesLoopOracleAndIsThreadCountInvariant) {
  const ConvCase& k = GetParam();
  std::mt19937 rng(7767517);
  const Tensor x = test::random_floats(rng, {k.n, k.c, k.h, k.w});
  const Tensor w = test::random_floats(rng, {k.m, k.c / k.group, k.kh, k.kw});
  const Tensor b = test::random_floats(rng, {k.m});
  std::string attrs = "group = " + std::to_string(k.group) + ", auto_pad = \"" + k.auto_pad + "\"";
  if (!k.strides.empty()) attrs += ", strides = " + ints(k.strides);
  if (!k.pads.empty()) attrs += ", pads = " + ints(k.pads);
  if (!k.dilations.empty()) attrs += ", dilations = " + ints(k.dilations);
  const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
      y = Conv <)" + attrs + R"(> (x, w, bias)
    })";
  const std::map<std::string, Tensor> in = {{"x", x}, {"w", w}, {"bias", b}};
  // W as an initializer: the fast kernel packs it once at construction.
  const std::string const_text = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c, d] x, float[i] bias) => (float[j, k, l, m] y) <)" + literal("w", w) + R"(> {
      y = Conv <)" + attrs + R"(> (x, w, bias)
    })";
  std::vector<Tensor> ys;  // fast, then reference
  for (bool fast : {true, false}) {
    FastKernels mode(fast);
    const Tensor y1 = test::run_text(text, in, 1)[0];
    const Tensor y3 = test::run_text(text, in, 3)[0];
    EXPECT_TRUE(y1.bit_equal(y3)) << "results depend on the thread count (fast " << fast << ")";
    const Tensor yc = test::run_text(const_text, {{"x", x}, {"bias", b}}, 2)[0];
    EXPECT_TRUE(yc.bit_equal(y1)) << "constant W differs from fed W (fast " << fast << ")";
    ys.push_back(y1);
  }
  const Tensor& y1 = ys[0];
  EXPECT_LT(test::max_abs_diff(ys[0], ys[1]), 1e-4f) << "fast kernel vs Eigen reference";

  std::vector<int64_t> s = k.strides.empty() ? std::vector<int64_t>{1, 1} : k.strides;
  std::vector<int64_t> d = k.dilations.empty() ? std::vector<int64_t>{1, 1} : k.dilations;
  std::vector<int64_t> p = k.pads.empty() ? std::vector<int64_t>{0, 0, 0, 0} : k.pads;
  if (k.auto_pad == "SAME_UPPER" || k.auto_pad == "SAME_LOWER") {
    const int64_t in_sz[2] = {k.h, k.w}, ks[2] = {k.kh, k.kw};
    for (int a = 0; a < 2; ++a) {
      const int64_t o = (in_sz[a] + s[a] - 1) / s[a];
      const int64_t total = std::max<int64_t>(0, (o - 1) * s[a] + d[a] * (ks[a] - 1) + 1 - in_sz[a]);
      const int64_t small = total / 2, big = total - small;
      p[a] = k.auto_pad == "SAME_UPPER" ? small : big;
      p[a + 2] = k.auto_pad == "SAME_UPPER" ? big : small;
    }
  }
  const Tensor ref = conv_oracle(x, w, b, k.group, s, p, d);
  EXPECT_LT(test::max_abs_diff(y1, ref), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvTest,
    ::testing::Values(
        ConvCase{1, 3, 7, 7, 4, 3, 3, 1, {}, {}, {}},
        ConvCase{2, 4, 9, 11, 6, 3, 3, 2, {2, 1}, {1, 0, 2, 1}, {}},
        ConvCase{1, 8, 17, 17, 8, 3, 3, 8, {1, 1}, {1, 1, 1, 1}, {}},        // depthwise
        ConvCase{1, 8, 16, 15, 8, 5, 3, 8, {2, 2}, {2, 1, 2, 1}, {2, 1}},    // depthwise, dilated
        ConvCase{1, 16, 33, 33, 24, 1, 1, 1, {}, {}, {}},                    // pointwise, > 1 tile
        ConvCase{1, 5, 20, 23, 7, 3, 2, 1, {3, 2}, {}, {2, 3}},
        ConvCase{1, 6, 13, 10, 4, 3, 3, 2, {2, 2}, {}, {}, "SAME_UPPER"},
        ConvCase{1, 6, 13, 10, 4, 4, 2, 1, {3, 1}, {}, {}, "SAME_LOWER"},
        ConvCase{1, 3, 9, 9, 2, 3, 3, 1, {2, 2}, {}, {}, "VALID"},
        ConvCase{3, 4, 1, 40, 6, 1, 5, 2, {1, 3}, {0, 2, 0, 1}, {}},         // H = 1
        ConvCase{1, 4, 20, 37, 4, 3, 3, 4, {3, 3}, {2, 1, 1, 2}, {2, 1}},    // depthwise, 3 blocks
        ConvCase{1, 3, 5, 2, 3, 1, 1, 3, {1, 3}, {}, {}},                   // stride > width
        ConvCase{1, 8, 6, 6, 130, 3, 3, 1, {}, {1, 1, 1, 1}, {}},           // channel blocks
        ConvCase{2, 16, 7, 7, 200, 1, 1, 1, {}, {}, {}},                    // pointwise blocks
        ConvCase{1, 64, 12, 12, 50, 3, 3, 1, {}, {1, 1, 1, 1}, {}},         // K = 576: narrow tiles
        ConvCase{1, 16, 10, 9, 48, 3, 3, 4, {2, 1}, {1, 1, 0, 1}, {}},      // grouped, not depthwise
        ConvCase{1, 12, 40, 40, 13, 1, 1, 1, {}, {}, {}},                   // 4+ tiles, M % 6 != 0
        ConvCase{2, 200, 9, 7, 40, 1, 1, 1, {}, {}, {}}),                   // input channels in halves
    [](const ::testing::TestParamInfo<ConvCase>& i) { return "case" + std::to_string(i.index); });

TEST(Conv, OneDimensionalMatchesTwoDimensionalWithUnitHeight) {
  std::mt19937 rng(2345);
  const Tensor x = test::random_floats(rng, {2, 4, 37});
  const Tensor w = test::random_floats(rng, {6, 2, 5});
  const Tensor b = test::random_floats(rng, {6});
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c] x, float[e, f, g] w, float[i] bias) => (float[j, k, l] y) {
      y = Conv <group = 2, strides = [2], pads = [3, 1], dilations = [2]> (x, w, bias)
    })", {{"x", x}, {"w", w}, {"bias", b}})[0];
  const Tensor ref = conv_oracle(x.reshaped({2, 4, 1, 37}), w.reshaped({6, 2, 1, 5}), b, 2,
                                 {1, 2}, {0, 3, 0, 1}, {1, 2});
  EXPECT_LT(test::max_abs_diff(y, ref.reshaped({2, 6, ref.dims()[3]})), 1e-4f);
}

// The fast depthwise kernels (eight or sixteen channels per vector; on AVX-512 wide stride-1 rows
// and 3x3 column-stride-2 rows one channel at a time) compute each output as one FMA chain over
// the taps in (ky, kx) order from 0, padding included, then + bias: bit for bit the chain below,
// for channel counts with a short last group of 8, strides, dilations, uneven pads, widths that
// end mid-group and a batch of 2.
TEST(Conv, FastDepthwiseIsOneFmaChainPerOutput) {
  if (!runtime::fast_kernels_active()) GTEST_SKIP() << "no AVX2/FMA: the fast kernels do not run here";
  struct Case {
    int64_t c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  };
  std::mt19937 rng(99);
  for (const Case& k : {Case{3, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, Case{8, 14, 14, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1},
                        Case{13, 17, 30, 5, 5, 2, 1, 1, 2, 2, 4, 2, 3}, Case{20, 9, 11, 3, 2, 1, 3, 2, 1, 0, 2, 1, 0},
                        // wide stride-1 rows (AVX-512: one channel at a time, pixels in the lanes):
                        // 3x3 with two-block steps and a tail, and a dilated 5x3 of any tap count
                        Case{5, 9, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, Case{4, 8, 66, 5, 3, 2, 1, 2, 1, 2, 0, 1, 3},
                        // 3x3 with column stride 2 and rows of 40 or more (taps read in place)
                        Case{6, 12, 85, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, Case{3, 9, 80, 3, 3, 1, 2, 2, 1, 2, 0, 2, 3}}) {
    const int64_t n = 2;
    const Tensor x = test::random_floats(rng, {n, k.c, k.h, k.w});
    const Tensor w = test::random_floats(rng, {k.c, 1, k.kh, k.kw});
    const Tensor b = test::random_floats(rng, {k.c});
    const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
        y = Conv <group = )" + std::to_string(k.c) + ", strides = " + ints({k.sh, k.sw}) +
                             ", dilations = " + ints({k.dh, k.dw}) + ", pads = " + ints({k.pt, k.pl, k.pb, k.pr}) +
                             R"(> (x, w, bias)
      })";
    for (bool wide : {true, false}) {  // 16-lane (AVX-512) and 8-lane kernels
    runtime::set_avx512_kernels(wide);
    const Tensor y = test::run_text(text, {{"x", x}, {"w", w}, {"bias", b}}, 2)[0];
    runtime::set_avx512_kernels(true);
    const int64_t ho = (k.h + k.pt + k.pb - k.dh * (k.kh - 1) - 1) / k.sh + 1;
    const int64_t wo = (k.w + k.pl + k.pr - k.dw * (k.kw - 1) - 1) / k.sw + 1;
    ASSERT_EQ(y.dims(), (Dims{n, k.c, ho, wo}));
    for (int64_t i = 0; i < n * k.c; ++i)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          const int64_t ch = i % k.c;
          float acc = 0.f;
          for (int64_t ky = 0; ky < k.kh; ++ky)
            for (int64_t kx = 0; kx < k.kw; ++kx) {
              const int64_t iy = oy * k.sh - k.pt + ky * k.dh, ix = ox * k.sw - k.pl + kx * k.dw;
              const float v = iy < 0 || iy >= k.h || ix < 0 || ix >= k.w ? 0.f : x.data<float>()[(i * k.h + iy) * k.w + ix];
              acc = std::fma(w.data<float>()[(ch * k.kh + ky) * k.kw + kx], v, acc);
            }
          const float want = acc + b.data<float>()[ch];
          const float got = y.data<float>()[(i * ho + oy) * wo + ox];
          ASSERT_EQ(std::memcmp(&want, &got, sizeof want), 0)
              << "channels " << k.c << " plane " << i << " at " << oy << "," << ox << ": " << got << " vs " << want
              << (wide ? " (wide)" : " (8 lanes)");
        }
    }
  }
}

// The fast GEMM behind a pointwise Conv (AVX2 6 x 16 tiles, or 12 x 32 on AVX-512) computes each
// output as one FMA chain over the input channels in order, starting from the bias (or two, for
// many input channels to few): bit for bit the chains below, for output channel counts that end
// mid-panel, pixel counts that end mid-panel, and more than 256 input channels (the K blocks
// resume from the stored partial sums).
TEST(Conv, FastPointwiseIsOneFmaChainPerOutput) {
  if (!runtime::fast_kernels_active()) GTEST_SKIP() << "no AVX2/FMA: the fast kernels do not run here";
  struct Case {
    int64_t cin, cout, h, w;
  };
  std::mt19937 rng(123);
  for (const Case& k : {Case{3, 5, 7, 9}, Case{40, 13, 5, 7}, Case{17, 24, 8, 8}, Case{300, 30, 6, 11},
                        Case{9, 7, 1, 33}, Case{100, 40, 3, 50}, Case{99, 33, 2, 3}}) {
    const Tensor x = test::random_floats(rng, {1, k.cin, k.h, k.w});
    const Tensor w = test::random_floats(rng, {k.cout, k.cin, 1, 1});
    const Tensor b = test::random_floats(rng, {k.cout});
    const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
        y = Conv (x, w, bias)
      })";
    for (bool wide : {true, false}) {  // AVX-512 tiles reading B in place, and 8-lane tiles
    runtime::set_avx512_kernels(wide);
    const Tensor y = test::run_text(text, {{"x", x}, {"w", w}, {"bias", b}}, 2)[0];
    runtime::set_avx512_kernels(true);
    ASSERT_EQ(y.dims(), (Dims{1, k.cout, k.h, k.w}));
    const int64_t hw = k.h * k.w;
    // From 64 input channels and three per output channel on, the input channels are summed
    // in two halves (the first a multiple of 16 channels, from the bias; the rest from 0), then
    // added: the same at any thread count.
    const int64_t half = k.cin >= 64 && k.cin >= 3 * k.cout ? (k.cin / 2 + 15) / 16 * 16 : k.cin;
    for (int64_t o = 0; o < k.cout; ++o)
      for (int64_t p = 0; p < hw; ++p) {
        float acc = b.data<float>()[o], rest = 0.f;
        for (int64_t c = 0; c < k.cin; ++c) {
          float& sum = c < half ? acc : rest;
          sum = std::fma(w.data<float>()[o * k.cin + c], x.data<float>()[c * hw + p], sum);
        }
        if (half < k.cin) acc += rest;
        const float got = y.data<float>()[o * hw + p];
        ASSERT_EQ(std::memcmp(&acc, &got, sizeof acc), 0)
            << k.cin << "->" << k.cout << " channel " << o << " pixel " << p << ": " << got << " vs " << acc
            << (wide ? " (wide)" : " (8 lanes)");
      }
    }
  }
}

// The fast GEMM behind a windowed Conv (stride 1: taps read in place from a zero-padded copy of
// the input; other strides: im2col) computes each output as one FMA chain over (c, ky, kx) in
// order from the bias, padding taps included (they add w·0): bit for bit the chain below, for
// uneven pads, dilations, groups, a batch of 2, outputs wider than one tile, rows that end
// mid-vector, 1-D, and more than 256 taps (the K blocks resume from the stored partial sums).
TEST(Conv, FastWindowsAreOneFmaChainPerOutput) {
  if (!runtime::fast_kernels_active()) GTEST_SKIP() << "no AVX2/FMA: the fast kernels do not run here";
  struct Case {
    int64_t c, m, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group;
  };
  std::mt19937 rng(7);
  for (const Case& k : {Case{5, 13, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, Case{16, 24, 23, 21, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                        Case{6, 8, 12, 10, 3, 2, 1, 1, 2, 3, 0, 2, 3, 1, 2}, Case{40, 30, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                        Case{4, 12, 1, 50, 1, 5, 1, 1, 1, 1, 0, 2, 0, 2, 1}, Case{3, 10, 17, 19, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 1},
                        Case{12, 18, 10, 9, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 3},
                        // few channels, 3x3, column stride 2 (AVX-512: taps read in place, no im2col)
                        Case{4, 21, 9, 70, 3, 3, 1, 2, 2, 1, 0, 1, 2, 0, 1}}) {
    const int64_t n = 2, cg = k.c / k.group, mg = k.m / k.group;
    const Tensor x = test::random_floats(rng, {n, k.c, k.h, k.w});
    const Tensor w = test::random_floats(rng, {k.m, cg, k.kh, k.kw});
    const Tensor b = test::random_floats(rng, {k.m});
    const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
        y = Conv <group = )" + std::to_string(k.group) + ", strides = " + ints({k.sh, k.sw}) +
                             ", dilations = " + ints({k.dh, k.dw}) + ", pads = " + ints({k.pt, k.pl, k.pb, k.pr}) +
                             R"(> (x, w, bias)
      })";
    const int64_t ho = (k.h + k.pt + k.pb - k.dh * (k.kh - 1) - 1) / k.sh + 1;
    const int64_t wo = (k.w + k.pl + k.pr - k.dw * (k.kw - 1) - 1) / k.sw + 1;
    for (bool wide : {true, false}) {  // AVX-512 tiles reading B in place, and 8-lane tiles
      for (size_t threads : {1, 2}) {
        runtime::set_avx512_kernels(wide);
        const Tensor y = test::run_text(text, {{"x", x}, {"w", w}, {"bias", b}}, threads)[0];
        runtime::set_avx512_kernels(true);
        ASSERT_EQ(y.dims(), (Dims{n, k.m, ho, wo}));
        for (int64_t ni = 0; ni < n; ++ni)
          for (int64_t o = 0; o < k.m; ++o)
            for (int64_t oy = 0; oy < ho; ++oy)
              for (int64_t ox = 0; ox < wo; ++ox) {
                float acc = b.data<float>()[o];
                const int64_t g0 = o / mg * cg;
                for (int64_t c = 0; c < cg; ++c)
                  for (int64_t ky = 0; ky < k.kh; ++ky)
                    for (int64_t kx = 0; kx < k.kw; ++kx) {
                      const int64_t iy = oy * k.sh - k.pt + ky * k.dh, ix = ox * k.sw - k.pl + kx * k.dw;
                      const float v = iy < 0 || iy >= k.h || ix < 0 || ix >= k.w
                                          ? 0.f
                                          : x.data<float>()[((ni * k.c + g0 + c) * k.h + iy) * k.w + ix];
                      acc = std::fma(w.data<float>()[((o * cg + c) * k.kh + ky) * k.kw + kx], v, acc);
                    }
                const float got = y.data<float>()[((ni * k.m + o) * ho + oy) * wo + ox];
                ASSERT_EQ(std::memcmp(&acc, &got, sizeof acc), 0)
                    << k.c << "->" << k.m << " " << k.kh << "x" << k.kw << " group " << k.group << " image " << ni
                    << " channel " << o << " at " << oy << "," << ox << ": " << got << " vs " << acc
                    << (wide ? " (wide)" : " (8 lanes)") << ", " << threads << " threads";
              }
      }
    }
  }
}

// MaxPool: the AVX2 kernel must give the reference's bits exactly (max is exact), NaN taps
// skipped the same way, for pads, strides, dilations and widths beyond one 16-column block.
TEST(MaxPool, FastKernelIsBitIdenticalToReference) {
  std::mt19937 rng(31);
  for (const char* attrs : {"kernel_shape = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1]",
                            "kernel_shape = [2, 3], strides = [1, 2], dilations = [2, 1]",
                            "kernel_shape = [3, 3], strides = [2, 2], ceil_mode = 1",
                            "kernel_shape = [3, 3], strides = [1, 2], pads = [0, 1, 2, 0]"}) {
    Tensor x = test::random_floats(rng, {2, 3, 37, 75});  // stride-2 rows of three 16-output blocks
    for (size_t i = 0; i < x.numel(); i += 97)
      x.mutable_data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
    const std::string text = std::string(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c, d] x) => (float[e, f, g, h] y) { y = MaxPool <)") + attrs + R"(> (x) })";
    Tensor fast_y, ref_y;
    {
      FastKernels mode(true);
      fast_y = test::run_text(text, {{"x", x}}, 2)[0];
    }
    {
      FastKernels mode(false);
      ref_y = test::run_text(text, {{"x", x}}, 1)[0];
    }
    EXPECT_TRUE(fast_y.bit_equal(ref_y)) << attrs;
  }
}

// Empty outputs (no output channels, an empty batch) and empty reductions (no input channels:
// the output is the bias) on both kernel paths.
TEST(Conv, ZeroSizedDimensionsDoNotCrash) {
  const std::string text = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[a, b, c, d] x, float[e, f, g, h] w, float[i] bias) => (float[j, k, l, m] y) {
      y = Conv <pads = [1, 1, 1, 1]> (x, w, bias)
    })";
  std::mt19937 rng(5);
  for (bool fast : {true, false}) {
    FastKernels mode(fast);
    const Tensor y0 = test::run_text(text, {{"x", test::random_floats(rng, {1, 3, 5, 5})},
                                            {"w", test::random_floats(rng, {0, 3, 3, 3})},
                                            {"bias", test::random_floats(rng, {0})}})[0];
    EXPECT_EQ(y0.dims(), (Dims{1, 0, 5, 5}));
    const Tensor yn = test::run_text(text, {{"x", test::random_floats(rng, {0, 3, 5, 5})},
                                            {"w", test::random_floats(rng, {4, 3, 3, 3})},
                                            {"bias", test::random_floats(rng, {4})}}, 2)[0];
    EXPECT_EQ(yn.dims(), (Dims{0, 4, 5, 5}));
    const Tensor b = test::random_floats(rng, {4});
    const Tensor yc = test::run_text(text, {{"x", test::random_floats(rng, {1, 0, 5, 5})},
                                            {"w", test::random_floats(rng, {4, 0, 3, 3})},
                                            {"bias", b}})[0];
    ASSERT_EQ(yc.dims(), (Dims{1, 4, 5, 5}));
    for (int64_t i = 0; i < 4 * 25; ++i) EXPECT_EQ(yc.data<float>()[i], b.data<float>()[i / 25]);
  }
}

// Kernels over the same constant weights share one pack while any holds it; another packing of
// the same tensor, another tensor, or the same tensor after every holder is gone get their own.
TEST(SharedPack, OnePackPerWeightAndPackingWhileHeld) {
  const Tensor w = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  int made = 0;
  const auto make = [&] {
    ++made;
    return std::vector<float>{static_cast<float>(made)};
  };
  runtime::SharedPack a = runtime::shared_pack(w, 1, make);
  runtime::SharedPack b = runtime::shared_pack(Tensor(w), 1, make);  // a copy: same storage
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(made, 1);
  EXPECT_NE(runtime::shared_pack(w, 2, make).get(), a.get());                // another packing
  EXPECT_NE(runtime::shared_pack(w.reshaped({4}), 1, make).get(), a.get());  // another shape
  const Tensor v = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_NE(runtime::shared_pack(v, 1, make).get(), a.get());  // other storage
  EXPECT_EQ(made, 4);
  a.reset();
  EXPECT_EQ(runtime::shared_pack(w, 1, make).get(), b.get());  // still held by b
  EXPECT_EQ(made, 4);
  b.reset();  // no holder left: packed anew
  EXPECT_EQ(*runtime::shared_pack(w, 1, make), std::vector<float>{5.f});
  EXPECT_EQ(made, 5);
}

}  // namespace
}  // namespace ptq
