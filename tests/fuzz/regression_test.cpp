// Every fuzz target on its seeds, their truncations and byte flips, plus saved crash inputs.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../data/fixtures.h"
#include "ptq/calib/calib_table.h"
#include "ptq/calib/histogram.h"
#include "ptq/core/error.h"
#include "ptq/data/image.h"
#include "ptq/onnx_io/load.h"
#include "seeds.h"
#include "targets.h"
#include "testutil.h"

namespace ptq::fuzz {
namespace {

namespace fs = std::filesystem;

void run(const Target& t, const std::string& bytes) {
  t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

// Under PTQ_SANITIZE this is a small deterministic fuzz run: any crash or report fails the suite.
TEST(FuzzRegression, SeedsTruncationsAndFlipsOnlyThrowPtqErrors) {
  test::TempDir tmp;
  for (const Target& t : targets()) {
    SCOPED_TRACE(t.name);
    const auto all = seeds(t.name, tmp.path().string());
    ASSERT_FALSE(all.empty());
    for (const std::string& s : all) {
      run(t, s);
      const size_t step = std::max<size_t>(1, s.size() / 64);
      for (size_t n = 0; n < s.size(); n += step) run(t, s.substr(0, n));
      for (size_t i = 0; i < s.size(); i += step)
        for (uint8_t x : {0x01, 0x80, 0xFF}) {
          std::string m = s;
          m[i] = char(uint8_t(m[i]) ^ x);
          run(t, m);
        }
    }
  }
}

// Inputs that once crashed a target (tests/fuzz/regressions/<target>/*) must now be refused cleanly.
// PTQ_FUZZ_REPLAY=DIR replays DIR/<target>/* instead (e.g. build-fuzz/corpus, without clang).
TEST(FuzzRegression, SavedCrashInputs) {
  const char* replay = std::getenv("PTQ_FUZZ_REPLAY");
  const fs::path root = replay ? replay : PTQ_FUZZ_REGRESSIONS;
  for (const Target& t : targets()) {
    const fs::path dir = root / t.name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      SCOPED_TRACE(e.path().string());
      std::ifstream f(e.path(), std::ios::binary);
      std::ostringstream s;
      s << f.rdbuf();
      run(t, s.str());
    }
  }
}

// Found by review of the image target: a 1x60000 PNG (about 200 bytes) resized to short side 256
// asked for 256x15360000 float pixels (16 GB). Now refused before allocating.
TEST(FuzzRegression, ResizingAThinImageBeyondThePixelLimitIsRefused) {
  test::TempDir tmp;
  const std::string png = tmp.file("tall.png");
  data::test::write_png(png, 1, 60000, 1, std::vector<uint8_t>(60000, 7));
  for (data::ImageTransform::Geometry geometry :
       {data::ImageTransform::Geometry::kResizeShort, data::ImageTransform::Geometry::kResize,
        data::ImageTransform::Geometry::kLetterbox}) {
    data::ImageTransform t;
    t.geometry = geometry;
    t.size = geometry == data::ImageTransform::Geometry::kResizeShort ? data::Size2{256, 256}
                                                                      : data::Size2{100000, 100000};
    try {
      (void)data::load_image(png, t, 3);
      ADD_FAILURE() << "no error";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("pixels after resizing"), std::string::npos) << e.what();
    }
  }
}

// Found by the onnx_loader target (a flipped byte in an attribute name): a Constant without a
// usable value attribute loaded, then failed ir::verify as an internal error (exit 70).
TEST(FuzzRegression, ConstantWithoutAValueIsAModelError) {
  try {
    (void)onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y) {
        c = Constant <valuf = float[2] {1, 2}> ()
        y = Add (x, c)
      })");
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("Constant has no value attribute"), std::string::npos) << e.what();
  }
}

// Found by the calib_table fuzz target: "version": 1e73 reached nlohmann's get<int>(), a float to
// int cast out of range (undefined behaviour). Integer keys must be integers in range.
TEST(FuzzRegression, CalibTableIntegerKeysMustBeIntegersInRange) {
  const std::string head = R"({"format": "ptq-calibration-table", "model_sha256": "", "method": "minmax", )";
  for (const char* bad : {R"("version": 1e73, "tensors": {}})", R"("version": 1.5, "tensors": {}})",
                                 R"("version": 1, "samples": -1e300, "tensors": {}})",
                                 R"("version": 1, "params": {"num_bins": 1e12}, "tensors": {}})",
                                 R"("version": 1, "params": {"num_bins": 99999999999}, "tensors": {}})"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW((void)calib::parse_calib_table(head + bad, "t.json"), IoError);
  }
  EXPECT_NO_THROW((void)calib::parse_calib_table(head + R"("version": 1, "samples": 3, "tensors": {}})", "t.json"));
}

// Found by the UBSan build (Methods.ConstantAndZeroTensors): for an all-zero tensor the bin
// factor 2^(bits + 126) overflowed float, 0 * inf gave NaN and the NaN -> size_t cast put the
// zeros in the top bin (undefined behaviour). Tiny values must land in the bottom bins.
TEST(SanitizerRegression, HistogramOfZerosAndDenormalsBinsAtTheBottom) {
  const std::vector<float> tiny = {0.f, 0.f, 1e-45f, 1e-40f, 0.f};
  calib::Pow2Histogram h(2048);
  h.add_nonnegative(tiny.data(), tiny.size());
  EXPECT_EQ(h.total(), tiny.size());
  EXPECT_EQ(h.counts()[0], 4u);  // the zeros and 1e-45 (the range is 2^-132, just above 1e-40)
  EXPECT_EQ(std::count(h.counts().begin() + 1024, h.counts().end(), 1u), 1);  // 1e-40: upper half
  calib::Pow2Histogram zeros(2048);
  const std::vector<float> z(100, 0.f);
  zeros.add_nonnegative(z.data(), z.size());
  EXPECT_EQ(zeros.counts()[0], 100u);
}

}  // namespace ptq::fuzz
