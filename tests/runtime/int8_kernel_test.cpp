// The int8 GEMM core and QLinearConv's fast paths (AVX2, packing, im2col, depthwise) against
// straight loops of ORT's arithmetic, on random shapes, strides, pads, groups and zero points.
#include <gtest/gtest.h>

#include <iomanip>
#include <random>
#include <sstream>

#include "runtime/ops/int8_gemm.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

using runtime::int8::Arith;

int64_t sat16(int64_t v) { return std::min<int64_t>(32767, std::max<int64_t>(-32768, v)); }

// ORT's accumulator for codes in K order (int8_gemm.h): exact, or raw products in saturated
// int16 pairs (2j, 2j+1) with the zero points applied through sums.
int64_t oracle_dot(const std::vector<int>& a, const std::vector<int>& b, int za, int zb, Arith arith) {
  int64_t s = 0;
  if (arith == Arith::kExact) {
    for (size_t k = 0; k < a.size(); ++k) s += static_cast<int64_t>(a[k] - za) * (b[k] - zb);
    return s;
  }
  int64_t sa = 0, sb = 0;
  for (size_t k = 0; k < a.size(); k += 2)
    s += sat16(a[k] * b[k] + (k + 1 < a.size() ? a[k + 1] * b[k + 1] : 0));
  for (size_t k = 0; k < a.size(); ++k) sa += a[k], sb += b[k];
  return s - za * sb - zb * sa + static_cast<int64_t>(a.size()) * za * zb;
}

struct GemmCase {
  int64_t m, n, k;
  bool a_signed, b_signed;
  int za;
  std::vector<int32_t> zb;
  bool contiguous = false;  // rows of K4 codes one after another (QLinearMatMul's A), else the conv layout
  bool exact_sums = false;  // pack_b keeps B widened for the exact loop (else it widens per call)
};

// The fast core, the scalar reference and the oracle agree, with and without the fused
// requantization, for both arithmetics (exact u8×s8 sums take the split-code AVX2 loop on CPUs
// without VNNI, the VNNI loops elsewhere).
void check_gemm(const GemmCase& t, std::mt19937& rng) {
  const int64_t k4 = (t.k + 3) / 4 * 4;
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  // A in the conv layout (K quads of all rows) with a row stride of 4, or rows one after another.
  std::vector<uint8_t> a(static_cast<size_t>(k4 * t.m), 0);
  const int64_t row_stride = t.contiguous ? k4 : 4, quad_stride = t.contiguous ? 4 : 4 * t.m;
  std::vector<std::vector<int>> av(static_cast<size_t>(t.m), std::vector<int>(static_cast<size_t>(t.k)));
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t k = 0; k < t.k; ++k) {
      const int v = t.a_signed ? s8(rng) : u8(rng);
      av[static_cast<size_t>(i)][static_cast<size_t>(k)] = v;
      a[static_cast<size_t>((k / 4) * quad_stride + row_stride * i + k % 4)] = static_cast<uint8_t>(v);
    }
  std::vector<std::vector<int>> bv(static_cast<size_t>(t.n), std::vector<int>(static_cast<size_t>(t.k)));
  for (auto& row : bv)
    for (int& v : row) v = t.b_signed ? s8(rng) : u8(rng);
  const auto packed = runtime::int8::pack_b(
      t.n, t.k, t.b_signed, [&](int64_t j, int64_t k) { return bv[static_cast<size_t>(j)][static_cast<size_t>(k)]; },
      t.exact_sums);
  const runtime::int8::AView view{a.data(), t.m, row_stride, quad_stride, t.a_signed, t.za};
  std::vector<float> scale(static_cast<size_t>(t.n));
  std::vector<int32_t> bias(static_cast<size_t>(t.n));
  for (int64_t j = 0; j < t.n; ++j) {
    scale[static_cast<size_t>(j)] = std::uniform_real_distribution<float>(1e-4f, 2e-2f)(rng);
    bias[static_cast<size_t>(j)] = std::uniform_int_distribution<int>(-20000, 20000)(rng);
  }
  for (Arith arith : {Arith::kExact, Arith::kPairSaturate}) {
    if (arith == Arith::kPairSaturate && (t.a_signed || !t.b_signed)) continue;  // u8 × s8 only
    std::vector<int32_t> fast(static_cast<size_t>(t.m * t.n), -1), ref(fast.size(), -2);
    runtime::int8::gemm(view, packed, t.zb, arith, fast.data(), 1, t.m);
    runtime::int8::gemm_reference(view, packed, t.zb, arith, ref.data(), 1, t.m);
    const int zy = t.a_signed ? -3 : 131;
    std::vector<uint8_t> yf(fast.size(), 7), yr(fast.size(), 9);
    runtime::int8::Requant rq{bias.data(), scale.data(), zy, t.a_signed, yf.data(), 1, t.m};
    runtime::int8::gemm(view, packed, t.zb, arith, nullptr, 0, 0, &rq);
    rq.y = yr.data();
    runtime::int8::gemm_reference(view, packed, t.zb, arith, nullptr, 0, 0, &rq);
    for (int64_t i = 0; i < t.m; ++i)
      for (int64_t j = 0; j < t.n; ++j) {
        const size_t o = static_cast<size_t>(j * t.m + i);
        const int zbj = t.zb.size() == 1 ? t.zb[0] : t.zb[static_cast<size_t>(j)];
        const int64_t want = oracle_dot(av[static_cast<size_t>(i)], bv[static_cast<size_t>(j)], t.za, zbj, arith);
        ASSERT_EQ(ref[o], want) << "reference m=" << t.m << " n=" << t.n << " k=" << t.k << " at " << i << "," << j;
        ASSERT_EQ(fast[o], want) << "fast m=" << t.m << " n=" << t.n << " k=" << t.k << " at " << i << "," << j;
        ASSERT_EQ(yf[o], yr[o]) << "requantized m=" << t.m << " n=" << t.n << " k=" << t.k;
        const float v = std::min(std::max(static_cast<float>(want + bias[static_cast<size_t>(j)]) *
                                              scale[static_cast<size_t>(j)],
                                          static_cast<float>((t.a_signed ? -128 : 0) - zy)),
                                 static_cast<float>((t.a_signed ? 127 : 255) - zy));
        ASSERT_EQ(yr[o], static_cast<uint8_t>(static_cast<int>(std::nearbyint(v)) + zy));
      }
  }
}

TEST(Int8Gemm, RandomShapesAndZeroPoints) {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int64_t> dm(1, 70), dn(1, 41), dk(1, 75);  // m: 1-4 lanes of 16 pixels, and past 64
  const int zas[] = {0, 255, 128, 1};
  for (int it = 0; it < 60; ++it) {
    GemmCase t{dm(rng), dn(rng), dk(rng), it % 5 == 4, it % 7 != 6, zas[it % 4], {0}};
    if (t.a_signed) t.za = it % 2 ? -128 : 127;
    t.contiguous = it % 4 == 3;
    t.exact_sums = it % 2 == 0;
    if (it % 3 == 1) t.zb = {t.b_signed ? -128 : 255};
    if (it % 3 == 2) {
      t.zb.clear();
      for (int64_t j = 0; j < t.n; ++j)
        t.zb.push_back(std::uniform_int_distribution<int>(t.b_signed ? -128 : 0, t.b_signed ? 127 : 255)(rng));
    }
    SCOPED_TRACE(it);
    check_gemm(t, rng);
  }
}

TEST(Int8Gemm, PairsSaturateInPairOrder) {
  // 255·127 + 255·127 = 64770 saturates to 32767; the pair (k=1, k=2) would not.
  std::vector<uint8_t> a = {255, 255, 0, 0};
  const auto packed = runtime::int8::pack_b(1, 3, true, [](int64_t, int64_t k) { return k < 2 ? 127 : -128; });
  std::vector<int32_t> c(1);
  const runtime::int8::AView view{a.data(), 1, 4, 4, false, 0};
  runtime::int8::gemm(view, packed, {0}, Arith::kPairSaturate, c.data(), 1, 1);
  EXPECT_EQ(c[0], 32767);
  runtime::int8::gemm(view, packed, {0}, Arith::kExact, c.data(), 1, 1);
  EXPECT_EQ(c[0], 64770);
}

struct ConvCase {
  int64_t c, m, group, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  int zx;
};

// QLinearConv (u8 x, s8 per-channel weights) against a direct convolution with ORT's arithmetic:
// K ordered (ky, kx, c) within a group, pairs saturated on CPUs where ORT does; depthwise exact.
// `zw_u8` >= 0: uint8 weights with that zero point, summed exactly (MLAS's u8×u8 kernels; the
// runtime packs them as codes minus 128 for its signed kernels).
void check_conv(const ConvCase& t, std::mt19937& rng, size_t threads, int zw_u8 = -1) {
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  const bool w_u8 = zw_u8 >= 0;
  Tensor x = Tensor::empty(DType::kUint8, {1, t.c, t.h, t.w});
  for (size_t i = 0; i < x.numel(); ++i) x.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(u8(rng));
  const int64_t cg = t.c / t.group, mg = t.m / t.group;
  Tensor w = Tensor::empty(w_u8 ? DType::kUint8 : DType::kInt8, {t.m, cg, t.kh, t.kw});
  for (size_t i = 0; i < w.numel(); ++i) {
    if (w_u8) w.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(u8(rng));
    else w.mutable_data<int8_t>()[i] = static_cast<int8_t>(s8(rng));
  }
  Tensor b = Tensor::empty(DType::kInt32, {t.m});
  for (size_t i = 0; i < b.numel(); ++i) b.mutable_data<int32_t>()[i] = std::uniform_int_distribution<int>(-9000, 9000)(rng);
  std::vector<float> ws(static_cast<size_t>(t.m));
  for (auto& s : ws) s = std::uniform_real_distribution<float>(0.002f, 0.02f)(rng);
  const float xs = 0.05f, ys = 3.f;
  const int zy = 17;
  std::ostringstream text;
  text << std::setprecision(9);  // the model's float scales are exactly the oracle's
  text << "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[1," << t.c << "," << t.h << "," << t.w
       << "] x, " << (w_u8 ? "uint8" : "int8") << "[a,b,c,d] w, int32[m] bias) => (uint8[n,o,p,q] y)\n<float xs = {" << xs
       << "}, uint8 zx = {" << t.zx << "}, float[" << t.m << "] ws = {";
  for (size_t i = 0; i < ws.size(); ++i) text << (i ? ", " : "") << ws[i];
  text << "}, " << (w_u8 ? "uint8" : "int8") << " zw = {" << (w_u8 ? zw_u8 : 0) << "}, float ys = {" << ys << "}, uint8 zy = {" << zy << "}> {\n"
       << "  y = QLinearConv <pads = [" << t.pt << ", " << t.pl << ", " << t.pb << ", " << t.pr
       << "], strides = [" << t.sh << ", " << t.sw << "], dilations = [" << t.dh << ", " << t.dw
       << "], group = " << t.group << "> (x, xs, zx, w, ws, zw, ys, zy, bias) }";
  const Tensor y = test::run_text(text.str(), {{"x", x}, {"w", w}, {"bias", b}}, threads)[0];
  const int64_t ho = (t.h + t.pt + t.pb - (t.dh * (t.kh - 1) + 1)) / t.sh + 1;
  const int64_t wo = (t.w + t.pl + t.pr - (t.dw * (t.kw - 1) + 1)) / t.sw + 1;
  ASSERT_EQ(y.dims(), (Dims{1, t.m, ho, wo}));
  const bool depthwise = cg == 1 && mg == 1;
  const Arith arith = depthwise || w_u8 ? Arith::kExact : runtime::int8::u8s8_arith();
  for (int64_t m = 0; m < t.m; ++m) {
    const float mult = xs * ws[static_cast<size_t>(m)] / ys;
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        std::vector<int> xv, wv;
        for (int64_t ky = 0; ky < t.kh; ++ky)
          for (int64_t kx = 0; kx < t.kw; ++kx)
            for (int64_t c = 0; c < cg; ++c) {
              const int64_t iy = oy * t.sh - t.pt + ky * t.dh, ix = ox * t.sw - t.pl + kx * t.dw;
              const int64_t ci = (m / mg) * cg + c;
              xv.push_back(iy < 0 || iy >= t.h || ix < 0 || ix >= t.w
                               ? t.zx : x.data<uint8_t>()[(ci * t.h + iy) * t.w + ix]);
              const size_t wi = static_cast<size_t>(((m * cg + c) * t.kh + ky) * t.kw + kx);
              wv.push_back(w_u8 ? w.data<uint8_t>()[wi] : w.data<int8_t>()[wi]);
            }
        const int64_t acc = oracle_dot(xv, wv, t.zx, w_u8 ? zw_u8 : 0, arith) + b.data<int32_t>()[m];
        const float v = std::min(std::max(static_cast<float>(acc) * mult, static_cast<float>(-zy)),
                                 static_cast<float>(255 - zy));
        const int want = static_cast<int>(std::nearbyint(v)) + zy;
        ASSERT_EQ(y.data<uint8_t>()[(m * ho + oy) * wo + ox], want)
            << "channel " << m << " pixel " << oy << "," << ox;
      }
  }
}

TEST(Int8Conv, RandomGeometries) {
  std::mt19937 rng(77);
  const ConvCase cases[] = {
      // c, m, group, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, zx
      {3, 16, 1, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 114},   // first-layer like: odd C, pairs cross taps
      {8, 24, 1, 10, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},    // pointwise fast path
      {20, 18, 1, 7, 9, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 255},   // pointwise, C not a multiple of 4
      {16, 16, 16, 12, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128},  // depthwise
      {32, 32, 32, 15, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3},    // depthwise, stride 2
      {5, 5, 5, 9, 8, 5, 5, 2, 1, 1, 2, 2, 4, 2, 3, 200},       // depthwise 5x5, mixed stride/dilation
      {8, 8, 8, 7, 11, 3, 3, 2, 2, 1, 1, 0, 2, 1, 0, 250},      // depthwise stride 2, even left pad, odd W
      {24, 24, 24, 9, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},     // depthwise stride 2, 16-column blocks
      {20, 20, 20, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 133},    // depthwise, small plane: channels in lanes
      {37, 37, 37, 14, 14, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 7},    // the same, stride 2, a short last block
      {17, 17, 17, 5, 19, 3, 5, 1, 2, 2, 1, 2, 1, 0, 3, 255},   // the same, dilated, uneven pads
      {12, 8, 4, 8, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 90},       // grouped, dilated
      {64, 37, 1, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},       // K = 576, M not a block multiple
      {7, 70, 1, 13, 3, 2, 3, 3, 1, 1, 1, 0, 1, 1, 0, 1},       // asymmetric pads, P tail
      {4, 4, 1, 20, 20, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 60},      // strided 1x1 (im2col path)
      {8, 12, 1, 9, 10, 3, 3, 2, 1, 2, 2, 2, 0, 1, 3, 201},     // channel quads, W stride 1, dilated
      {16, 8, 2, 5, 21, 1, 5, 1, 1, 1, 3, 0, 7, 0, 6, 255},     // grouped quads, wide pads
      {32, 200, 1, 7, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},      // one pixel chunk: split by channels
      {16, 130, 1, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 9},      // same with a 3x3 window
  };
  size_t threads = 1;
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "c=" << c.c << " m=" << c.m << " group=" << c.group);
    check_conv(c, rng, threads);
    threads = threads % 3 + 1;
  }
}

// uint8 weights (--uint8-weights): exact sums whatever the codes (pairs of 255·255 would saturate
// int16 twice over), on the GEMM paths and depthwise, zero points at 127 (ptq's) and elsewhere.
TEST(Int8Conv, Uint8WeightsSumExactly) {
  std::mt19937 rng(31);
  const ConvCase cases[] = {
      {3, 16, 1, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 114},  // first layer
      {8, 24, 1, 10, 10, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},   // pointwise
      {64, 37, 1, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 255},  // K = 576
      {12, 8, 4, 8, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 90},    // grouped, dilated
      {16, 16, 16, 12, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 128},  // depthwise
  };
  const int zws[] = {127, 0, 255, 127, 127};
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(testing::Message() << "case " << i << " zw " << zws[i]);
    check_conv(cases[i], rng, 1 + i % 2, zws[i]);
  }
}

TEST(Int8Conv, LargeImageManyChunks) {
  std::mt19937 rng(5);
  // 150 output pixels per channel: several 64-pixel tasks, a partial last one; 1 vs 3 threads.
  check_conv({24, 40, 1, 10, 15, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 77}, rng, 3);
}

// Batch-1 QLinearMatMul (a classifier): one row, columns split into several tasks.
TEST(Int8MatMul, OneRowManyColumns) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  const int64_t K = 301, N = 333;
  Tensor a = Tensor::empty(DType::kUint8, {1, K});
  for (size_t i = 0; i < a.numel(); ++i) a.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(u8(rng));
  // int8 B (ORT's u8×s8 arithmetic on this CPU), then uint8 B at zero point 127 (exact sums, as
  // MLAS's u8×u8 kernels; the runtime packs its codes minus 128).
  for (const bool b_u8 : {false, true}) {
    Tensor b = Tensor::empty(b_u8 ? DType::kUint8 : DType::kInt8, {K, N});
    for (size_t i = 0; i < b.numel(); ++i) {
      if (b_u8) b.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(u8(rng));
      else b.mutable_data<int8_t>()[i] = static_cast<int8_t>(s8(rng));
    }
    const int zb = b_u8 ? 127 : 0;
    const std::string type = b_u8 ? "uint8" : "int8";
    const std::string text = "<ir_version: 8, opset_import: [\"\" : 13]>\ng (uint8[1," + std::to_string(K) + "] a, " +
        type + "[" + std::to_string(K) + "," + std::to_string(N) + "] b) => (uint8[p,q] y)\n"
        "<float sa = {0.5}, uint8 za = {3}, float sb = {0.25}, " + type + " zb = {" + std::to_string(zb) +
        "}, float sy = {900.0}, uint8 zy = {128}> {\n"
        "  y = QLinearMatMul (a, sa, za, b, sb, zb, sy, zy) }";
    for (size_t threads : {1, 2}) {
      const Tensor y = test::run_text(text, {{"a", a}, {"b", b}}, threads)[0];
      ASSERT_EQ(y.dims(), (Dims{1, N}));
      for (int64_t j = 0; j < N; ++j) {
        std::vector<int> av, bv;
        for (int64_t k = 0; k < K; ++k) {
          av.push_back(a.data<uint8_t>()[k]);
          bv.push_back(b_u8 ? b.data<uint8_t>()[k * N + j] : b.data<int8_t>()[k * N + j]);
        }
        const int64_t acc = oracle_dot(av, bv, 3, zb, b_u8 ? Arith::kExact : runtime::int8::u8s8_arith());
        const float v = std::min(std::max(static_cast<float>(acc) * (0.5f * 0.25f / 900.f), -128.f), 127.f);
        ASSERT_EQ(y.data<uint8_t>()[j], static_cast<int>(std::nearbyint(v)) + 128) << type << " " << j;
      }
    }
  }
}

}  // namespace
}  // namespace ptq
