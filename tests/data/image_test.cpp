// Image pipeline: exact pixel values after resize / crop / letterbox / normalize, and decoding.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "jpeg_fixture.h"
#include "ptq/core/error.h"
#include "ptq/data/image.h"
#include "testutil.h"

namespace ptq::data {
namespace {

// Interleaved RGB test pattern: p(x, y, c) = 10*y + x + 100*c.
std::vector<uint8_t> pattern(int w, int h) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px.push_back(uint8_t(10 * y + x + 100 * c));
  return px;
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

TEST(ImageTransform, CenterCropAndNormalizeExact) {
  // 5x3 image, crop 2x2: margins 3 and 1. Floor (default): left 1, top 0; round (torchvision's
  // Python round, ties to even): left round(1.5) = 2, top round(0.5) = 0.
  const std::vector<uint8_t> px = pattern(5, 3);
  for (const CropOffset offset : {CropOffset::kFloor, CropOffset::kRound}) {
    ImageTransform t;
    t.center_crop = Size2{2, 2};
    t.center_crop_offset = offset;
    t.scale = 0.5f;
    t.mean = {1, 2, 3};
    t.stddev = {2, 4, 8};
    const Tensor out = transform_pixels(px.data(), 5, 3, 3, t);
    ASSERT_EQ(out.dims(), (Dims{3, 2, 2}));
    const std::vector<float> v = values(out);
    const int left = offset == CropOffset::kFloor ? 1 : 2;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 2; ++x) {
          const float p = float(10 * y + (x + left) + 100 * c);
          EXPECT_FLOAT_EQ(v[size_t((c * 2 + y) * 2 + x)], (p * 0.5f - t.mean[size_t(c)]) / t.stddev[size_t(c)])
              << "c=" << c << " y=" << y << " x=" << x << " left=" << left;
        }
  }
}

TEST(ImageTransform, BgrAndNhwc) {
  const std::vector<uint8_t> px = pattern(2, 2);
  ImageTransform t;
  t.channel_order = ChannelOrder::kBgr;
  t.layout = Layout::kNhwc;
  t.mean = {1, 2, 3};  // in output (BGR) order
  const Tensor out = transform_pixels(px.data(), 2, 2, 3, t);
  ASSERT_EQ(out.dims(), (Dims{2, 2, 3}));
  const std::vector<float> v = values(out);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x)
      for (int c = 0; c < 3; ++c) {
        const int src = 2 - c;  // B first
        EXPECT_FLOAT_EQ(v[size_t((y * 2 + x) * 3 + c)], float(10 * y + x + 100 * src) - float(c + 1));
      }
}

TEST(ImageTransform, BilinearUpAndDownHalfPixel) {
  // --resize-filter cv2. Upscale [0,100] to 4 wide: half-pixel centers give 0, 25, 75, 100.
  const std::vector<uint8_t> up = {0, 100};
  ImageTransform t;
  t.resize_filter = ResizeFilter::kCv2;
  t.geometry = ImageTransform::Geometry::kResize;
  t.size = Size2{4, 1};
  EXPECT_EQ(values(transform_pixels(up.data(), 2, 1, 1, t)), (std::vector<float>{0, 25, 75, 100}));
  // Downscale [0,100,200,250] to 2 wide: samples at 0.5 and 2.5.
  const std::vector<uint8_t> down = {0, 100, 200, 250};
  t.size = Size2{2, 1};
  EXPECT_EQ(values(transform_pixels(down.data(), 4, 1, 1, t)), (std::vector<float>{50, 225}));
  // Results are rounded back to 8 bits: [0,1] to 4 wide gives 0, 0.25, 0.75, 1 -> 0, 0, 1, 1.
  const std::vector<uint8_t> small = {0, 1};
  t.size = Size2{4, 1};
  EXPECT_EQ(values(transform_pixels(small.data(), 2, 1, 1, t)), (std::vector<float>{0, 0, 1, 1}));
}

// The default filter is Pillow's bilinear: antialiased when shrinking (the triangle widens to the
// scale factor), the same as cv2 when enlarging. Values from PIL.Image.resize (Pillow 12.0).
TEST(ImageTransform, PillowBilinearAntialiasesWhenShrinking) {
  ImageTransform t;
  t.geometry = ImageTransform::Geometry::kResize;
  const std::vector<uint8_t> down = {0, 100, 200, 250};
  t.size = Size2{2, 1};
  EXPECT_EQ(values(transform_pixels(down.data(), 4, 1, 1, t)), (std::vector<float>{71, 207}));
  const std::vector<uint8_t> up = {0, 100}, small = {0, 1};
  t.size = Size2{4, 1};
  EXPECT_EQ(values(transform_pixels(up.data(), 2, 1, 1, t)), (std::vector<float>{0, 25, 75, 100}));
  EXPECT_EQ(values(transform_pixels(small.data(), 2, 1, 1, t)), (std::vector<float>{0, 0, 1, 1}));
}

TEST(ImageTransform, ResizeShortKeepsAspectLikeTorchvision) {
  std::vector<uint8_t> px(size_t(10 * 4 * 3), 7);
  ImageTransform t;
  t.geometry = ImageTransform::Geometry::kResizeShort;
  t.size = Size2{3, 3};
  // short side 4 -> 3, long side int(3 * 10 / 4) = 7
  const Tensor out = transform_pixels(px.data(), 10, 4, 3, t);
  EXPECT_EQ(out.dims(), (Dims{3, 3, 7}));
  for (float v : values(out)) EXPECT_EQ(v, 7.0f);
  const Tensor tall = transform_pixels(px.data(), 4, 10, 3, t);
  EXPECT_EQ(tall.dims(), (Dims{3, 7, 3}));
}

TEST(ImageTransform, LetterboxPadsBottomAndRight) {
  // 4x2 image into 8x8: r = min(8/4, 8/2) = 2 -> 8x4 content on top, 4 rows of pad below.
  std::vector<uint8_t> px(size_t(4 * 2 * 3), 50);
  ImageTransform t;
  t.geometry = ImageTransform::Geometry::kLetterbox;
  t.size = Size2{8, 8};
  const Tensor out = transform_pixels(px.data(), 4, 2, 3, t);
  ASSERT_EQ(out.dims(), (Dims{3, 8, 8}));
  const std::vector<float> v = values(out);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x)
        EXPECT_EQ(v[size_t((c * 8 + y) * 8 + x)], y < 4 ? 50.0f : 114.0f) << y << "," << x;
  // Non-square target (OCR style, W x H = 8x4) with a 2x4 image: r = 1, pad right, in
  // normalized units: pad 127.5 with (p/255 - 0.5)/0.5 is exactly 0.
  t.size = Size2{8, 4};
  t.letterbox_pad = 127.5f;
  t.scale = 1.0f / 255.0f;
  t.mean = {0.5f};
  t.stddev = {0.5f};
  const std::vector<uint8_t> narrow(size_t(2 * 4 * 3), 255);
  const Tensor o2 = transform_pixels(narrow.data(), 2, 4, 3, t);
  ASSERT_EQ(o2.dims(), (Dims{3, 4, 8}));
  const std::vector<float> w = values(o2);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) EXPECT_NEAR(w[size_t(y * 8 + x)], x < 2 ? 1.0f : 0.0f, 1e-6f);
}

TEST(ImageTransform, Uint8OutputAndChannelCountErrors) {
  const std::vector<uint8_t> px = pattern(3, 2);
  const Tensor u = transform_pixels(px.data(), 3, 2, 3, ImageTransform{}, DType::kUint8);
  ASSERT_EQ(u.dtype(), DType::kUint8);
  EXPECT_EQ(u.data<uint8_t>()[0], px[0]);
  EXPECT_EQ(u.data<uint8_t>()[6], px[1]);  // channel 1 plane starts at index 6 (3x2)
  ImageTransform norm;
  norm.scale = 0.5f;
  EXPECT_THROW(transform_pixels(px.data(), 3, 2, 3, norm, DType::kUint8), IoError);
  ImageTransform three_means;
  three_means.mean = {1, 2, 3};
  const std::vector<uint8_t> gray(6, 1);
  EXPECT_THROW(transform_pixels(gray.data(), 3, 2, 1, three_means), UsageError);
  ImageTransform crop;
  crop.center_crop = Size2{4, 4};
  EXPECT_THROW(transform_pixels(px.data(), 3, 2, 3, crop), IoError);
}

TEST(ImageFile, PngAndBmpDecodeExactly) {
  ptq::test::TempDir dir;
  const std::vector<uint8_t> px = pattern(5, 3);
  data::test::write_png(dir.file("a.png"), 5, 3, 3, px);
  data::test::write_bmp(dir.file("a.BMP"), 5, 3, 3, px);
  for (const char* name : {"a.png", "a.BMP"}) {
    EXPECT_TRUE(is_image_path(dir.file(name)));
    const Tensor t = load_image(dir.file(name), ImageTransform{}, 3);
    ASSERT_EQ(t.dims(), (Dims{3, 3, 5})) << name;
    const std::vector<float> v = values(t);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 5; ++x)
          ASSERT_EQ(v[size_t((c * 3 + y) * 5 + x)], float(10 * y + x + 100 * c)) << name;
  }
  // Forced to one channel: a gray RGB pixel keeps its value.
  data::test::write_png(dir.file("g.png"), 2, 2, 3, std::vector<uint8_t>(12, 90));
  const Tensor g = load_image(dir.file("g.png"), ImageTransform{}, 1);
  EXPECT_EQ(g.dims(), (Dims{1, 2, 2}));
  EXPECT_EQ(values(g), (std::vector<float>(4, 90.0f)));
  EXPECT_FALSE(is_image_path("x.gif"));
}

// JPEGs decode as Pillow decodes them (libjpeg-turbo: ISLOW IDCT, fancy chroma upsampling), to
// RGB and to Pillow's convert("L") luma.
TEST(ImageFile, JpegDecodesAsPillow) {
  const std::vector<uint8_t>& jpg = data::test::kJpeg16x8;
  ImageTransform t;
  t.layout = Layout::kNhwc;
  const Tensor rgb = load_image_bytes(jpg.data(), jpg.size(), "pattern.jpg", t, 3);
  ASSERT_EQ(rgb.dims(), (Dims{8, 16, 3}));
  EXPECT_EQ(values(rgb), std::vector<float>(data::test::kJpeg16x8Rgb.begin(), data::test::kJpeg16x8Rgb.end()));
  const Tensor gray = load_image_bytes(jpg.data(), jpg.size(), "pattern.jpg", t, 1);
  EXPECT_EQ(values(gray), std::vector<float>(data::test::kJpeg16x8Gray.begin(), data::test::kJpeg16x8Gray.end()));
}

// Truncated (Pillow refuses those), corrupt, and CMYK JPEGs: IoError naming the file, no crash.
TEST(ImageFile, BadJpegsAreErrors) {
  const std::vector<uint8_t>& jpg = data::test::kJpeg16x8;
  const auto error = [](const std::vector<uint8_t>& bytes) -> std::string {
    try {
      load_image_bytes(bytes.data(), bytes.size(), "x.jpg", ImageTransform{}, 3);
    } catch (const IoError& e) {
      return e.what();
    }
    return "<loaded>";
  };
  const std::vector<uint8_t> truncated(jpg.begin(), jpg.end() - 40);
  EXPECT_NE(error(truncated).find("x.jpg: cannot decode JPEG (Premature end"), std::string::npos) << error(truncated);
  const std::vector<uint8_t> header_only(jpg.begin(), jpg.begin() + 200);
  EXPECT_NE(error(header_only).find("x.jpg: cannot decode JPEG"), std::string::npos) << error(header_only);
  size_t sof = 0;  // the frame header: FF C0, length, precision, height, width, components
  while (sof + 9 < jpg.size() && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0)) ++sof;
  ASSERT_LT(sof + 9, jpg.size());
  std::vector<uint8_t> precision = jpg;
  precision[sof + 4] = 7;
  EXPECT_NE(error(precision).find("x.jpg: cannot decode JPEG"), std::string::npos) << error(precision);
  std::vector<uint8_t> cmyk = jpg;  // component count 3 -> 4
  cmyk[sof + 9] = 4;
  EXPECT_NE(error(cmyk).find("x.jpg: cannot decode JPEG"), std::string::npos) << error(cmyk);
}

TEST(ImageFile, BadFilesNameThePath) {
  ptq::test::TempDir dir;
  ptq::test::write_file(dir.file("bad.jpg"), "this is not a JPEG");
  ptq::test::write_file(dir.file("empty.png"), "");
  // A PNG header declaring 10000x10000 RGB (within stb's own limit, over ours).
  std::string huge("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x27\x10\0\0\x27\x10\x08\x02\0\0\0\0\0\0\0", 33);
  ptq::test::write_file(dir.file("huge.png"), huge);
  for (const char* name : {"bad.jpg", "empty.png", "huge.png", "missing.png"}) {
    try {
      load_image(dir.file(name), ImageTransform{}, 3);
      ADD_FAILURE() << name << " loaded";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(dir.file(name)), std::string::npos) << e.what();
      if (std::string(name) == "huge.png") {
        EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
      }
    }
  }
}

// A BMP whose rows run past the end of the file: stb would pad it with zeros (the fuzzer's
// 158-byte file declared 5x12930823 pixels and spent 36 s resizing them); Pillow refuses it and
// so do we. Formats stb reads beyond JPEG/PNG/BMP are refused by their header.
TEST(ImageFile, TruncatedBmpAndOtherFormatsAreErrors) {
  ptq::test::TempDir dir;
  data::test::write_bmp(dir.file("a.bmp"), 5, 3, 3, pattern(5, 3));
  const std::string file = ptq::test::read_file(dir.file("a.bmp"));
  const std::vector<uint8_t> bmp(file.begin(), file.end());
  const auto error = [](const std::vector<uint8_t>& bytes) -> std::string {
    try {
      load_image_bytes(bytes.data(), bytes.size(), "x.bmp", ImageTransform{}, 3);
    } catch (const IoError& e) {
      return e.what();
    }
    return "<loaded>";
  };
  EXPECT_EQ(error(bmp), "<loaded>");
  const std::vector<uint8_t> short_by_one(bmp.begin(), bmp.end() - 1);
  EXPECT_NE(error(short_by_one).find("x.bmp: BMP file is truncated: its header declares 5x3 pixels at 24 bits"),
            std::string::npos) << error(short_by_one);
  std::vector<uint8_t> tall = bmp;  // height 3 -> 12930823, as the fuzzer found
  tall[22] = 0x07, tall[23] = 0x4f, tall[24] = 0xc5, tall[25] = 0x00;
  EXPECT_NE(error(tall).find("BMP file is truncated: its header declares 5x12930823"), std::string::npos)
      << error(tall);
  const std::string gif = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
  EXPECT_NE(error(std::vector<uint8_t>(gif.begin(), gif.end())).find("x.bmp: cannot decode image (not a JPEG, PNG or BMP file header)"),
            std::string::npos);
}

}  // namespace
}  // namespace ptq::data
