// External data: written on request, read back, and hostile locations refused.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>

#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "testutil.h"

namespace ptq::onnx_io {
namespace {

namespace fs = std::filesystem;

// A model whose single 64-float initializer lives in external data.
onnx::ModelProto external_model(const std::string& location, int64_t offset, int64_t length) {
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
  auto add = [w](const char* k, const std::string& v) {
    auto* e = w->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", location);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("w");
  n->add_output("y");
  auto* y = g->add_output();
  y->set_name("y");
  y->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  return m;
}

struct Fixture {
  test::TempDir tmp;
  std::string dir() const { return (tmp.path() / "model").string(); }
  std::string write(const onnx::ModelProto& m) {
    fs::create_directories(dir());
    const std::string path = dir() + "/model.onnx";
    test::write_file(path, m.SerializeAsString());
    return path;
  }
  void data(const std::string& rel, size_t bytes) {
    fs::create_directories(fs::path(dir() + "/" + rel).parent_path());
    std::string s(bytes, '\0');
    for (size_t i = 0; i < bytes; ++i) s[i] = static_cast<char>(i * 7);
    test::write_file(dir() + "/" + rel, s);
  }
};

std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ExternalData, ReadsAtOffsetRelativeToTheModel) {
  Fixture f;
  f.data("weights/w.bin", 512);
  ir::Model m = load_model(f.write(external_model("weights/w.bin", 256, 256)));
  const Tensor* w = m.graph.constant(m.graph.find("w"));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(static_cast<uint8_t>(w->data<char>()[0]), static_cast<uint8_t>(256 * 7));
  EXPECT_EQ(m.external_data_files, std::vector<std::string>{"weights/w.bin"});
}

TEST(ExternalData, AbsolutePathIsRefused) {
  Fixture f;
  f.data("w.bin", 256);
  const std::string err = load_error(f.write(external_model(f.dir() + "/w.bin", 0, 256)));
  EXPECT_NE(err.find("must be a relative path"), std::string::npos) << err;
  EXPECT_NE(err.find("tensor 'w'"), std::string::npos) << err;
}

TEST(ExternalData, DotDotEscapeIsRefused) {
  Fixture f;
  test::write_file(f.tmp.file("outside.bin"), std::string(256, 'x'));
  const std::string err = load_error(f.write(external_model("../outside.bin", 0, 256)));
  EXPECT_NE(err.find("escapes the model's directory"), std::string::npos) << err;
}

TEST(ExternalData, SymlinkEscapeIsRefused) {
  Fixture f;
  test::write_file(f.tmp.file("outside.bin"), std::string(256, 'x'));
  const std::string path = f.write(external_model("link.bin", 0, 256));
  fs::create_symlink(f.tmp.file("outside.bin"), f.dir() + "/link.bin");
  EXPECT_NE(load_error(path).find("resolves outside"), std::string::npos);
}

TEST(ExternalData, OffsetOrLengthPastTheEndIsRefused) {
  Fixture f;
  f.data("w.bin", 256);
  EXPECT_NE(load_error(f.write(external_model("w.bin", 1000, 256))).find("past the end"),
            std::string::npos);
  EXPECT_NE(load_error(f.write(external_model("w.bin", 128, 256))).find("past the end"),
            std::string::npos);
  // No length: the rest of the file, which must then be exactly what the shape needs.
  f.data("w.bin", 300);
  EXPECT_NE(load_error(f.write(external_model("w.bin", 0, -1))).find("does not match"),
            std::string::npos);
  f.data("w.bin", 128);
  EXPECT_NE(load_error(f.write(external_model("w.bin", 0, 256))).find("past the end"),
            std::string::npos);
}

TEST(ExternalData, MissingFileIsAnIoError) {
  Fixture f;
  try {
    load_model(f.write(external_model("gone.bin", 0, 256)));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("gone.bin' is missing"), std::string::npos);
  }
}

TEST(ExternalData, SaveWritesDataFileBesideTheModelAndReloads) {
  Fixture f;
  f.data("w.bin", 256);
  ir::Model m = load_model(f.write(external_model("w.bin", 0, 256)));
  const std::string out = f.tmp.file("out.onnx");
  SaveOptions opts;
  opts.external_data = ExternalData::kAlways;
  opts.min_external_bytes = 16;
  save_model(m, out, opts);
  ASSERT_TRUE(fs::exists(out + ".data"));
  ir::Model again = load_model(out);
  EXPECT_EQ(again.external_data_files, std::vector<std::string>{"out.onnx.data"});
  EXPECT_EQ(test::diff_graphs(m.graph, again.graph), "");
  // Inline by default: no data file.
  save_model(m, f.tmp.file("inline.onnx"));
  EXPECT_FALSE(fs::exists(f.tmp.file("inline.onnx.data")));
}

TEST(ExternalData, SavingOverTheInputIsRefused) {
  Fixture f;
  f.data("w.bin", 256);
  const std::string path = f.write(external_model("w.bin", 0, 256));
  ir::Model m = load_model(path);
  const std::string before = test::read_file(path);
  EXPECT_THROW(save_model(m, path), UsageError);
  EXPECT_EQ(test::read_file(path), before);
}

}  // namespace ptq::onnx_io
