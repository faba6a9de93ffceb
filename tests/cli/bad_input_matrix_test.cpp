// Bad input matrix for `quantize MODEL -o OUT --calib DATA`: model, data, flags, output path.
// Every case: the documented exit code, one stderr line naming the culprit, no output (and no
// temp files) left in the output folder, and every input file byte-identical afterwards.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "../data/fixtures.h"
#include "ptq/core/npy.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
namespace dt = data::test;

const std::string kDemo = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string digits_npy(float poison = 0.f) {
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 17);
  if (poison != 0.f) v[9] = poison;
  return dt::npy_f32({1, 1, 8, 8}, v);
}

// A .npy header declaring `shape` (terabytes) over 16 bytes of data.
std::string hostile_npy(const std::string& shape) {
  const char data[16] = {};
  return dt::npy_bytes("<f4", shape, data, sizeof(data));
}

// The demo model with `edit` applied to its ModelProto.
template <typename F>
std::string edited_demo(F&& edit) {
  onnx::ModelProto m;
  const std::string bytes = test::read_file(kDemo);
  EXPECT_TRUE(m.ParseFromString(bytes));
  edit(m);
  return m.SerializeAsString();
}

struct Case {
  std::string what;
  std::vector<std::string> args;  // the whole command line after the binary
  int exit_code;
  std::string culprit;  // must appear in the single stderr line
};

// Every regular file under the existing paths among `args`, with its bytes.
std::map<std::string, std::string> snapshot(const std::vector<std::string>& args) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (const std::string& a : args) {
    if (a.rfind("/proc", 0) == 0) continue;
    if (fs::is_regular_file(a, ec)) files[a] = test::read_file(a);
    if (fs::is_directory(a, ec))
      for (const auto& e : fs::recursive_directory_iterator(a))
        if (e.is_regular_file()) files[e.path().string()] = test::read_file(e.path().string());
  }
  return files;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class BadInputMatrix : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = t_.file("model.onnx");
    fs::copy_file(kDemo, model_);
    out_dir_ = t_.path() / "out";
    fs::create_directories(out_dir_);
    good_ = folder("good", {{"0000.npy", digits_npy()}, {"0001.npy", digits_npy()}});
    // A calibration table for the demo model, made by a good run.
    table_ = t_.file("table.json");
    const auto r = test::run_quantize({model_, "-o", t_.file("ok.onnx"), "--calib", good_,
                                       "--save-calib", table_, "-q", "--threads", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fs::remove(t_.file("ok.onnx"));
  }

  // A folder `name` holding `files` (name -> bytes).
  std::string folder(const std::string& name, const std::map<std::string, std::string>& files) {
    const fs::path dir = t_.path() / name;
    fs::create_directories(dir);
    for (const auto& [file, bytes] : files) test::write_file((dir / file).string(), bytes);
    return dir.string();
  }
  std::string file(const std::string& name, const std::string& bytes) {
    test::write_file(t_.file(name), bytes);
    return t_.file(name);
  }
  // The usual command: MODEL -o out/o.onnx --calib DATA, then `extra`.
  std::vector<std::string> cmd(const std::string& model, const std::string& data,
                               std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {model, "-o", out(), "--calib", data};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string out() const { return (out_dir_ / "o.onnx").string(); }

  std::vector<Case> cases();

  test::TempDir t_;
  std::string model_, good_, table_;
  fs::path out_dir_;
};

std::vector<Case> BadInputMatrix::cases() {
  const std::string full = test::read_file(model_);
  const std::string tb = test::read_file(table_);
  std::string other_table = tb;
  other_table.replace(other_table.find("\"model_sha256\": \"") + 17, 8, "00000000");
  // A depthwise input's per-channel maximum below zero (passes/depthwise_scales.h divides by them).
  const std::string bad_depthwise = "{\"depthwise_scales\": {\"channel_max\": {\"relu1\": [1, -2]}}, " + tb.substr(1);
  std::string bad_channel_max = tb;
  bad_channel_max.replace(bad_channel_max.find("\"max\": "), 7, "\"channel_max\": [1, -2], \"max\": ");
  std::string bad_range = tb;
  bad_range.replace(bad_range.find("\"max\": "), 7, "\"max\": -1e30, \"x\": ");
  // An .npz whose central directory claims 4 GB from a few compressed bytes.
  std::string npz_huge = dt::zip_bytes({{"input.npy", digits_npy(), true}});
  dt::patch_u32(npz_huge, dt::central_dir_offset(npz_huge) + 24, 0xFFFFFFF0u);
  onnx::TensorProto pb;
  pb.set_name("input");
  pb.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{1} << 20, int64_t{1} << 20, int64_t{1} << 20}) pb.add_dims(d);
  const std::string& m = model_;
  const std::string& g = good_;
  return {
      // ---- model --------------------------------------------------------------------------------
      {"garbage model", cmd(file("garbage.onnx", random_bytes(4096, 1)), g), 2, "garbage.onnx"},
      {"empty model", cmd(file("empty.onnx", ""), g), 2, "empty.onnx"},
      {"truncated model", cmd(file("trunc.onnx", full.substr(0, full.size() / 2)), g), 2, "trunc.onnx"},
      {"missing model", cmd(t_.file("nope.onnx"), g), 5, "nope.onnx"},
      {"model is a folder", cmd(folder("dir.onnx", {}), g), 5, "dir.onnx"},
      {"model is JSON text", cmd(file("text.onnx", "{\"graph\": []}\n"), g), 2, "text.onnx"},
      {"initializer declaring 2^60 floats",
       cmd(file("huge.onnx", edited_demo([](onnx::ModelProto& p) {
             auto* w = p.mutable_graph()->mutable_initializer(0);
             w->clear_raw_data();
             w->clear_dims();
             for (int k = 0; k < 3; ++k) w->add_dims(int64_t{1} << 20);
           })), g),
       2, "conv1.w"},
      {"NaN in a Conv bias",
       cmd(file("nanbias.onnx", edited_demo([](onnx::ModelProto& p) {
             for (auto& t : *p.mutable_graph()->mutable_initializer())
               if (t.name() == "conv1.b") {
                 const float nan = std::nanf("");
                 std::memcpy(t.mutable_raw_data()->data(), &nan, sizeof nan);
               }
           })), g),
       2, "conv1.b"},
      {"opset 25",
       cmd(file("op25.onnx", edited_demo([](onnx::ModelProto& p) { p.mutable_opset_import(0)->set_version(25); })), g),
       3, "opset 25"},
      {"opset 6",
       cmd(file("op6.onnx", edited_demo([](onnx::ModelProto& p) { p.mutable_opset_import(0)->set_version(6); })), g),
       3, "op6.onnx"},
      // ---- calibration data -----------------------------------------------------------------------
      {"garbage .npy", cmd(m, folder("d1", {{"0000.npy", random_bytes(300, 2)}})), 5, "0000.npy"},
      {"truncated .npy", cmd(m, folder("d2", {{"0000.npy", digits_npy().substr(0, 200)}})), 5, "0000.npy"},
      {".npy header declaring terabytes",
       cmd(m, folder("d3", {{"0000.npy", hostile_npy("(100000, 100000, 100000, 8)")}})), 5, "0000.npy"},
      {".npy shape that overflows size_t",
       cmd(m, folder("d4", {{"0000.npy", hostile_npy("(4294967296, 4294967296, 4294967296)")}})), 5, "0000.npy"},
      {".npz member with a terabyte .npy header",
       cmd(m, folder("d5", {{"0000.npz", dt::zip_bytes({{"input.npy", hostile_npy("(1048576, 1048576, 1048576)")}})}})),
       5, "0000.npz"},
      {".npz central directory claiming 4 GB", cmd(m, folder("d6", {{"0000.npz", npz_huge}})), 5, "0000.npz"},
      {"garbage .npz", cmd(m, folder("d7", {{"0000.npz", "PK\x03\x04" + random_bytes(200, 3)}})), 5, "0000.npz"},
      {".pb declaring 2^60 floats", cmd(m, folder("d8", {{"input_0.pb", pb.SerializeAsString()}})), 5, "input_0.pb"},
      {"garbage .pb", cmd(m, folder("d9", {{"input_0.pb", random_bytes(100, 4)}})), 5, "input_0.pb"},
      {"int64 data for a float input", cmd(m, folder("d10", {{"0000.npy", dt::npy_i64({1, 1, 8, 8}, std::vector<int64_t>(64, 1))}})),
       5, "input 'input'"},
      {"wrong shape", cmd(m, folder("d11", {{"0000.npy", dt::npy_f32({1, 1, 9, 9}, std::vector<float>(81, 1.f))}})), 5,
       "input 'input'"},
      {".npz array named like no input",
       cmd(m, folder("d12", {{"0000.npz", dt::zip_bytes({{"wrong.npy", digits_npy()}})}})), 5, "'wrong'"},
      {"NaN in the data", cmd(m, folder("d13", {{"0000.npy", digits_npy()}, {"0001.npy", digits_npy(std::nanf(""))}})), 5,
       "0001.npy"},
      {"Inf in the data", cmd(m, folder("d14", {{"0000.npy", digits_npy(INFINITY)}})), 5, "0000.npy"},
      {"empty calibration folder", cmd(m, folder("d15", {})), 5, "d15"},
      {"missing calibration folder", cmd(m, t_.file("d16")), 5, "d16"},
      {"undecodable image", cmd(m, folder("d17", {{"0000.png", "\x89PNG\r\n\x1a\n" + random_bytes(100, 5)}})), 5,
       "0000.png"},
      // A BMP header declaring 8x8 24-bit pixels and no pixel rows (stb would pad them with zeros).
      {"truncated BMP",
       cmd(m, folder("d18", {{"0000.bmp", std::string("BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x08\0\0\0\x08\0\0\0"
                                                   "\x01\0\x18\0",
                                                   30) + std::string(24, '\0')}})),
       5, "0000.bmp: BMP file is truncated"},
      {"missing --eval folder", cmd(m, g, {"--eval", t_.file("noeval")}), 5, "noeval"},
      {"labels file that is not a TSV", cmd(m, g, {"--eval", g, "--labels", file("labels.tsv", "\x01\x02garbage")}), 5,
       "labels.tsv"},
      // ---- flags ----------------------------------------------------------------------------------
      {"unknown method", cmd(m, g, {"--method", "magic"}), 1, "--method"},
      {"percentile out of range", cmd(m, g, {"--percentile", "200"}), 1, "--percentile"},
      {"bad --input-shape dims", cmd(m, g, {"--input-shape", "input:1xAx8"}), 1, "--input-shape"},
      {"--input-shape for no input", cmd(m, g, {"--input-shape", "nope:1x1x8x8"}), 1, "--input-shape"},
      {"--resize 0", cmd(m, g, {"--resize", "0"}), 1, "--resize"},
      {"--mean not a number", cmd(m, g, {"--mean", "a,b"}), 1, "--mean"},
      {"--resize with --letterbox", cmd(m, g, {"--resize", "8", "--letterbox", "8x8"}), 1, "--letterbox"},
      {"unknown --target", cmd(m, g, {"--target", "gpu"}), 1, "--target"},
      {"unknown --elementwise", cmd(m, g, {"--elementwise", "int4"}), 1, "--elementwise"},
      {"--threads not a number", cmd(m, g, {"--threads", "abc"}), 1, "--threads"},
      {"--max-drop without --labels", cmd(m, g, {"--eval", g, "--max-drop", "1"}), 1, "--max-drop"},
      {"no -o", {m, "--calib", g}, 1, "--output"},
      // ---- output paths ---------------------------------------------------------------------------
      {"output under a regular file", {m, "-o", t_.file("model.onnx") + "/o.onnx", "--calib", g}, 5,
       "model.onnx' is not a directory"},
      {"output in /proc", {m, "-o", "/proc/ptq-out.onnx", "--calib", g}, 5, "/proc/ptq-out.onnx"},
      {"output equal to the input", {m, "-o", m, "--calib", g}, 1, "overwrite the input"},
      {"output in a missing folder", {m, "-o", t_.file("no/such/o.onnx"), "--calib", g}, 5, "no/such/o.onnx"},
      {"unwritable --report", cmd(m, g, {"--report", "/proc/ptq-r.json"}), 5, "/proc/ptq-r.json"},
      {"unwritable --save-calib", cmd(m, g, {"--save-calib", t_.file("model.onnx") + "/t.json"}), 5, "t.json"},
      // ---- calibration tables ---------------------------------------------------------------------
      {"table for another model", {m, "-o", out(), "--load-calib", file("other.json", other_table)}, 5, "another model"},
      {"table that is not JSON", {m, "-o", out(), "--load-calib", file("bad.json", "{\"format\": ")}, 5, "bad.json"},
      {"table with min > max", {m, "-o", out(), "--load-calib", file("range.json", bad_range)}, 5, "range.json"},
      {"table with a negative depthwise maximum", {m, "-o", out(), "--load-calib", file("dwmax.json", bad_depthwise)}, 5,
       "depthwise_scales.channel_max.relu1"},
      {"table with a negative per-channel maximum", {m, "-o", out(), "--load-calib", file("chmax.json", bad_channel_max)},
       5, ".channel_max"},
  };
}

}  // namespace

TEST_F(BadInputMatrix, EveryCaseFailsCleanly) {
  const std::vector<Case> all = cases();
  EXPECT_GE(all.size(), 30u);
  const std::vector<std::string> dir_before = listing(t_.path());
  for (const Case& c : all) {
    SCOPED_TRACE(c.what);
    std::vector<std::string> args = c.args;
    for (const char* a : {"-q", "--threads", "1"}) args.push_back(a);
    if (c.what == "--threads not a number") args.resize(args.size() - 2);
    const auto before = snapshot(c.args);
    const auto r = test::run_quantize(args);
    if (std::getenv("PTQ_MATRIX_PRINT")) std::printf("%-42s exit %d  %s", c.what.c_str(), r.exit_code, r.err.c_str());
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.culprit), std::string::npos) << "culprit '" << c.culprit << "' in: " << r.err;
    EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
    EXPECT_TRUE(listing(out_dir_).empty()) << "left in the output folder: " << ::testing::PrintToString(listing(out_dir_));
    EXPECT_TRUE(snapshot(c.args) == before) << "an input file changed";
    EXPECT_EQ(listing(t_.path()), dir_before) << "files appeared beside the inputs";
  }
}

}  // namespace ptq
