// Shape and data-movement ops: Reshape special values, Slice with negative steps, Transpose,
// Gather with negative indices, Pad modes, Squeeze/Unsqueeze axes as attribute vs input.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runtime_testutil.h"

namespace ptq {
namespace {

Tensor iota(Dims d) {
  Tensor t = Tensor::empty(DType::kFloat, d);
  for (size_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = float(i);
  return t;
}

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

TEST(Reshape, ZeroCopiesAndMinusOneInfers) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c] x) => (float[d, e] y) <int64[2] s = {0, -1}> { y = Reshape (x, s) })",
                                  {{"x", iota({2, 3, 4})}})[0];
  EXPECT_EQ(y.dims(), (Dims{2, 12}));
}

TEST(Slice, NegativeStepsAndClamping) {
  // x = 0..9; starts=-1, ends=-100 (clamped), step=-3 -> 9, 6, 3, 0.
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a] x) => (float[b] y) <int64[1] s = {-1}, int64[1] e = {-100}, int64[1] ax = {0},
                                      int64[1] st = {-3}> { y = Slice (x, s, e, ax, st) })",
                                  {{"x", iota({10})}})[0];
  EXPECT_EQ(values(y), (std::vector<float>{9, 6, 3, 0}));
  const Tensor z = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b] x) => (float[c, d] y) <int64[1] s = {1}, int64[1] e = {1000}, int64[1] ax = {1}>
      { y = Slice (x, s, e, ax) })", {{"x", iota({2, 3})}})[0];
  EXPECT_EQ(values(z), (std::vector<float>{1, 2, 4, 5}));
}

TEST(Transpose, PermAndDefaultReverse) {
  const auto y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b, c] x) => (float[d, e, f] p, float[g, h, i] r) {
        p = Transpose <perm = [1, 0, 2]> (x)  r = Transpose (x) })", {{"x", iota({2, 3, 2})}});
  EXPECT_EQ(y[0].dims(), (Dims{3, 2, 2}));
  EXPECT_EQ(values(y[0]), (std::vector<float>{0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11}));
  EXPECT_EQ(y[1].dims(), (Dims{2, 3, 2}));
  EXPECT_EQ(values(y[1]), (std::vector<float>{0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11}));
}

TEST(Gather, NegativeIndicesOnAxis1) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b] x) => (float[c, d] y) <int64[2] i = {-1, 0}> { y = Gather <axis = 1> (x, i) })",
                                  {{"x", iota({2, 3})}})[0];
  EXPECT_EQ(values(y), (std::vector<float>{2, 0, 5, 3}));
}

TEST(Pad, ConstantReflectEdge) {
  auto run = [](const std::string& mode) {
    return test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
        g (float[a, b] x) => (float[c, d] y) <int64[4] p = {0, 2, 0, 1}, float v = {9.0}> {
          y = Pad <mode = ")" + mode + R"("> (x, p, v) })", {{"x", iota({1, 3})}})[0];
  };
  EXPECT_EQ(values(run("constant")), (std::vector<float>{9, 9, 0, 1, 2, 9}));
  EXPECT_EQ(values(run("reflect")), (std::vector<float>{2, 1, 0, 1, 2, 1}));
  EXPECT_EQ(values(run("edge")), (std::vector<float>{0, 0, 0, 1, 2, 2}));
}

// The kernel copies whole rows; the oracle maps every output element on its own, per the spec.
TEST(Pad, RowCopiesMatchAnElementwiseOracleForEveryModeAndSign) {
  const Dims xd{2, 3, 4, 5};
  const Tensor x = iota(xd);
  // Per axis (begin, end): growth, crops (negative) and both at once, on every axis incl. the last.
  const std::vector<std::vector<int64_t>> cases{
      {0, 0, 1, 2, 0, 0, 2, 1}, {1, 0, 0, 3, 0, -1, -2, 0}, {0, 1, -1, 1, 2, -2, 0, 3}, {0, 0, 0, -3, 0, 0, 0, -2}};
  for (const std::string mode : {"constant", "reflect", "edge"}) {
    for (const std::vector<int64_t>& p : cases) {
      std::string pads;
      for (size_t a = 0; a < 4; ++a) pads += (a ? ", " : "") + std::to_string(p[2 * a]);
      for (size_t a = 0; a < 4; ++a) pads += ", " + std::to_string(p[2 * a + 1]);
      // Reflect needs the pad smaller than the axis; these cases keep it so.
      const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
          g (float[a, b, c, d] x) => (float[e, f, g, h] y) <int64[8] p = {)" + pads + R"(}, float v = {-7.5}> {
            y = Pad <mode = ")" + mode + R"("> (x, p, v) })", {{"x", x}})[0];
      Dims od(4);
      for (size_t a = 0; a < 4; ++a) od[a] = xd[a] + p[2 * a] + p[2 * a + 1];
      ASSERT_EQ(y.dims(), od) << mode << " " << pads;
      const auto source = [&](size_t a, int64_t o) -> int64_t {  // input index, -1 for the fill
        const int64_t d = xd[a];
        int64_t i = o - p[2 * a];
        if (i >= 0 && i < d) return i;
        if (mode == "constant") return -1;
        if (mode == "edge") return std::clamp<int64_t>(i, 0, d - 1);
        while (i < 0 || i >= d) i = i < 0 ? -i : 2 * (d - 1) - i;
        return i;
      };
      size_t k = 0;
      for (int64_t a = 0; a < od[0]; ++a)
        for (int64_t b = 0; b < od[1]; ++b)
          for (int64_t c = 0; c < od[2]; ++c)
            for (int64_t e = 0; e < od[3]; ++e, ++k) {
              const int64_t s[4] = {source(0, a), source(1, b), source(2, c), source(3, e)};
              const bool fill = s[0] < 0 || s[1] < 0 || s[2] < 0 || s[3] < 0;
              const float want = fill ? -7.5f : float(((s[0] * xd[1] + s[1]) * xd[2] + s[2]) * xd[3] + s[3]);
              ASSERT_EQ(y.data<float>()[k], want) << mode << " pads " << pads << " at " << k;
            }
    }
  }
}

TEST(Unsqueeze, AxesAttributeBefore13InputFrom13) {
  const Tensor a = test::run_text(R"(<ir_version: 7, opset_import: ["" : 11]>
      g (float[n] x) => (float[a, b, c] y) { y = Unsqueeze <axes = [0, -1]> (x) })",
                                  {{"x", iota({3})}})[0];
  const Tensor b = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[n] x) => (float[a, b, c] y) <int64[2] ax = {0, 2}> { y = Unsqueeze (x, ax) })",
                                  {{"x", iota({3})}})[0];
  EXPECT_EQ(a.dims(), (Dims{1, 3, 1}));
  EXPECT_EQ(b.dims(), (Dims{1, 3, 1}));
}

}  // namespace
}  // namespace ptq
