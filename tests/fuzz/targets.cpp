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
#include "ptq/pipeline/quantize.h"
#include "ptq/runtime/limits.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

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

// A scratch folder per process (libFuzzer runs one input at a time).
const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ptq-fuzz-pipeline-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

bool plain_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

}  // namespace

// A legal but huge tensor (a mutated Resize scale of 8201: 105M elements) computed for minutes
// under ASan and timed the fuzzer out (4M elements still took 18 s over the pipeline's runs): the
// pipeline target runs with a 1M-element limit.
namespace {
struct TensorLimit {
  int64_t old = runtime::max_tensor_elements();
  explicit TensorLimit(int64_t n) { runtime::set_max_tensor_elements(n); }
  ~TensorLimit() { runtime::set_max_tensor_elements(old); }
};
}  // namespace

void pipeline(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const TensorLimit limit(int64_t{1} << 20);
  const fs::path& dir = scratch();
  const fs::path calib = dir / "calib", model_path = dir / "model.onnx", out = dir / "out.onnx";
  guarded([&] {
    const ir::Model model = onnx_io::load_model_from_bytes(data, size, "");
    const std::vector<ir::ValueId> inputs = model.graph.runtime_inputs();
    if (inputs.empty() || inputs.size() > 4) return;
    fs::remove_all(calib);
    fs::remove(out);
    fs::create_directories(calib);
    uint32_t rng = static_cast<uint32_t>(size) * 2654435761u + 1;
    for (ir::ValueId v : inputs) {
      const ir::Value& val = model.graph.value(v);
      if (val.type.dtype != DType::kFloat || !val.type.shape || !plain_name(val.name)) return;
      Dims dims;
      int64_t n = 1;
      for (const ir::Dim& d : *val.type.shape) {
        const int64_t x = d.is_static() ? d.value : 1;
        if (x < 0 || x > 64) return;
        dims.push_back(x);
        n *= x;
        if (n > 4096) return;
      }
      const fs::path folder = inputs.size() == 1 ? calib : calib / val.name;
      fs::create_directories(folder);
      for (int s = 0; s < 2; ++s) {
        Tensor t = Tensor::empty(DType::kFloat, dims);
        float* p = t.mutable_data<float>();
        for (int64_t i = 0; i < n; ++i) {
          rng = rng * 1664525u + 1013904223u;
          p[i] = static_cast<float>(rng >> 8) / static_cast<float>(1 << 24) * 6.f - 3.f;  // [-3, 3)
        }
        write_npy((folder / (std::to_string(s) + ".npy")).string(), t);
      }
    }
    std::ofstream(model_path, std::ios::binary).write(reinterpret_cast<const char*>(data), std::streamsize(size));
    pipeline::QuantizeOptions o;
    o.model_path = model_path.string();
    o.output_path = out.string();
    o.calib_data = calib.string();
    o.threads = 1;
    pipeline::quantize(o);
    const ir::Model q = onnx_io::load_model(out.string());
    ir::verify(q);
    for (ir::NodeId id : q.graph.node_ids()) {
      const ir::Node& n = q.graph.node(id);
      if (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") continue;
      const Tensor* scale = n.inputs.size() > 1 ? q.graph.constant(n.inputs[1]) : nullptr;
      PTQ_CHECK(scale && scale->dtype() == DType::kFloat, InternalError, n.label(), ": scale is not a float constant");
      for (size_t i = 0; i < scale->numel(); ++i) {
        const float s = scale->data<float>()[i];
        PTQ_CHECK(std::isfinite(s) && s > 0.f, InternalError, n.label(), ": scale ", s, " is not finite and > 0");
      }
    }
  });
}

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
      {"pipeline", pipeline},
  };
  return all;
}

}  // namespace ptq::fuzz
