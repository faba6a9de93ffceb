// Image decoding (libjpeg-turbo for JPEG, stb_image otherwise) and the resize / crop / letterbox / normalize pipeline.
#include "ptq/data/image.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "ptq/core/error.h"
#include "jpeg_decode.h"
#include "little_endian.h"
#include "pil_resample.h"

namespace ptq::data {
namespace {

// Working image: interleaved HWC floats. Pixel content stays on the 8-bit grid (we round after
// every resize); floats only so that a letterbox pad such as 127.5 is representable.
struct Image {
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;
  std::vector<float> px;
  float& at(int64_t x, int64_t y, int c) { return px[size_t((y * width + x) * channels + c)]; }
  float at(int64_t x, int64_t y, int c) const { return px[size_t((y * width + x) * channels + c)]; }
};

// Source coordinate and weight for one output coordinate, OpenCV INTER_LINEAR style
// (half-pixel centers, clamped at the borders).
struct Tap {
  int64_t i0, i1;
  float w1;
};

std::vector<Tap> bilinear_taps(int64_t in, int64_t out) {
  std::vector<Tap> taps(static_cast<size_t>(out));
  const double scale = double(in) / double(out);
  for (int64_t o = 0; o < out; ++o) {
    double f = (double(o) + 0.5) * scale - 0.5;
    if (f < 0) f = 0;
    int64_t i0 = int64_t(std::floor(f));
    double w = f - double(i0);
    if (i0 >= in - 1) {
      i0 = in - 1;
      w = 0;
    }
    taps[size_t(o)] = Tap{i0, std::min(i0 + 1, in - 1), float(w)};
  }
  return taps;
}

// cv2.resize INTER_LINEAR style: bilinear without antialiasing (downscaling by more than 2x
// aliases), as the YOLOX and PaddleOCR reference pipelines resize.
Image resize_cv2(const Image& in, int64_t out_w, int64_t out_h) {
  if (out_w == in.width && out_h == in.height) return in;
  Image out{out_w, out_h, in.channels, std::vector<float>(size_t(out_w * out_h * in.channels))};
  const std::vector<Tap> tx = bilinear_taps(in.width, out_w);
  const std::vector<Tap> ty = bilinear_taps(in.height, out_h);
  for (int64_t y = 0; y < out_h; ++y) {
    const Tap& a = ty[size_t(y)];
    for (int64_t x = 0; x < out_w; ++x) {
      const Tap& b = tx[size_t(x)];
      for (int c = 0; c < in.channels; ++c) {
        const float top = in.at(b.i0, a.i0, c) * (1 - b.w1) + in.at(b.i1, a.i0, c) * b.w1;
        const float bot = in.at(b.i0, a.i1, c) * (1 - b.w1) + in.at(b.i1, a.i1, c) * b.w1;
        const float v = top * (1 - a.w1) + bot * a.w1;
        out.at(x, y, c) = std::clamp(std::nearbyint(v), 0.0f, 255.0f);  // back to 8 bits
      }
    }
  }
  return out;
}

// The resize the transform asks for. The image holds 8-bit values here (every step before
// rounds to the grid), so Pillow's integer resampling sees exactly PIL's pixels.
Image resize(const Image& in, int64_t out_w, int64_t out_h, ResizeFilter filter) {
  if (out_w == in.width && out_h == in.height) return in;
  if (filter == ResizeFilter::kCv2) return resize_cv2(in, out_w, out_h);
  std::vector<uint8_t> px(in.px.size());
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(in.px[i]);
  const std::vector<uint8_t> r = pil_resize(px.data(), in.width, in.height, in.channels, out_w, out_h,
                                            filter == ResizeFilter::kBicubic ? PilFilter::kBicubic : PilFilter::kBilinear);
  return Image{out_w, out_h, in.channels, std::vector<float>(r.begin(), r.end())};
}

Image crop(const Image& in, int64_t left, int64_t top, int64_t w, int64_t h) {
  Image out{w, h, in.channels, std::vector<float>(size_t(w * h * in.channels))};
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(&in.px[size_t(((top + y) * in.width + left) * in.channels)], w * in.channels,
                &out.px[size_t(y * w * in.channels)]);
  return out;
}

// YOLOX preproc: r = min(W/w, H/h), resize to (int(w*r), int(h*r)), paste top-left on a canvas
// filled with the pad value.
Image letterbox(const Image& in, Size2 size, float pad, ResizeFilter filter) {
  const double r = std::min(double(size.width) / double(in.width),
                            double(size.height) / double(in.height));
  const int64_t nw = std::clamp<int64_t>(int64_t(double(in.width) * r), 1, size.width);
  const int64_t nh = std::clamp<int64_t>(int64_t(double(in.height) * r), 1, size.height);
  const Image resized = resize(in, nw, nh, filter);
  Image out{size.width, size.height, in.channels,
            std::vector<float>(size_t(size.width * size.height * in.channels), pad)};
  for (int64_t y = 0; y < nh; ++y)
    std::copy_n(&resized.px[size_t(y * nw * in.channels)], nw * in.channels,
                &out.px[size_t(y * size.width * in.channels)]);
  return out;
}

// Per-channel values: one value broadcasts, otherwise exactly one per channel.
std::vector<float> per_channel(const std::vector<float>& v, int channels, const char* flag) {
  if (v.size() == 1) return std::vector<float>(size_t(channels), v[0]);
  PTQ_CHECK(v.size() == size_t(channels), UsageError, flag, " has ", v.size(),
            " values but the image has ", channels, channels == 1 ? " channel" : " channels");
  return v;
}

// Target sizes come from flags and image headers: refuse a geometry whose result exceeds the pixel
// limit before computing or allocating it (resizing a 200-byte 1x60000 PNG to short side 256
// would otherwise allocate 16 GB). Doubles, so hostile sizes cannot overflow.
void check_target(double w, double h) {
  const auto shown = [](double v) { return int64_t(std::min(v, 9e18)); };
  PTQ_CHECK(w * h <= double(kMaxImagePixels), IoError, "image would be ", shown(w), "x", shown(h),
            " pixels after resizing, more than the limit of ", kMaxImagePixels);
}

std::string lower_ext(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

bool is_image_path(const std::string& path) {
  const std::string ext = lower_ext(path);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

Tensor transform_pixels(const uint8_t* pixels, int64_t width, int64_t height, int channels,
                        const ImageTransform& t, DType dtype) {
  PTQ_ASSERT(channels == 1 || channels == 3, "channels ", channels);
  PTQ_ASSERT(width > 0 && height > 0);
  PTQ_CHECK(dtype == DType::kFloat || (dtype == DType::kUint8 && t.is_identity_math()), IoError,
            "images give float tensors, or uint8 only without scale/mean/std; the input needs ",
            dtype_name(dtype));
  const std::vector<float> mean = per_channel(t.mean, channels, "--mean");
  const std::vector<float> stddev = per_channel(t.stddev, channels, "--std");
  Image img{width, height, channels, std::vector<float>(pixels, pixels + width * height * channels)};

  using G = ImageTransform::Geometry;
  if (t.geometry == G::kResizeShort) {
    // torchvision Resize(int): the short side becomes N, the long side int(N * long / short).
    const int64_t n = t.size.width;
    const double short_side = double(std::min(img.width, img.height));
    const double long_side = double(std::max(img.width, img.height));
    check_target(double(n), double(n) * long_side / short_side);
    if (img.width <= img.height)
      img = resize(img, n, std::max<int64_t>(1, int64_t(double(n) * double(img.height) / double(img.width))), t.resize_filter);
    else
      img = resize(img, std::max<int64_t>(1, int64_t(double(n) * double(img.width) / double(img.height))), n, t.resize_filter);
  } else if (t.geometry == G::kResize) {
    check_target(double(t.size.width), double(t.size.height));
    img = resize(img, t.size.width, t.size.height, t.resize_filter);
  } else if (t.geometry == G::kLetterbox) {
    check_target(double(t.size.width), double(t.size.height));
    img = letterbox(img, t.size, t.letterbox_pad, t.resize_filter);
  }
  if (t.center_crop) {
    const Size2 c = *t.center_crop;
    PTQ_CHECK(c.width <= img.width && c.height <= img.height, IoError, "image is ", img.width, "x",
              img.height, " after resizing, smaller than the center crop ", c.width, "x", c.height);
    // floor((h - th) / 2), or torchvision's int(round((h - th) / 2)): Python rounds ties to even
    // as nearbyint does.
    const bool round = t.center_crop_offset == CropOffset::kRound;
    const auto offset = [round](int64_t extra) {
      return round ? int64_t(std::nearbyint(double(extra) / 2.0)) : extra / 2;
    };
    const int64_t top = offset(img.height - c.height), left = offset(img.width - c.width);
    img = crop(img, left, top, c.width, c.height);
  }

  // torchvision's ToTensor divides by 255 where --scale 1/255 would multiply by its float: the
  // results differ in the last bit for some pixels, so a scale that is 1/N divides by N.
  const float divisor = std::nearbyint(1.0f / t.scale);
  const bool divide = t.scale != 1.0f && divisor > 1.0f && std::fabs(divisor * t.scale - 1.0f) < 1e-6f;
  const bool swap = channels == 3 && t.channel_order == ChannelOrder::kBgr;
  const bool nchw = t.layout == Layout::kNchw;
  const int64_t h = img.height, w = img.width;
  Dims dims = nchw ? Dims{channels, h, w} : Dims{h, w, channels};
  Tensor out = Tensor::empty(dtype, dims);
  float* f = dtype == DType::kFloat ? out.mutable_data<float>() : nullptr;
  uint8_t* u = dtype == DType::kUint8 ? out.mutable_data<uint8_t>() : nullptr;
  for (int c = 0; c < channels; ++c) {
    const int src_c = swap ? 2 - c : c;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const float p = img.at(x, y, src_c);
        const size_t i = nchw ? size_t((c * h + y) * w + x) : size_t((y * w + x) * channels + c);
        if (f) f[i] = ((divide ? p / divisor : p * t.scale) - mean[size_t(c)]) / stddev[size_t(c)];
        else u[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(p), 0.0f, 255.0f));
      }
  }
  return out;
}

namespace {

// Pillow's convert("L") from RGB: ITU-R 601-2 luma in 16-bit fixed point, rounded.
uint8_t pil_luma(const uint8_t* rgb) {
  return uint8_t((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

// Decoded pixels (1: L, 2: LA, 3: RGB, 4: RGBA) as `channels` (1 or 3), as Pillow's
// convert("L"/"RGB") does: alpha dropped, gray replicated, colour to luma by pil_luma.
std::vector<uint8_t> to_channels(const uint8_t* px, size_t pixels, int have, int channels) {
  std::vector<uint8_t> out(pixels * size_t(channels));
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = px + i * size_t(have);
    uint8_t* o = out.data() + i * size_t(channels);
    if (have <= 2) {
      for (int c = 0; c < channels; ++c) o[c] = p[0];
    } else if (channels == 3) {
      o[0] = p[0], o[1] = p[1], o[2] = p[2];
    } else {
      o[0] = pil_luma(p);
    }
  }
  return out;
}

bool is_png(const unsigned char* b, size_t size) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return size >= 8 && std::equal(sig, sig + 8, b);
}

bool is_bmp(const unsigned char* b, size_t size) { return size >= 2 && b[0] == 'B' && b[1] == 'M'; }

// stb pads a BMP whose pixel rows run past the end of the file with zeros, so a 158-byte file can
// declare 5x12930823 pixels and cost 200 MB and seconds of resizing; Pillow refuses it ("image
// file is truncated"), and so do we. Uncompressed rows are 4-byte aligned; stb refuses RLE itself.
void check_bmp_size(const unsigned char* b, size_t size) {
  if (size < 30) return;  // too short for stb's header read, which fails on its own
  using detail::u16, detail::u32;
  const uint32_t offset = u32(b + 10), header = u32(b + 14);
  const bool core = header == 12;  // OS/2 BITMAPCOREHEADER: 16-bit sizes
  if (!core && size < 34) return;
  const int64_t w = core ? int64_t(u16(b + 18)) : int64_t(int32_t(u32(b + 18)));
  const int64_t h = core ? int64_t(u16(b + 20)) : int64_t(int32_t(u32(b + 22)));
  const int64_t bpp = core ? u16(b + 24) : u16(b + 28);
  const uint32_t compression = core ? 0 : u32(b + 30);
  if (compression == 1 || compression == 2 || w <= 0 || h == 0 || bpp <= 0) return;
  const int64_t row = (w * bpp + 31) / 32 * 4;
  const int64_t start = std::max<int64_t>(offset, 14 + int64_t(header));
  const double need = double(start) + double(row) * double(h < 0 ? -h : h);  // can exceed int64
  PTQ_CHECK(double(size) >= need, IoError, "BMP file is truncated: its header declares ", w, "x",
            h < 0 ? -h : h, " pixels at ", bpp, " bits, ", int64_t(std::min(need, 9e18)),
            " bytes, but the file has ", size);
}

Tensor decode(const unsigned char* bytes, size_t size, const ImageTransform& t, int channels,
              DType dtype) {
  PTQ_CHECK(size > 0, IoError, "empty image file");
  PTQ_CHECK(size < size_t(INT_MAX), IoError, "image file is larger than 2 GB");
  // JPEG through libjpeg-turbo as Pillow decodes it (stb's IDCT and chroma upsampling differ by
  // a few grey levels); PNG/BMP are lossless, so stb gives Pillow's pixels.
  if (is_jpeg(bytes, size)) {
    const DecodedPixels d = decode_jpeg(bytes, size, kMaxImagePixels);
    const std::vector<uint8_t> px = d.channels == channels ? d.px : to_channels(d.px.data(), d.px.size() / size_t(d.channels), d.channels, channels);
    return transform_pixels(px.data(), d.width, d.height, channels, t, dtype);
  }
  // stb also reads GIF, PSD, TGA, HDR, PIC and PNM, some of which it pads when truncated: only
  // the formats Pillow-parity is tested for get through.
  PTQ_CHECK(is_png(bytes, size) || is_bmp(bytes, size), IoError,
            "cannot decode image (not a JPEG, PNG or BMP file header)");
  if (is_bmp(bytes, size)) check_bmp_size(bytes, size);
  int w = 0, h = 0, n = 0;
  // Header first, so that a hostile declared size is refused before stb allocates for it.
  PTQ_CHECK(stbi_info_from_memory(bytes, int(size), &w, &h, &n), IoError,
            "cannot decode image (", stbi_failure_reason(), ")");
  PTQ_CHECK(w > 0 && h > 0 && int64_t(w) * h <= kMaxImagePixels, IoError, "image declares ", w,
            "x", h, " pixels, more than the limit of ", kMaxImagePixels);
  std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load_from_memory(bytes, int(size), &w, &h, &n, 0),
                                                     stbi_image_free);
  PTQ_CHECK(px != nullptr, IoError, "cannot decode image (", stbi_failure_reason(), ")");
  const std::vector<uint8_t> conv = to_channels(px.get(), size_t(w) * size_t(h), n, channels);
  return transform_pixels(conv.data(), w, h, channels, t, dtype);
}

}  // namespace

Tensor load_image(const std::string& path, const ImageTransform& t, int channels, DType dtype) {
  return with_context(path, [&] {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    PTQ_CHECK(f, IoError, "cannot open image");
    const std::streamoff size = f.tellg();
    PTQ_CHECK(size > 0, IoError, "empty image file");
    PTQ_CHECK(size < std::streamoff(INT_MAX), IoError, "image file is larger than 2 GB");
    std::vector<unsigned char> bytes(static_cast<size_t>(size));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(bytes.data()), size);
    PTQ_CHECK(f.gcount() == size, IoError, "short read");
    return decode(bytes.data(), bytes.size(), t, channels, dtype);
  });
}

Tensor load_image_bytes(const void* data, size_t size, const std::string& label,
                        const ImageTransform& t, int channels, DType dtype) {
  return with_context(label, [&] {
    return decode(static_cast<const unsigned char*>(data), size, t, channels, dtype);
  });
}

}  // namespace ptq::data
