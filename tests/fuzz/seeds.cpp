// Seed corpora from the project's own writers and the data test fixtures.
#include "seeds.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../data/fixtures.h"
#include "ptq/calib/calib_table.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"

namespace ptq::fuzz {
namespace {

namespace dt = ptq::data::test;

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> onnx_seeds() {
  std::vector<std::string> out = {slurp(std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx")};
  for (const char* text : {
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[N, 2, 4, 4] x) => (float[N, 2, 4, 4] y) <float[2, 2, 1, 1] w = {1, 0, 0, 1}> {
                shape = Constant <value = int64[2] {1, -1}> ()
                c = Conv (x, w)
                r = Relu (c)
                y = Identity (r)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (bool c, float[2] x) => (float[2] z) {
                t = Relu (x)
                z = If (c) <
                  then_branch = then_g () => (float[2] a) { a = Neg (t) },
                  else_branch = else_g () => (float[2] b) { b = Identity (x) }>
              })",
           R"(<ir_version: 7, opset_import: ["" : 11]>
              g (float[3, 4] a, float[4, 5] b) => (float[3, 5] y) <float[5] bias = {1, 2, 3, 4, 5}> {
                m = MatMul (a, b)
                y = Add (m, bias)
              })",
       })
    out.push_back(onnx_io::serialize_model(onnx_io::parse_model_text(text)));
  out.push_back(onnx_io::serialize_model(dt::model_with_inputs("float[1,3,4,4] x, int64[N,5] ids", "x")));
  return out;
}

std::vector<std::string> npy_seeds() {
  const std::vector<int64_t> ids = {1, -2, 3};
  const uint8_t bytes[4] = {1, 0, 1, 1};
  return {dt::npy_f32({1, 1, 8, 8}, std::vector<float>(64, 1.5f)), dt::npy_f32({}, {3.f}),
          dt::npy_f32({0, 4}, {}), dt::npy_i64({3}, ids),
          dt::npy_bytes("|b1", "(2, 2)", bytes, 4), dt::npy_bytes("|u1", "(4,)", bytes, 4)};
}

std::vector<std::string> npz_seeds() {
  const std::string a = dt::npy_f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string b = dt::npy_i64({2}, {7, 8});
  return {dt::zip_bytes({{"input.npy", a}}), dt::zip_bytes({{"input.npy", a, true}}),
          dt::zip_bytes({{"x.npy", a, false, true}, {"ids.npy", b, true, true}}),
          dt::zip_bytes({{"dir/", ""}, {"a.npy", a}})};
}

std::vector<std::string> tensor_pb_seeds() {
  return {dt::tensor_proto_f32("input", {1, 1, 8, 8}, std::vector<float>(64, 0.25f)),
          dt::tensor_proto_f32("x", {3}, {1, 2, 3}), dt::tensor_proto_f32("s", {}, {4})};
}

// Control bytes (see targets.cpp) followed by PNG and BMP encodings of small images.
std::vector<std::string> image_seeds(const std::string& scratch) {
  std::vector<std::string> out;
  const std::string controls[] = {std::string("\0\0\0\0\0\0\0\0", 8), "\x01\x07\x05\x03\x01\x04\x40\x00",
                                  "\x02\x05\x09\x02\x1e\x02\x20\x04", "\x03\x10\x08\x72\x4c\x00\x01\x01"};
  int k = 0;
  for (int comps : {1, 3}) {
    std::vector<uint8_t> px(size_t(5 * 7 * comps));
    for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 37);
    const std::string png = scratch + "/seed.png", bmp = scratch + "/seed.bmp";
    dt::write_png(png, 5, 7, comps, px);
    dt::write_bmp(bmp, 5, 7, comps, px);
    for (const std::string& file : {png, bmp}) out.push_back(controls[k++ % 4] + slurp(file));
    std::filesystem::remove(png);
    std::filesystem::remove(bmp);
  }
  return out;
}

std::vector<std::string> calib_seeds() {
  calib::CalibTable t;
  t.model_sha256 = std::string(64, 'a');
  t.method = "percentile";
  t.samples = 16;
  t.ranges["input"] = {0.f, 16.f};
  t.ranges["conv1_out"] = {-3.25f, 7.5f};
  calib::CalibTable empty;
  empty.method = "minmax";
  return {calib::calib_table_json(t), calib::calib_table_json(empty)};
}

}  // namespace

std::vector<std::string> seeds(const std::string& target, const std::string& scratch_dir) {
  if (target == "onnx_loader") return onnx_seeds();
  if (target == "npy") return npy_seeds();
  if (target == "npz") return npz_seeds();
  if (target == "tensor_pb") return tensor_pb_seeds();
  if (target == "image") return image_seeds(scratch_dir);
  if (target == "calib_table") return calib_seeds();
  return {};
}

}  // namespace ptq::fuzz
