// Scale/zero-point math against ORT's worked examples and ONNX rounding rules.
#include <gtest/gtest.h>

#include "ptq/quant/quant_params.h"

namespace ptq::quant {

TEST(QuantParams, OrtWorkedExamples) {
  // Activation range [-0.8, 5.1] as uint8: s = 5.9/255, z = round(34.58) = 35.
  QuantParams a = compute_scale_zp(-0.8f, 5.1f, DType::kUint8, Symmetry::kAsymmetric);
  EXPECT_FLOAT_EQ(a.scale, static_cast<float>(static_cast<double>(5.1f - -0.8f) / 255.0));
  EXPECT_EQ(a.zero_point, 35);
  // Post-ReLU [0, 6]: uint8 asymmetric z = 0; int8 symmetric s = 6/127.
  EXPECT_EQ(compute_scale_zp(0.f, 6.f, DType::kUint8, Symmetry::kAsymmetric).zero_point, 0);
  EXPECT_FLOAT_EQ(compute_scale_zp(0.f, 6.f, DType::kInt8, Symmetry::kSymmetric).scale, 6.f / 127.f);
  // Weight absmax 0.5 int8 symmetric: w = 0.1 -> 25.
  QuantParams w = compute_scale_zp(-0.2f, 0.5f, DType::kInt8, Symmetry::kSymmetric);
  EXPECT_EQ(w.zero_point, 0);
  EXPECT_EQ(quantize_value(0.1f, w.scale, 0, full_range(DType::kInt8)), 25);
  // uint8 symmetric sits at 127.
  EXPECT_EQ(compute_scale_zp(-1.f, 1.f, DType::kUint8, Symmetry::kSymmetric).zero_point, 127);
}

TEST(QuantParams, ZeroIsAlwaysRepresentable) {
  QuantParams p = compute_scale_zp(2.f, 3.f, DType::kUint8, Symmetry::kAsymmetric);
  EXPECT_EQ(p.zero_point, 0);  // range widened to [0, 3]
  EXPECT_EQ(fake_quantize(0.f, p, full_range(DType::kUint8)), 0.f);
  QuantParams n = compute_scale_zp(-3.f, -2.f, DType::kUint8, Symmetry::kAsymmetric);
  EXPECT_EQ(n.zero_point, 255);
  EXPECT_EQ(fake_quantize(0.f, n, full_range(DType::kUint8)), 0.f);
}

TEST(QuantParams, DegenerateRangeGivesUnitScale) {
  QuantParams p = compute_scale_zp(0.f, 0.f, DType::kUint8, Symmetry::kAsymmetric);
  EXPECT_EQ(p.scale, 1.f);
  EXPECT_EQ(p.zero_point, 0);
}

TEST(QuantParams, RoundHalfToEvenAndSaturation) {
  const IntRange i8 = full_range(DType::kInt8);
  EXPECT_EQ(quantize_value(2.5f, 1.f, 0, i8), 2);
  EXPECT_EQ(quantize_value(3.5f, 1.f, 0, i8), 4);
  EXPECT_EQ(quantize_value(-2.5f, 1.f, 0, i8), -2);
  EXPECT_EQ(quantize_value(1000.f, 1.f, 0, i8), 127);
  EXPECT_EQ(quantize_value(-1000.f, 1.f, 0, i8), -128);
  EXPECT_EQ(quantize_value(std::nanf(""), 1.f, 0, i8), -128);
  EXPECT_EQ(quantize_value(300.f, 1.f, 10, full_range(DType::kUint8)), 255);
  EXPECT_EQ(dequantize_value(130, 0.5f, 128), 1.f);
}

}  // namespace ptq::quant
