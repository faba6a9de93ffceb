// Preprocessing flags: parsers, presets, explicit fields over presets, conflicting options.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "ptq/data/preprocess.h"

namespace ptq::data {
namespace {

// Runs fn, expecting a UsageError whose message contains `needle`.
Preprocess with_preset(PreprocessPreset preset) {
  Preprocess p;
  p.preset = preset;
  return p;
}

template <typename Fn>
void expect_usage(Fn fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "no UsageError (expected one mentioning '" << needle << "')";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(PreprocessParse, Sizes) {
  EXPECT_EQ(parse_size2("--center-crop", "224"), (Size2{224, 224}));
  EXPECT_EQ(parse_size2("--resize", "320x48"), (Size2{320, 48}));
  EXPECT_EQ(parse_size2("--resize", " 320X48 "), (Size2{320, 48}));
  EXPECT_EQ(parse_positive_int("--resize-short", "256"), 256);
  expect_usage([] { parse_size2("--center-crop", "224x"); }, "--center-crop");
  expect_usage([] { parse_size2("--center-crop", "0"); }, "--center-crop");
  expect_usage([] { parse_size2("--resize", "-3x4"); }, "--resize");
  expect_usage([] { parse_positive_int("--resize-short", "25six"); }, "--resize-short");
  expect_usage([] { parse_positive_int("--resize-short", ""); }, "--resize-short");
}

TEST(PreprocessParse, Numbers) {
  EXPECT_FLOAT_EQ(parse_float("--scale", "0.5"), 0.5f);
  EXPECT_FLOAT_EQ(parse_float("--scale", "1/255"), 1.0f / 255.0f);
  EXPECT_FLOAT_EQ(parse_float("--scale", "-2e-1"), -0.2f);
  const std::vector<float> m = parse_float_list("--mean", "0.485,0.456, 0.406");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_FLOAT_EQ(m[0], 0.485f);
  EXPECT_FLOAT_EQ(m[2], 0.406f);
  EXPECT_EQ(parse_float_list("--std", "0.5").size(), 1u);
  expect_usage([] { parse_float("--scale", "abc"); }, "--scale");
  expect_usage([] { parse_float("--scale", "1/0"); }, "--scale");
  expect_usage([] { parse_float("--scale", "nan"); }, "--scale");
  expect_usage([] { parse_float("--scale", "1e39"); }, "--scale");
  expect_usage([] { parse_float_list("--mean", "1,,2"); }, "--mean");
  expect_usage([] { parse_float_list("--mean", "1,2,"); }, "--mean");
  expect_usage([] { parse_float_list("--std", "0.2;0.3"); }, "--std");
}

TEST(PreprocessParse, Enums) {
  EXPECT_EQ(parse_channel_order("--channel-order", "BGR"), ChannelOrder::kBgr);
  EXPECT_EQ(parse_layout("--layout", "nhwc"), Layout::kNhwc);
  EXPECT_EQ(parse_preset("--preset", "torchvision"), PreprocessPreset::kTorchvision);
  EXPECT_EQ(parse_preset("--preset", "caffe"), PreprocessPreset::kCaffe);
  expect_usage([] { parse_channel_order("--channel-order", "rbg"); }, "--channel-order");
  expect_usage([] { parse_layout("--layout", "chw"); }, "--layout");
  expect_usage([] { parse_preset("--preset", "tf"); }, "--preset");
}

TEST(PreprocessResolve, DefaultsAreIdentity) {
  const ImageTransform t = resolve(Preprocess{});
  EXPECT_EQ(t.geometry, ImageTransform::Geometry::kNone);
  EXPECT_FALSE(t.center_crop.has_value());
  EXPECT_TRUE(t.is_identity_math());
  EXPECT_EQ(t.channel_order, ChannelOrder::kRgb);
  EXPECT_EQ(t.layout, Layout::kNchw);
}

TEST(PreprocessResolve, TorchvisionPreset) {
  const ImageTransform t = resolve(with_preset(PreprocessPreset::kTorchvision));
  EXPECT_EQ(t.geometry, ImageTransform::Geometry::kResizeShort);
  EXPECT_EQ(t.size.width, 256);
  ASSERT_TRUE(t.center_crop);
  EXPECT_EQ(*t.center_crop, (Size2{224, 224}));
  EXPECT_FLOAT_EQ(t.scale, 1.0f / 255.0f);
  EXPECT_EQ(t.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(t.stddev, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(t.channel_order, ChannelOrder::kRgb);
  EXPECT_EQ(t.layout, Layout::kNchw);
  EXPECT_FALSE(t.is_identity_math());
}

TEST(PreprocessResolve, CaffePreset) {
  const ImageTransform t = resolve(with_preset(PreprocessPreset::kCaffe));
  EXPECT_EQ(t.geometry, ImageTransform::Geometry::kResizeShort);
  EXPECT_EQ(*t.center_crop, (Size2{224, 224}));
  EXPECT_FLOAT_EQ(t.scale, 1.0f);
  EXPECT_EQ(t.mean, (std::vector<float>{104.0f, 117.0f, 123.0f}));
  EXPECT_EQ(t.stddev, (std::vector<float>{1.0f}));
  EXPECT_EQ(t.channel_order, ChannelOrder::kBgr);
}

TEST(PreprocessResolve, ExplicitFieldsOverridePreset) {
  Preprocess p = with_preset(PreprocessPreset::kTorchvision);
  set_preprocess_option(p, "resize", "300x200");  // replaces the preset's resize_short
  set_preprocess_option(p, "center-crop", "128");
  set_preprocess_option(p, "mean", "0.5");
  set_preprocess_option(p, "channel_order", "bgr");
  const ImageTransform t = resolve(p);
  EXPECT_EQ(t.geometry, ImageTransform::Geometry::kResize);
  EXPECT_EQ(t.size, (Size2{300, 200}));
  EXPECT_EQ(*t.center_crop, (Size2{128, 128}));
  EXPECT_EQ(t.mean, (std::vector<float>{0.5f}));
  EXPECT_EQ(t.stddev, (std::vector<float>{0.229f, 0.224f, 0.225f}));  // kept from the preset
  EXPECT_FLOAT_EQ(t.scale, 1.0f / 255.0f);
  EXPECT_EQ(t.channel_order, ChannelOrder::kBgr);

  Preprocess q = with_preset(PreprocessPreset::kCaffe);
  q.letterbox = Size2{416, 416};
  const ImageTransform u = resolve(q);
  EXPECT_EQ(u.geometry, ImageTransform::Geometry::kLetterbox);
  EXPECT_FLOAT_EQ(u.letterbox_pad, 114.0f);
}

TEST(PreprocessResolve, Conflicts) {
  Preprocess p;
  p.resize_short = 256;
  p.resize = Size2{224, 224};
  expect_usage([&] { resolve(p); }, "exclusive");
  p = Preprocess{};
  p.stddev = std::vector<float>{0.5f, 0.0f, 1.0f};
  expect_usage([&] { resolve(p); }, "--std");
  p = Preprocess{};
  expect_usage([&] { set_preprocess_option(p, "gamma", "2"); }, "gamma");
  expect_usage([&] { set_preprocess_option(p, "letterbox_pad", "x"); }, "--letterbox-pad");
  expect_usage([&] { set_preprocess_option(p, "preprocess", "imagenet"); }, "--preprocess");
  set_preprocess_option(p, "preprocess", "caffe");
  EXPECT_EQ(p.preset, PreprocessPreset::kCaffe);
}

}  // namespace
}  // namespace ptq::data
