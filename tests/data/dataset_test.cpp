// Dataset layouts (files, .npz, per-input folders, test_data_set, list files, images) and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "fixtures.h"
#include "ptq/core/error.h"
#include "ptq/data/dataset.h"
#include "ptq/onnx_io/load.h"
#include "testutil.h"

namespace ptq::data {
namespace {

namespace fs = std::filesystem;
namespace fx = data::test;
using ptq::test::TempDir;
using ptq::test::write_file;

std::vector<Sample> read_all(Dataset& ds) {
  std::vector<Sample> out;
  while (auto s = ds.next()) out.push_back(std::move(*s));
  return out;
}

// Opening (and reading) must throw an IoError (exit 5) whose message has every needle.
void expect_io_error(const std::function<void()>& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(e.code(), ExitCode::kDataOrIo);
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    for (const std::string& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' not in: " << m;
  }
}

// Opens and reads everything (errors may come from either step).
std::vector<Sample> load(const std::string& path, const ir::Model& m, const DataOptions& o = {}) {
  Dataset ds = open_dataset(path, m.graph, o);
  return read_all(ds);
}

std::string mkdir(const TempDir& t, const std::string& name) {
  fs::create_directories(t.path() / name);
  return t.file(name);
}

TEST(Dataset, NpyFolderSortedWithBatchAddedAndCount) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[1,2] x", "x");
  write_file(t.file("b.npy"), fx::npy_f32({2}, {3, 4}));
  write_file(t.file("a.npy"), fx::npy_f32({1, 2}, {1, 2}));
  write_file(t.file("c.npy"), fx::npy_f32({2}, {5, 6}));
  write_file(t.file("notes.txt"), "ignored");
  Dataset ds = open_dataset(t.path().string(), m.graph, {});
  EXPECT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.layout(), DataLayout::kFiles);
  std::vector<Sample> s = read_all(ds);
  ASSERT_EQ(s.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s[i].index, i);
    const Tensor& x = s[i].inputs.at("x");
    EXPECT_EQ(x.dims(), (Dims{1, 2}));
    EXPECT_EQ(x.data<float>()[0], float(2 * i + 1));
  }
  EXPECT_EQ(s[1].sources, std::vector<std::string>{t.file("b.npy")});
  ds.rewind();
  EXPECT_EQ(read_all(ds).size(), 3u);
  DataOptions o;
  o.calib_count = 2;
  Dataset two = open_dataset(t.path().string(), m.graph, o);
  EXPECT_EQ(two.size(), 2u);
  EXPECT_EQ(read_all(two).back().sources[0], t.file("b.npy"));
}

TEST(Dataset, NpzKeyedByInputNameAndPositional) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[N,2] x, int64[3] ids", "x");
  write_file(t.file("s0.npz"), fx::zip_bytes({{"ids.npy", fx::npy_i64({3}, {1, 2, 3}), true},
                                              {"x.npy", fx::npy_f32({2, 2}, {1, 2, 3, 4}), true}}));
  write_file(t.file("s1.npz"), fx::zip_bytes({{"arr_0.npy", fx::npy_f32({1, 2}, {5, 6})},
                                              {"arr_1.npy", fx::npy_i64({3}, {4, 5, 6})}}));
  std::vector<Sample> s = load(t.path().string(), m);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].inputs.at("x").dims(), (Dims{2, 2}));  // symbolic batch takes 2
  EXPECT_EQ(s[0].inputs.at("ids").data<int64_t>()[2], 3);
  EXPECT_EQ(s[1].inputs.at("x").data<float>()[1], 6.0f);
  EXPECT_EQ(s[1].inputs.at("ids").data<int64_t>()[0], 4);
  // A single .npz path is a one-sample dataset.
  EXPECT_EQ(load(t.file("s1.npz"), m).size(), 1u);

  write_file(t.file("s2.npz"), fx::zip_bytes({{"x.npy", fx::npy_f32({1, 2}, {5, 6})},
                                              {"idz.npy", fx::npy_i64({3}, {4, 5, 6})}}));
  expect_io_error([&] { load(t.file("s2.npz"), m); }, {t.file("s2.npz"), "'idz'", "ids"});
  write_file(t.file("s3.npz"), fx::zip_bytes({{"x.npy", fx::npy_f32({1, 2}, {5, 6})}}));
  expect_io_error([&] { load(t.file("s3.npz"), m); }, {t.file("s3.npz"), "no data for input 'ids'"});
}

TEST(Dataset, PerInputFolders) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[1,2] x, int64[3] ids", "x");
  mkdir(t, "x");
  mkdir(t, "ids");
  for (int i = 0; i < 2; ++i) {  // .pb for one input, .npy for the other; paired by sorted name
    write_file(t.file("x/" + std::to_string(i) + ".pb"), fx::tensor_proto_f32("", {2}, {float(i), 0}));
    write_file(t.file("ids/" + std::string(1, char('a' + i)) + ".npy"), fx::npy_i64({3}, {i, i, i}));
  }
  Dataset ds = open_dataset(t.path().string(), m.graph, {});
  EXPECT_EQ(ds.layout(), DataLayout::kInputFolders);
  std::vector<Sample> s = read_all(ds);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].inputs.at("x").data<float>()[0], 1.0f);
  EXPECT_EQ(s[1].inputs.at("ids").data<int64_t>()[0], 1);
  EXPECT_EQ(s[1].sources.size(), 2u);

  write_file(t.file("ids/c.npy"), fx::npy_i64({3}, {1, 1, 1}));
  expect_io_error([&] { load(t.path().string(), m); }, {"'ids' has 3 files", "'x' has 2"});
  mkdir(t, "mask");
  expect_io_error([&] { load(t.path().string(), m); }, {"folder 'mask'", "x, ids"});
  fs::remove_all(t.file("mask"));
  fs::remove_all(t.file("ids"));
  expect_io_error([&] { load(t.path().string(), m); }, {"no folder for input 'ids'"});
}

TEST(Dataset, TestDataSetsNumericOrderAndNameBinding) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[1,2] a, float[1,3] b", "a");
  write_file(t.file("model.onnx"), "not read");
  for (int k : {0, 1, 10, 2}) {
    const std::string d = mkdir(t, "test_data_set_" + std::to_string(k));
    write_file(d + "/input_0.pb", fx::tensor_proto_f32("", {1, 2}, {float(k), 0}));
    write_file(d + "/input_1.pb", fx::tensor_proto_f32("", {1, 3}, {0, 0, float(k)}));
    write_file(d + "/output_0.pb", "ignored");
  }
  // In set 2 the files are in the other order but the TensorProto names say which is which.
  write_file(t.file("test_data_set_2/input_0.pb"), fx::tensor_proto_f32("b", {1, 3}, {0, 0, 2}));
  write_file(t.file("test_data_set_2/input_1.pb"), fx::tensor_proto_f32("a", {1, 2}, {2, 0}));
  Dataset ds = open_dataset(t.path().string(), m.graph, {});
  EXPECT_EQ(ds.layout(), DataLayout::kTestDataSets);
  std::vector<Sample> s = read_all(ds);
  ASSERT_EQ(s.size(), 4u);
  const float order[] = {0, 1, 2, 10};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(s[i].inputs.at("a").data<float>()[0], order[i]);
    EXPECT_EQ(s[i].inputs.at("b").data<float>()[2], order[i]);
  }
  write_file(t.file("test_data_set_1/input_1.pb"), fx::tensor_proto_f32("", {1, 4}, {0, 0, 0, 0}));
  expect_io_error([&] { load(t.path().string(), m); },
                  {"test_data_set_1/input_1.pb", "input 'b'", "wrong shape", "[1,3]", "[1,4]"});
  write_file(t.file("test_data_set_1/input_1.pb"), "\xff\xff garbage");
  expect_io_error([&] { load(t.path().string(), m); }, {"test_data_set_1/input_1.pb"});
  write_file(t.file("test_data_set_1/input_1.pb"), fx::tensor_proto_f32("", {1, 3}, {0, 0, 1}));
  write_file(t.file("test_data_set_1/input_2.pb"), fx::tensor_proto_f32("", {1}, {0}));
  expect_io_error([&] { load(t.path().string(), m); }, {"input_2.pb", "2 runtime inputs"});
  // input_0.pb names 'b' and input_1.pb feeds 'b' by position: 'b' twice, 'a' never.
  write_file(t.file("test_data_set_1/input_0.pb"), fx::tensor_proto_f32("b", {1, 3}, {0, 0, 1}));
  expect_io_error([&] { load(t.path().string(), m); }, {"input 'b' is given twice", "input_0.pb"});
}

TEST(Dataset, ListFileRelativePathsAndMultiInput) {
  TempDir t;
  const ir::Model one = fx::model_with_inputs("float[1,2] x", "x");
  mkdir(t, "d");
  write_file(t.file("d/p.npy"), fx::npy_f32({2}, {1, 2}));
  write_file(t.file("d/q.npy"), fx::npy_f32({2}, {3, 4}));
  write_file(t.file("list.txt"), "# calibration files\nd/q.npy\n\n  d/p.npy  \r\n");
  Dataset ds = open_dataset(t.file("list.txt"), one.graph, {});
  EXPECT_EQ(ds.layout(), DataLayout::kListFile);
  std::vector<Sample> s = read_all(ds);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].inputs.at("x").data<float>()[0], 3.0f);  // list order, not sorted
  write_file(t.file("bad.txt"), "d/p.npy\nd/missing.npy\n");
  expect_io_error([&] { load(t.file("bad.txt"), one); }, {"bad.txt:2", "missing.npy"});

  const ir::Model two = fx::model_with_inputs("float[1,2] x, int64[1] n", "x");
  write_file(t.file("d/n.npy"), fx::npy_i64({1}, {7}));
  write_file(t.file("multi.txt"), "d/p.npy, d/n.npy\nn=d/n.npy,x=d/q.npy\n");
  s = load(t.file("multi.txt"), two);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].inputs.at("x").data<float>()[0], 3.0f);
  EXPECT_EQ(s[1].inputs.at("n").data<int64_t>()[0], 7);
  write_file(t.file("multi_bad.txt"), "d/p.npy\n");
  expect_io_error([&] { load(t.file("multi_bad.txt"), two); }, {"multi_bad.txt:1", "2 inputs"});
}

TEST(Dataset, ImagesWithPreprocessing) {
  TempDir t;
  const std::string dir = mkdir(t, "img");
  // 8x6 images of one colour: resize short side to 4, center crop 4 -> exact colour values.
  fx::write_png(dir + "/a.png", 8, 6, 3, std::vector<uint8_t>(8 * 6 * 3, 51));
  fx::write_bmp(dir + "/b.bmp", 8, 6, 3, std::vector<uint8_t>(8 * 6 * 3, 102));
  DataOptions o;
  set_preprocess_option(o.preprocess, "resize_short", "4");
  set_preprocess_option(o.preprocess, "center_crop", "4");
  set_preprocess_option(o.preprocess, "scale", "1/255");
  set_preprocess_option(o.preprocess, "mean", "0.1,0.2,0.3");
  const ir::Model rgb = fx::model_with_inputs("float[1,3,4,4] x", "x");
  std::vector<Sample> s = load(dir, rgb, o);
  ASSERT_EQ(s.size(), 2u);
  const Tensor& b = s[1].inputs.at("x");
  ASSERT_EQ(b.dims(), (Dims{1, 3, 4, 4}));
  EXPECT_FLOAT_EQ(b.data<float>()[0], 102.0f / 255.0f - 0.1f);
  EXPECT_FLOAT_EQ(b.data<float>()[47], 102.0f / 255.0f - 0.3f);
  // A one-channel model gets gray images.
  set_preprocess_option(o.preprocess, "mean", "0");
  const ir::Model gray = fx::model_with_inputs("float[N,1,4,4] x", "x");
  EXPECT_EQ(load(dir, gray, o)[0].inputs.at("x").dims(), (Dims{1, 1, 4, 4}));
  // uint8 inputs take raw pixels when there is no normalization (NHWC here).
  DataOptions raw;
  set_preprocess_option(raw.preprocess, "resize", "4x4");
  set_preprocess_option(raw.preprocess, "layout", "nhwc");
  const ir::Model u8 = fx::model_with_inputs("uint8[1,4,4,3] x", "x");
  const Tensor u = load(dir, u8, raw)[0].inputs.at("x");
  EXPECT_EQ(u.dtype(), DType::kUint8);
  EXPECT_EQ(u.data<uint8_t>()[5], 51);
  // Size mismatch: names the file and the input, and hints at the flags.
  expect_io_error([&] { load(dir, fx::model_with_inputs("float[1,3,5,5] x", "x"), o); },
                  {dir + "/a.png", "input 'x'", "[1,3,5,5]", "[1,3,4,4]", "--center-crop"});
  write_file(dir + "/c.jpg", "not a jpeg");
  expect_io_error([&] { load(dir, rgb, o); }, {dir + "/c.jpg", "cannot decode"});
}

TEST(Dataset, BadDataNamesFileAndInput) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[1,2] x", "x");
  const std::string d = mkdir(t, "d");
  const double dv[2] = {1, 2};
  write_file(d + "/a.npy", fx::npy_bytes("<f8", "(1, 2)", dv, sizeof(dv)));
  expect_io_error([&] { load(d, m); }, {d + "/a.npy", "input 'x'", "wrong dtype", "float", "double", "float32"});
  write_file(d + "/a.npy", fx::npy_f32({1, 1, 2}, {1, 2}));
  expect_io_error([&] { load(d, m); }, {d + "/a.npy", "input 'x'", "wrong rank", "[1,1,2]"});
  write_file(d + "/a.npy", fx::npy_f32({1, 3}, {1, 2, 3}));
  expect_io_error([&] { load(d, m); }, {d + "/a.npy", "input 'x'", "expected float [1,2]", "found float [1,3]"});
  // Hostile header: a huge declared shape over 8 bytes of data must not allocate.
  write_file(d + "/a.npy", fx::npy_bytes("<f4", "(4000000000, 4000000000)", dv, sizeof(dv)));
  expect_io_error([&] { load(d, m); }, {d + "/a.npy"});
  write_file(d + "/a.npy", fx::npy_bytes("<f4", "(1, 2", dv, sizeof(dv)));
  expect_io_error([&] { load(d, m); }, {d + "/a.npy"});

  const std::string e = mkdir(t, "empty");
  expect_io_error([&] { load(e, m); }, {e, "empty folder"});
  expect_io_error([&] { load(t.file("nowhere"), m); }, {"nowhere", "no such file"});
  // Files and subfolders mixed.
  write_file(d + "/a.npy", fx::npy_f32({1, 2}, {1, 2}));
  mkdir(t, "d/sub");
  expect_io_error([&] { load(d, m); }, {d, "'sub'"});
  // A plain folder of .npy files cannot feed a two-input model.
  fs::remove_all(d + "/sub");
  expect_io_error([&] { load(d, fx::model_with_inputs("float[1,2] x, float[1,2] y", "x")); },
                  {"2 inputs", "x, y", "subfolder per input"});
}

TEST(Dataset, InputShapeOverrides) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[N,3] x", "x");
  write_file(t.file("a.npy"), fx::npy_f32({2, 3}, {1, 2, 3, 4, 5, 6}));
  DataOptions o;
  o.input_shapes = {parse_input_shape("--input-shape", "x:2x3")};
  EXPECT_EQ(load(t.path().string(), m, o)[0].inputs.at("x").dims(), (Dims{2, 3}));
  o.input_shapes = {parse_input_shape("--input-shape", "x:4x3")};
  expect_io_error([&] { load(t.path().string(), m, o); }, {"a.npy", "[4,3]", "[2,3]"});
  o.input_shapes = {parse_input_shape("--input-shape", "y:4x3")};
  EXPECT_THROW(open_dataset(t.path().string(), m.graph, o), UsageError);
}

TEST(Dataset, NonFiniteFailsOrIsSkipped) {
  TempDir t;
  const ir::Model m = fx::model_with_inputs("float[1,2] x", "x");
  write_file(t.file("a.npy"), fx::npy_f32({1, 2}, {1, 2}));
  write_file(t.file("b.npy"), fx::npy_f32({1, 2}, {1, std::nanf("")}));
  write_file(t.file("c.npy"), fx::npy_f32({1, 2}, {-INFINITY, 2}));
  write_file(t.file("d.npy"), fx::npy_f32({1, 2}, {3, 4}));
  expect_io_error([&] { load(t.path().string(), m); }, {t.file("b.npy"), "input 'x'", "NaN"});
  DataOptions o;
  o.skip_nonfinite = true;
  Dataset ds = open_dataset(t.path().string(), m.graph, o);
  EXPECT_EQ(ds.size(), 4u);
  std::vector<Sample> s = read_all(ds);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(ds.skipped_nonfinite(), 2u);
  EXPECT_EQ(s[1].sources[0], t.file("d.npy"));
  EXPECT_EQ(s[1].index, 3u);
}

TEST(Dataset, RealImagenetImagesWithTorchvisionPreset) {
  PTQ_REQUIRE_SHARED();
  const fs::path dir = fs::path(ptq::test::shared_dir()) / "data" / "imagenet-sample";
  TempDir t;
  std::string list;
  for (const char* f : {"n01440764_tench.jpg", "n01443537_goldfish.jpg", "n01484850_great_white_shark.jpg"})
    list += (dir / f).string() + "\n";
  write_file(t.file("list.txt"), list);
  DataOptions o;
  set_preprocess_option(o.preprocess, "preset", "torchvision");
  const ir::Model m = fx::model_with_inputs("float[N,3,224,224] input", "input");
  std::vector<Sample> s = load(t.file("list.txt"), m, o);
  ASSERT_EQ(s.size(), 3u);
  for (const Sample& smp : s) {
    const Tensor& x = smp.inputs.at("input");
    ASSERT_EQ(x.dims(), (Dims{1, 3, 224, 224}));
    double sum = 0, sq = 0, lo = 1e9, hi = -1e9;
    for (size_t i = 0; i < x.numel(); ++i) {
      const double v = x.data<float>()[i];
      sum += v;
      sq += v * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double mean = sum / double(x.numel());
    const double sd = std::sqrt(sq / double(x.numel()) - mean * mean);
    // ImageNet-normalized photos: inside [(0-0.485)/0.229, (1-0.406)/0.225], roughly centered.
    EXPECT_GE(lo, -2.1180 - 1e-3) << smp.source_str();
    EXPECT_LE(hi, 2.6400 + 1e-3) << smp.source_str();
    EXPECT_LT(std::fabs(mean), 1.5) << smp.source_str();
    EXPECT_GT(sd, 0.2) << smp.source_str();
    EXPECT_LT(hi - lo, 4.8) << smp.source_str();
    EXPECT_GT(hi - lo, 1.0) << smp.source_str();
  }
}

// The presets and letterbox against the shared models' real input declarations.
TEST(Dataset, RealModelsAcceptTheirDocumentedPreprocessing) {
  PTQ_REQUIRE_SHARED();
  const fs::path shared = ptq::test::shared_dir();
  struct Case {
    const char* model;
    const char* data;
    std::vector<std::pair<const char*, const char*>> flags;
    Dims dims;
  };
  const std::vector<Case> cases = {
      {"squeezenet1.1", "imagenet-sample", {{"preset", "caffe"}}, {1, 3, 224, 224}},
      {"mobilenetv2", "imagenet-sample", {{"preset", "torchvision"}}, {1, 3, 224, 224}},
      {"yolox-nano", "detect-samples", {{"letterbox", "416"}, {"channel_order", "bgr"}}, {1, 3, 416, 416}},
  };
  for (const Case& c : cases) {
    const ir::Model m = onnx_io::load_model((shared / "models" / c.model / "model.onnx").string());
    DataOptions o;
    o.calib_count = 2;
    for (const auto& [k, v] : c.flags) set_preprocess_option(o.preprocess, k, v);
    Dataset ds = open_dataset((shared / "data" / c.data).string(), m.graph, o);
    EXPECT_EQ(ds.size(), 2u) << c.model;
    for (const Sample& s : read_all(ds)) {
      ASSERT_EQ(s.inputs.size(), 1u) << c.model;
      EXPECT_EQ(s.inputs.begin()->second.dims(), c.dims) << c.model << " " << s.source_str();
    }
  }
}

}  // namespace
}  // namespace ptq::data
