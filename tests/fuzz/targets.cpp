// Fuzz harness bodies: each reader on arbitrary bytes may only throw ptq::Error.
#include "targets.h"

#include "ptq/calib/calib_table.h"
#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/data/image.h"
#include "ptq/data/npz.h"
#include "ptq/data/preprocess.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/tensor_file.h"

namespace ptq::fuzz {
namespace {

// An InternalError (exit 70, "a bug in ptq") is not a refusal of bad input: it escapes too.
template <typename F>
void guarded(F&& fn) {
  try {
    fn();
  } catch (const InternalError&) {
    throw;
  } catch (const Error&) {
  }
}

// A preprocessing setup from 8 control bytes: geometry, sizes 1..64, crop, order, layout, math.
data::Preprocess preprocess_from(const uint8_t* c) {
  using namespace ptq::data;
  Preprocess p;
  const auto side = [](uint8_t v) { return int64_t(v % 64) + 1; };
  switch (c[0] % 4) {
    case 1: p.resize_short = side(c[1]); break;
    case 2: p.resize = Size2{side(c[1]), side(c[2])}; break;
    case 3:
      p.letterbox = Size2{side(c[1]), side(c[2])};
      p.letterbox_pad = float(c[3]);
      break;
    default: break;
  }
  if (c[4] & 1) p.center_crop = Size2{side(c[3]), side(c[5])};
  if (c[4] & 2) p.channel_order = ChannelOrder::kBgr;
  if (c[4] & 4) p.layout = Layout::kNhwc;
  if (c[4] & 8) p.scale = 1.0f / 255.0f;
  if (c[4] & 16) p.mean = std::vector<float>{0.485f, 0.456f, 0.406f};
  if (c[4] & 32) p.stddev = std::vector<float>{float(c[6]) / 64.0f};  // 0: resolve refuses it
  if (c[4] & 64) p.preset = c[7] & 1 ? PreprocessPreset::kTorchvision : PreprocessPreset::kCaffe;
  return p;
}

}  // namespace

void onnx_loader(const uint8_t* data, size_t size) {
  guarded([&] {
    const ir::Model model = onnx_io::load_model_from_bytes(data, size, "");
    ir::verify(model);
  });
}

void npy(const uint8_t* data, size_t size) {
  guarded([&] { (void)read_npy_bytes(data, size, "fuzz.npy"); });
}

void npz(const uint8_t* data, size_t size) {
  guarded([&] { (void)data::read_npz_bytes(data, size, "fuzz.npz"); });
}

void tensor_pb(const uint8_t* data, size_t size) {
  guarded([&] { (void)onnx_io::read_tensor_bytes(data, size, "fuzz.pb"); });
}

void image(const uint8_t* data, size_t size) {
  if (size < 8) return;
  guarded([&] {
    const data::ImageTransform t = data::resolve(preprocess_from(data));
    const int channels = data[7] & 2 ? 1 : 3;
    const DType dtype = (data[7] & 4) && t.is_identity_math() ? DType::kUint8 : DType::kFloat;
    (void)data::load_image_bytes(data + 8, size - 8, "fuzz.img", t, channels, dtype);
  });
}

void calib_table(const uint8_t* data, size_t size) {
  guarded([&] {
    (void)calib::parse_calib_table(std::string(reinterpret_cast<const char*>(data), size),
                                   "fuzz.json");
  });
}

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"onnx_loader", onnx_loader}, {"npy", npy},   {"npz", npz},
      {"tensor_pb", tensor_pb},     {"image", image}, {"calib_table", calib_table},
  };
  return all;
}

}  // namespace ptq::fuzz
