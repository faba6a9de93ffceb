// Bad input through the CLI: one clear line on stderr, the documented exit code, no output file.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <functional>
#include <random>

#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;

// A valid small model with a 256-byte external initializer in `dir`.
std::string write_external_model(const std::string& dir, const std::string& location,
                                 size_t data_bytes) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(1);
  w->add_dims(64);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = w->add_external_data();
  e->set_key("location");
  e->set_value(location);
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("w");
  n->add_output("y");
  g->add_output()->set_name("y");
  fs::create_directories(dir);
  if (data_bytes) test::write_file(dir + "/w.bin", std::string(data_bytes, 'x'));
  test::write_file(dir + "/model.onnx", m.SerializeAsString());
  return dir + "/model.onnx";
}

struct Case {
  const char* what;
  std::function<std::string(const test::TempDir&)> make;  // returns the model path
  int exit_code;
  const char* message;  // must appear in the one stderr line
};

std::string good_model(const test::TempDir& t) {
  return write_external_model(t.file("good"), "w.bin", 256);
}

}  // namespace

TEST(BadInput, EachCaseFailsWithOneLineAndNoOutput) {
  const std::vector<Case> cases = {
      {"empty file",
       [](const test::TempDir& t) { test::write_file(t.file("e.onnx"), ""); return t.file("e.onnx"); },
       2, "empty file"},
      {"random bytes",
       [](const test::TempDir& t) {
         std::mt19937 rng(2345);
         std::string s(4096, '\0');
         for (char& c : s) c = static_cast<char>(rng());
         test::write_file(t.file("r.onnx"), s);
         return t.file("r.onnx");
       },
       2, "not"},
      {"truncated model",
       [](const test::TempDir& t) {
         const std::string full = test::read_file(good_model(t));
         test::write_file(t.file("t.onnx"), full.substr(0, full.size() / 2));
         return t.file("t.onnx");
       },
       2, "protobuf parse failed"},
      {"missing external data file",
       [](const test::TempDir& t) { return write_external_model(t.file("m"), "w.bin", 0); }, 5,
       "is missing"},
      {"external data outside the model directory",
       [](const test::TempDir& t) {
         test::write_file(t.file("secret.bin"), std::string(256, 's'));
         return write_external_model(t.file("o"), "../secret.bin", 0);
       },
       2, "escapes the model's directory"},
      {"external data shorter than declared",
       [](const test::TempDir& t) { return write_external_model(t.file("s"), "w.bin", 100); }, 2,
       "does not match"},
      {"nonexistent model path", [](const test::TempDir& t) { return t.file("nope.onnx"); }, 5,
       "no such file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    test::TempDir tmp;
    const std::string model = c.make(tmp);
    const std::string before = fs::exists(model) ? test::read_file(model) : "";
    const std::string out = tmp.file("out.onnx");
    for (const auto& args : {std::vector<std::string>{"inspect", model},
                             std::vector<std::string>{"convert", model, "-o", out}}) {
      const auto r = test::run_quantize(args);
      EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
      EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(model), std::string::npos) << "message names the file: " << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_TRUE(r.out.empty()) << r.out;
      EXPECT_FALSE(fs::exists(out));
    }
    if (fs::exists(model)) {
      EXPECT_EQ(test::read_file(model), before) << "input was modified";
    }
  }
}

TEST(BadInput, OutputInMissingDirectory) {
  test::TempDir tmp;
  const std::string model = good_model(tmp);
  const auto r = test::run_quantize({"convert", model, "-o", tmp.file("no/such/dir/out.onnx")});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("no")));
}

TEST(BadInput, UsageErrorsExitOne) {
  EXPECT_EQ(test::run_quantize({"inspect"}).exit_code, 1);
  EXPECT_EQ(test::run_quantize({"inspect", "x.onnx", "--no-such-flag"}).exit_code, 1);
  EXPECT_EQ(test::run_quantize({}).exit_code, 1);
}

TEST(BadInput, ConvertRoundTripsAGoodModel) {
  test::TempDir tmp;
  const std::string model = good_model(tmp);
  const auto r = test::run_quantize({"convert", model, "-o", tmp.file("copy.onnx")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp.file("copy.onnx")));
  const auto same = test::run_quantize({"convert", model, "-o", model});
  EXPECT_EQ(same.exit_code, 1) << same.err;
}

}  // namespace ptq
