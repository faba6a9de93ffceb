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

// Small quantizable models with float inputs of static shape (the pipeline target generates
// calibration data for those), some with the hostile patterns issue 12 found.
std::vector<std::string> pipeline_seeds() {
  std::vector<std::string> out;
  for (const char* text : {
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[1, 2, 4, 4] x) => (float[1, 2, 4, 4] y) <float[2, 2, 1, 1] w = {1, 0, 0, 1}, float[2] b = {0.5, -1}> {
                c = Conv (x, w, b)
                r = Relu (c)
                y = MaxPool <kernel_shape = [1, 1]> (r)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[3, 4] a) => (float[3, 5] y) <float[4, 5] w = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, float[5] bias = {1, 2, 3, 4, 5}> {
                m = MatMul (a, w)
                y = Add (m, bias)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[1, 4] x) => (float[1, 4] y) {
                r = Relu (x)
                l = Log (r)
                y = Add (l, x)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[1, 4] x) => (float[1, 4] y) <int32[1] a = {-2147483648}, int32[1] b = {-1}> {
                q = Div (a, b)
                m = Mod <fmod = 0> (a, b)
                s = Add (q, m)
                f = Cast <to = 1> (s)
                y = Mul (x, f)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[1, 2, 3, 3] x) => (float[1, 4, 6, 6] y) <float[4] scales = {1, 1, 2, 2}> {
                c = Concat <axis = 1> (x, x)
                y = Resize <mode = "linear"> (c, , scales)
              })",
           R"(<ir_version: 8, opset_import: ["" : 13]>
              g (float[2, 6] x) => (float[2, 3] y) <int64[1] s = {0}, int64[1] e = {9223372036854775807}, int64[1] ax = {1}, int64[1] st = {2}> {
                t = Slice (x, s, e, ax, st)
                u = Sigmoid (t)
                y = Mul (u, t)
              })",
       })
    out.push_back(onnx_io::serialize_model(onnx_io::parse_model_text(text)));
  return out;
}

}  // namespace

std::vector<std::string> seeds(const std::string& target, const std::string& scratch_dir) {
  if (target == "onnx_loader") return onnx_seeds();
  if (target == "npy") return npy_seeds();
  if (target == "npz") return npz_seeds();
  if (target == "tensor_pb") return tensor_pb_seeds();
  if (target == "image") return image_seeds(scratch_dir);
  if (target == "calib_table") return calib_seeds();
  if (target == "pipeline") return pipeline_seeds();
  return {};
}

}  // namespace ptq::fuzz
