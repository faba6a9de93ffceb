// Image preprocessing options (presets, resize/crop/letterbox, normalization) and their flag parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ptq::data {

enum class ChannelOrder { kRgb, kBgr };
enum class Layout { kNchw, kNhwc };  // of the image tensor; NCHW gives [C,H,W] per image
enum class PreprocessPreset { kNone, kTorchvision, kCaffe };
// Resize filter: Pillow's antialiased bilinear / bicubic (what torchvision's Resize runs on PIL
// images), or OpenCV's cv2.resize INTER_LINEAR (no antialiasing; YOLOX and PaddleOCR pipelines).
enum class ResizeFilter { kBilinear, kBicubic, kCv2 };

// Width x height in pixels ("224" parses as 224x224, "320x48" as width 320, height 48).
struct Size2 {
  int64_t width = 0;
  int64_t height = 0;
  bool operator==(const Size2& o) const { return width == o.width && height == o.height; }
};

// What the user asked for. Every field is optional so that a preset can fill what was not set:
// explicit fields override the preset. Geometry: at most one of resize_short / resize / letterbox
// (an explicit one replaces the preset's), then an optional center_crop.
// Pixel math, per output channel c: out = (p * scale - mean[c]) / stddev[c] with p in 0..255;
// mean and stddev are listed in output channel order (after channel_order), one value broadcasts.
struct Preprocess {
  PreprocessPreset preset = PreprocessPreset::kNone;
  std::optional<int64_t> resize_short;  // bilinear resize so the short side is N (aspect kept)
  std::optional<Size2> resize;          // bilinear resize to exactly WxH
  std::optional<Size2> letterbox;       // fit inside WxH keeping aspect, place top-left, pad
  std::optional<float> letterbox_pad;   // pad value in pixel units (0..255), default 114 (YOLOX)
  std::optional<Size2> center_crop;     // crop WxH from the center (after resizing)
  std::optional<float> scale;           // default 1
  std::optional<std::vector<float>> mean;  // default 0
  std::optional<std::vector<float>> stddev;  // flag "std", default 1
  std::optional<ChannelOrder> channel_order;  // default rgb
  std::optional<Layout> layout;               // default nchw
  std::optional<ResizeFilter> resize_filter;  // default bilinear; cv2 for letterbox
};

// The concrete settings after preset expansion and defaults; what the image pipeline runs.
struct ImageTransform {
  enum class Geometry { kNone, kResizeShort, kResize, kLetterbox };
  Geometry geometry = Geometry::kNone;
  Size2 size;  // target of kResize / kLetterbox; kResizeShort uses size.width as the short side
  float letterbox_pad = 114.0f;
  std::optional<Size2> center_crop;
  float scale = 1.0f;
  std::vector<float> mean{0.0f};
  std::vector<float> stddev{1.0f};
  ChannelOrder channel_order = ChannelOrder::kRgb;
  Layout layout = Layout::kNchw;
  ResizeFilter resize_filter = ResizeFilter::kBilinear;
  // True when the pixel math is the identity (a uint8 model input can take the pixels as is).
  bool is_identity_math() const;
};

// Expands the preset, applies explicit fields and defaults. UsageError on conflicting geometry
// (e.g. both resize and letterbox given), non-positive sizes, zero std or empty mean/std.
ImageTransform resolve(const Preprocess& p);

// Field values of the presets (torchvision: resize_short 256, center_crop 224, scale 1/255,
// ImageNet mean/std, rgb, nchw; caffe: resize_short 256, center_crop 224, scale 1,
// mean 104,117,123 in BGR order, std 1, bgr, nchw).
Preprocess preset_fields(PreprocessPreset preset);

// ---- flag parsers: `flag` (e.g. "--mean") names the flag in UsageError messages ----------------
int64_t parse_positive_int(const std::string& flag, const std::string& text);
// "224" -> 224x224, "320x48" -> width 320, height 48.
Size2 parse_size2(const std::string& flag, const std::string& text);
// A finite number; also accepts a fraction "1/255".
float parse_float(const std::string& flag, const std::string& text);
// "0.485,0.456,0.406" (each item as parse_float).
std::vector<float> parse_float_list(const std::string& flag, const std::string& text);
ChannelOrder parse_channel_order(const std::string& flag, const std::string& text);  // rgb|bgr
Layout parse_layout(const std::string& flag, const std::string& text);              // nchw|nhwc
PreprocessPreset parse_preset(const std::string& flag, const std::string& text);  // torchvision|caffe|none
ResizeFilter parse_resize_filter(const std::string& flag, const std::string& text);  // bilinear|bicubic|cv2

// Sets one field by option name ("resize_short" or "resize-short", "resize", "letterbox",
// "letterbox_pad", "center_crop", "scale", "mean", "std", "channel_order", "layout", "resize_filter", and
// "preset" or its alias "preprocess"), e.g. for CLI flags or a config file; errors name
// "--<name>". UsageError for an unknown name.
void set_preprocess_option(Preprocess& p, const std::string& name, const std::string& value);

}  // namespace ptq::data
