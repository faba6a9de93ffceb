// QuantizeLinear/DequantizeLinear/DynamicQuantizeLinear: ONNX rounding, saturation, per-axis parameters.
#include <gtest/gtest.h>

#include "runtime_testutil.h"

namespace ptq {
namespace {

TEST(QuantizeLinear, TiesToEvenAndSaturatesAsTheOnnxExample) {
  // From onnx case/node/quantizelinear.py: 3/2 = 1.5 rounds to 2, both ends saturate.
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[n] x) => (uint8[m] y) <float s = {2.0}, uint8 z = {128}> { y = QuantizeLinear (x, s, z) })",
                                  {{"x", Tensor::from_vector<float>({6}, {0, 2, 3, 1000, -254, -1000})}})[0];
  EXPECT_EQ(std::vector<uint8_t>(y.data<uint8_t>(), y.data<uint8_t>() + 6),
            (std::vector<uint8_t>{128, 129, 130, 255, 1, 0}));
}

TEST(QuantizeLinear, PerAxisInt8RoundTripsThroughDequantize) {
  const auto y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[a, b] x) => (int8[c, d] q, float[e, f] r) <float[2] s = {0.5, 0.25}, int8[2] z = {0, -3}> {
        q = QuantizeLinear <axis = 0> (x, s, z)  r = DequantizeLinear <axis = 0> (q, s, z) })",
                                {{"x", Tensor::from_vector<float>({2, 3}, {1.25f, -0.75f, 100, 0.125f, 0.375f, -40})}});
  // Row 0: 2.5 -> 2, -1.5 -> -2, 200 -> 127. Row 1 (z = -3): 0.5 -> 0 - 3, 1.5 -> 2 - 3, -160 -> -128.
  EXPECT_EQ(std::vector<int8_t>(y[0].data<int8_t>(), y[0].data<int8_t>() + 6),
            (std::vector<int8_t>{2, -2, 127, -3, -1, -128}));
  EXPECT_EQ(std::vector<float>(y[1].data<float>(), y[1].data<float>() + 6),
            (std::vector<float>{1.0f, -1.0f, 63.5f, 0.f, 0.5f, -31.25f}));
}

constexpr const char* kDynamicQuantize = R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[n] x) => (uint8[m] y, float s, uint8 z) { y, s, z = DynamicQuantizeLinear (x) })";

TEST(DynamicQuantizeLinear, MatchesTheOnnxExample) {
  // onnx case/node/dynamicquantizelinear.py (expect2): range [-3, 2], scale 5/255.
  const auto y = test::run_text(kDynamicQuantize, {{"x", Tensor::from_vector<float>({6}, {0, 2, -3, -2.5f, 1.34f, 0.5f})}});
  EXPECT_FLOAT_EQ(y[1].data<float>()[0], 5.f / 255.f);
  EXPECT_EQ(y[2].data<uint8_t>()[0], 153);  // 0 - (-3) / (5 / 255) = 153
  EXPECT_EQ(std::vector<uint8_t>(y[0].data<uint8_t>(), y[0].data<uint8_t>() + 6),
            (std::vector<uint8_t>{153, 255, 0, 26, 221, 179}));
}

TEST(DynamicQuantizeLinear, RangeIncludesZeroAndEmptyRangeHasScaleOne) {
  // All positive: min widens to 0, so the zero point is 0 and the max maps to 255.
  auto y = test::run_text(kDynamicQuantize, {{"x", Tensor::from_vector<float>({3}, {1, 2, 51})}});
  EXPECT_FLOAT_EQ(y[1].data<float>()[0], 51.f / 255.f);
  EXPECT_EQ(y[2].data<uint8_t>()[0], 0);
  EXPECT_EQ(y[0].data<uint8_t>()[2], 255);
  // All negative: max widens to 0, zero point 255.
  y = test::run_text(kDynamicQuantize, {{"x", Tensor::from_vector<float>({2}, {-2.55f, -1})}});
  EXPECT_EQ(y[2].data<uint8_t>()[0], 255);
  EXPECT_EQ(y[0].data<uint8_t>()[0], 0);
  // All zero: ORT uses scale 1 (not 0) and zero point 0.
  y = test::run_text(kDynamicQuantize, {{"x", Tensor::from_vector<float>({2}, {0, 0})}});
  EXPECT_EQ(y[1].data<float>()[0], 1.f);
  EXPECT_EQ(y[2].data<uint8_t>()[0], 0);
}

TEST(DynamicQuantizeLinear, CodesRoundHalfToEven) {
  // Range [0, 255]: scale 1, so x / s is exact and 0.5, 1.5, 2.5 round to 0, 2, 2.
  const auto y = test::run_text(kDynamicQuantize, {{"x", Tensor::from_vector<float>({4}, {0.5f, 1.5f, 2.5f, 255})}});
  EXPECT_EQ(std::vector<uint8_t>(y[0].data<uint8_t>(), y[0].data<uint8_t>() + 4),
            (std::vector<uint8_t>{0, 2, 2, 255}));
}

TEST(DequantizeLinear, Int32HasNoZeroPoint) {
  const Tensor y = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (int32[n] x) => (float[m] y) <float s = {0.5}> { y = DequantizeLinear (x, s) })",
                                  {{"x", Tensor::from_vector<int32_t>({3}, {-7, 0, 1 << 20})}})[0];
  EXPECT_EQ(std::vector<float>(y.data<float>(), y.data<float>() + 3), (std::vector<float>{-3.5f, 0.f, 524288.f}));
}

TEST(DequantizeLinear, PerAxisOnTheLastAndAMiddleAxisWithZeroPoints) {
  // The kernel's two per-axis paths: one scale per column of rows (axis 1 of [2, 3]), and one per
  // block of a middle axis (axis 1 of [2, 2, 2]); every element (x - z[c]) * s[c].
  const auto last = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (uint8[a, b] x) => (float[c, d] y) <float[3] s = {0.5, 2.0, 0.25}, uint8[3] z = {0, 128, 255}> {
        y = DequantizeLinear <axis = 1> (x, s, z) })",
                                   {{"x", Tensor::from_vector<uint8_t>({2, 3}, {4, 130, 251, 255, 0, 0})}});
  EXPECT_EQ(std::vector<float>(last[0].data<float>(), last[0].data<float>() + 6),
            (std::vector<float>{2.f, 4.f, -1.f, 127.5f, -256.f, -63.75f}));
  const auto middle = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (int16[a, b, c] x) => (float[d, e, f] y) <float[2] s = {0.5, 4.0}, int16[2] z = {-1000, 7}> {
        y = DequantizeLinear <axis = 1> (x, s, z) })",
                                     {{"x", Tensor::from_vector<int16_t>({2, 2, 2}, {-1000, -998, 7, 8, 32767, -32768, 0, 5})}});
  EXPECT_EQ(std::vector<float>(middle[0].data<float>(), middle[0].data<float>() + 8),
            (std::vector<float>{0.f, 1.f, 0.f, 4.f, 16883.5f, -15884.f, -28.f, -8.f}));
  // No elements after the axis: an empty output, not a division by the empty block size.
  const auto empty = test::run_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (int8[a, b, c] x) => (float[d, e, f] y) <float[2] s = {0.5, 4.0}> { y = DequantizeLinear <axis = 1> (x, s) })",
                                    {{"x", Tensor::from_vector<int8_t>({3, 2, 0}, {})}});
  EXPECT_EQ(empty[0].dims(), (Dims{3, 2, 0}));
}

}  // namespace
}  // namespace ptq
