// Preprocessing presets, resolution of explicit fields over a preset, and the flag-string parsers.
#include "ptq/data/preprocess.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>

#include "ptq/core/error.h"

namespace ptq::data {
namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Strict number parsing: the whole string must be consumed (std::stof would accept "3abc").
bool parse_double_exact(const std::string& text, double* out) {
  const char* b = text.data();
  const char* e = b + text.size();
  if (b != e && *b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && ptr == e && b != e;
}

}  // namespace

bool ImageTransform::is_identity_math() const {
  if (scale != 1.0f) return false;
  for (float m : mean)
    if (m != 0.0f) return false;
  for (float s : stddev)
    if (s != 1.0f) return false;
  return true;
}

Preprocess preset_fields(PreprocessPreset preset) {
  Preprocess p;
  switch (preset) {
    case PreprocessPreset::kNone: break;
    case PreprocessPreset::kTorchvision:
      p.resize_short = 256;
      p.center_crop = Size2{224, 224};
      p.scale = 1.0f / 255.0f;
      p.mean = std::vector<float>{0.485f, 0.456f, 0.406f};
      p.stddev = std::vector<float>{0.229f, 0.224f, 0.225f};
      p.channel_order = ChannelOrder::kRgb;
      p.layout = Layout::kNchw;
      break;
    case PreprocessPreset::kCaffe:
      p.resize_short = 256;
      p.center_crop = Size2{224, 224};
      p.scale = 1.0f;
      p.mean = std::vector<float>{104.0f, 117.0f, 123.0f};  // B, G, R
      p.stddev = std::vector<float>{1.0f};
      p.channel_order = ChannelOrder::kBgr;
      p.layout = Layout::kNchw;
      break;
  }
  return p;
}

ImageTransform resolve(const Preprocess& p) {
  const Preprocess base = preset_fields(p.preset);
  ImageTransform t;
  // Geometry: an explicit resize mode replaces the preset's one entirely (torchvision + --resize
  // 224x224 must not also resize the short side to 256 first).
  const int explicit_modes = int(p.resize_short.has_value()) + int(p.resize.has_value()) +
                             int(p.letterbox.has_value());
  PTQ_CHECK(explicit_modes <= 1, UsageError,
            "--resize-short, --resize and --letterbox are exclusive; give at most one");
  const Preprocess& g = explicit_modes ? p : base;
  if (g.resize_short) {
    PTQ_CHECK(*g.resize_short > 0, UsageError, "--resize-short must be positive");
    t.geometry = ImageTransform::Geometry::kResizeShort;
    t.size = Size2{*g.resize_short, *g.resize_short};
  } else if (g.resize) {
    t.geometry = ImageTransform::Geometry::kResize;
    t.size = *g.resize;
  } else if (g.letterbox) {
    t.geometry = ImageTransform::Geometry::kLetterbox;
    t.size = *g.letterbox;
  }
  PTQ_CHECK(t.geometry == ImageTransform::Geometry::kNone || (t.size.width > 0 && t.size.height > 0),
            UsageError, "resize sizes must be positive");
  if (p.letterbox_pad) t.letterbox_pad = *p.letterbox_pad;
  t.center_crop = p.center_crop ? p.center_crop : base.center_crop;
  if (t.center_crop)
    PTQ_CHECK(t.center_crop->width > 0 && t.center_crop->height > 0, UsageError,
              "--center-crop must be positive");
  t.scale = p.scale.value_or(base.scale.value_or(1.0f));
  t.mean = p.mean.value_or(base.mean.value_or(std::vector<float>{0.0f}));
  t.stddev = p.stddev.value_or(base.stddev.value_or(std::vector<float>{1.0f}));
  PTQ_CHECK(!t.mean.empty(), UsageError, "--mean needs at least one value");
  PTQ_CHECK(!t.stddev.empty(), UsageError, "--std needs at least one value");
  for (float s : t.stddev) PTQ_CHECK(s != 0.0f, UsageError, "--std values must not be 0");
  t.channel_order = p.channel_order.value_or(base.channel_order.value_or(ChannelOrder::kRgb));
  t.layout = p.layout.value_or(base.layout.value_or(Layout::kNchw));
  // YOLOX's reference letterbox is cv2.resize; torchvision's Resize on PIL images is Pillow's.
  t.resize_filter = p.resize_filter.value_or(t.geometry == ImageTransform::Geometry::kLetterbox ? ResizeFilter::kCv2
                                                                                               : ResizeFilter::kBilinear);
  return t;
}

int64_t parse_positive_int(const std::string& flag, const std::string& text) {
  const std::string s = trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  PTQ_CHECK(ec == std::errc() && ptr == s.data() + s.size() && !s.empty(), UsageError, flag,
            ": expected a positive integer, got '", text, "'");
  PTQ_CHECK(v > 0, UsageError, flag, ": expected a positive integer, got '", text, "'");
  return v;
}

Size2 parse_size2(const std::string& flag, const std::string& text) {
  const std::string s = lower(trim(text));
  const size_t x = s.find('x');
  try {
    if (x == std::string::npos) {
      const int64_t n = parse_positive_int(flag, s);
      return Size2{n, n};
    }
    return Size2{parse_positive_int(flag, s.substr(0, x)), parse_positive_int(flag, s.substr(x + 1))};
  } catch (const UsageError&) {
    throw UsageError(str_cat(flag, ": expected N or WxH (e.g. 224 or 320x48), got '", text, "'"));
  }
}

float parse_float(const std::string& flag, const std::string& text) {
  const std::string s = trim(text);
  double v = 0;
  const size_t slash = s.find('/');
  bool ok;
  if (slash == std::string::npos) {
    ok = parse_double_exact(s, &v);
  } else {
    double num = 0, den = 0;
    ok = parse_double_exact(trim(s.substr(0, slash)), &num) &&
         parse_double_exact(trim(s.substr(slash + 1)), &den) && den != 0;
    v = ok ? num / den : 0;
  }
  PTQ_CHECK(ok && std::isfinite(v) && std::fabs(v) <= 3.0e38, UsageError, flag,
            ": expected a number (e.g. 0.5 or 1/255), got '", text, "'");
  return static_cast<float>(v);
}

std::vector<float> parse_float_list(const std::string& flag, const std::string& text) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                            : comma - start);
    PTQ_CHECK(!trim(item).empty(), UsageError, flag,
              ": expected comma-separated numbers (e.g. 0.485,0.456,0.406), got '", text, "'");
    out.push_back(parse_float(flag, item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

ChannelOrder parse_channel_order(const std::string& flag, const std::string& text) {
  const std::string s = lower(trim(text));
  if (s == "rgb") return ChannelOrder::kRgb;
  if (s == "bgr") return ChannelOrder::kBgr;
  throw UsageError(str_cat(flag, ": expected rgb or bgr, got '", text, "'"));
}

Layout parse_layout(const std::string& flag, const std::string& text) {
  const std::string s = lower(trim(text));
  if (s == "nchw") return Layout::kNchw;
  if (s == "nhwc") return Layout::kNhwc;
  throw UsageError(str_cat(flag, ": expected nchw or nhwc, got '", text, "'"));
}

PreprocessPreset parse_preset(const std::string& flag, const std::string& text) {
  const std::string s = lower(trim(text));
  if (s == "torchvision") return PreprocessPreset::kTorchvision;
  if (s == "caffe") return PreprocessPreset::kCaffe;
  if (s == "none") return PreprocessPreset::kNone;
  throw UsageError(str_cat(flag, ": expected torchvision, caffe or none, got '", text, "'"));
}

ResizeFilter parse_resize_filter(const std::string& flag, const std::string& text) {
  const std::string s = lower(trim(text));
  if (s == "bilinear") return ResizeFilter::kBilinear;
  if (s == "bicubic") return ResizeFilter::kBicubic;
  if (s == "cv2") return ResizeFilter::kCv2;
  throw UsageError(str_cat(flag, ": expected bilinear, bicubic or cv2, got '", text, "'"));
}

void set_preprocess_option(Preprocess& p, const std::string& name, const std::string& value) {
  std::string key = lower(trim(name));
  for (char& c : key)
    if (c == '-') c = '_';
  std::string flag = "--" + key;
  for (char& c : flag)
    if (c == '_') c = '-';
  if (key == "preset" || key == "preprocess") p.preset = parse_preset(flag, value);
  else if (key == "resize_short") p.resize_short = parse_positive_int(flag, value);
  else if (key == "resize") p.resize = parse_size2(flag, value);
  else if (key == "letterbox") p.letterbox = parse_size2(flag, value);
  else if (key == "letterbox_pad") p.letterbox_pad = parse_float(flag, value);
  else if (key == "center_crop") p.center_crop = parse_size2(flag, value);
  else if (key == "scale") p.scale = parse_float(flag, value);
  else if (key == "mean") p.mean = parse_float_list(flag, value);
  else if (key == "std") p.stddev = parse_float_list(flag, value);
  else if (key == "channel_order") p.channel_order = parse_channel_order(flag, value);
  else if (key == "layout") p.layout = parse_layout(flag, value);
  else if (key == "resize_filter") p.resize_filter = parse_resize_filter(flag, value);
  else throw UsageError(str_cat("unknown preprocessing option '", name, "'"));
}

}  // namespace ptq::data
