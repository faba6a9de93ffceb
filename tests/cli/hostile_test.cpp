// Issue 12 through the quantize binary: inputs an outside attack (ASan/UBSan build) found to crash,
// hang or produce inf scales. Each must give one clear error line or a finite model. These tests
// have a ctest TIMEOUT (tests/CMakeLists.txt): a hang fails them; times are not asserted.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../data/fixtures.h"
#include "ptq/core/npy.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace dt = data::test;

// One calibration folder with `n` samples of shape `dims`, values in [lo, hi).
std::string calib_dir(const test::TempDir& tmp, const Dims& dims, int n = 2, float lo = -1.f, float hi = 1.f) {
  const std::string dir = tmp.file("calib");
  std::filesystem::create_directories(dir);
  for (int i = 0; i < n; ++i) write_npy(dir + "/" + std::to_string(i) + ".npy", test::random_tensor(dims, 7 + i, lo, hi));
  return dir;
}

std::string save_text(const test::TempDir& tmp, const std::string& name, const std::string& text) {
  const std::string path = tmp.file(name);
  onnx_io::save_model(onnx_io::parse_model_text(text), path);
  return path;
}

// Every Q/DQ scale of a written model is finite and positive.
void expect_finite_scales(const std::string& path) {
  const ir::Model m = onnx_io::load_model(path);
  size_t checked = 0;
  for (ir::NodeId id : m.graph.node_ids()) {
    const ir::Node& n = m.graph.node(id);
    if (n.op_type != "QuantizeLinear" && n.op_type != "DequantizeLinear") continue;
    const Tensor* s = m.graph.constant(n.inputs.at(1));
    ASSERT_TRUE(s) << n.label();
    for (size_t i = 0; i < s->numel(); ++i) {
      EXPECT_TRUE(std::isfinite(s->data<float>()[i]) && s->data<float>()[i] > 0) << n.label();
      ++checked;
    }
  }
}

size_t count_op(const std::string& path, const std::string& op) {
  const ir::Model m = onnx_io::load_model(path);
  size_t k = 0;
  for (ir::NodeId id : m.graph.node_ids()) k += m.graph.node(id).op_type == op;
  return k;
}

TEST(Hostile, InfActivationIsKeptFp32WithAWarningNotInfScales) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 16] x) => (float[1, 16] y) {
      r = Relu (x)
      l = Log (r)
      y = Add (l, x)
    })");
  const std::string calib = calib_dir(tmp, {1, 16});  // half the values are <= 0: Log(0) = -inf
  for (const char* method : {"minmax", "percentile", "entropy", "mse"}) {
    SCOPED_TRACE(method);
    const std::string out = tmp.file(std::string(method) + ".onnx");
    const test::CliResult r = test::run_quantize({model, "--calib", calib, "--method", method, "-o", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_finite_scales(out);
    if (std::string(method) == "minmax") {
      EXPECT_NE(r.err.find("tensor 'l'"), std::string::npos) << r.err;
    }
  }
}

TEST(Hostile, AbsurdCalibrationTableEntriesStayFp32) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8] x) => (float[1, 8] y) <float[1, 8] c = {1, 2, 3, 4, 5, 6, 7, 8}> {
      a = Add (x, c)
      y = Mul (a, x)
    })");
  const std::string calib = calib_dir(tmp, {1, 8});
  const std::string table = tmp.file("t.json");
  ASSERT_EQ(test::run_quantize({model, "--calib", calib, "--save-calib", table, "-o", tmp.file("a.onnx")}).exit_code, 0);
  nlohmann::json j = nlohmann::json::parse(test::read_file(table));
  j["tensors"]["a"] = {{"min", -3e38}, {"max", 3e38}};
  test::write_file(table, j.dump());
  const std::string out = tmp.file("b.onnx");
  const test::CliResult r = test::run_quantize({model, "--load-calib", table, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tensor 'a'"), std::string::npos) << r.err;
  expect_finite_scales(out);
}

TEST(Hostile, IntegerDivModOfMinByMinusOneFolds) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) <int32[1] a = {-2147483648}, int32[1] b = {-1}> {
      q = Div (a, b)
      m = Mod (a, b)
      s = Add (q, m)
      f = Cast <to = 1> (s)
      y = Add (x, f)
    })");
  const test::CliResult r = test::run_quantize({model, "--calib", calib_dir(tmp, {1, 4}), "-o", tmp.file("o.onnx")});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // SIGFPE (136) before
}

TEST(Hostile, IntegerDivisionByZeroAtRuntimeNamesTheNode) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) <int32[1] z = {0}> {
      i = Cast <to = 6> (x)
      q = Div (i, z)
      f = Cast <to = 1> (q)
      y = Add (x, f)
    })");
  const test::CliResult r = test::run_quantize({model, "--calib", calib_dir(tmp, {1, 4}), "-o", tmp.file("o.onnx")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("(Div)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("division by zero"), std::string::npos) << r.err;
}

TEST(Hostile, ExcludeNodesOnAHugeNodeNameIsAUsageError) {
  test::TempDir tmp;
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) { a = Add (x, x)
      y = Relu (a) })");
  m.graph.node(m.graph.node_ids()[0]).name = "n" + std::string(100000, 'c');
  const std::string model = tmp.file("m.onnx");
  onnx_io::save_model(m, model);
  const test::CliResult r = test::run_quantize(
      {model, "--calib", calib_dir(tmp, {1, 4}), "--exclude-nodes", ".*c", "--elementwise", "int8", "-o", tmp.file("o.onnx")});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // SIGSEGV (std::regex recursion) before
  EXPECT_NE(r.err.find("--exclude-nodes"), std::string::npos) << r.err;
  EXPECT_LT(r.err.size(), 1000u);  // one line, the name truncated
}

TEST(Hostile, HugeConstantOfShapeNamesNodeAndShape) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) <int64[2] s = {1, 1099511627776}> {
      big = ConstantOfShape (s)
      y = Add (x, big)
    })");
  const test::CliResult r = test::run_quantize({model, "--calib", calib_dir(tmp, {1, 4}), "-o", tmp.file("o.onnx")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("ConstantOfShape"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[1,1099511627776]"), std::string::npos) << r.err;
}

TEST(Hostile, NpzMemberLargerThanItsNpyHeaderIsRefusedBeforeInflating) {
  test::TempDir tmp;
  const std::string model = save_text(tmp, "m.onnx", R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) { y = Relu (x) })");
  // A 16-byte array followed by 64 MB of zeros that deflate to ~64 KB: inflated in full before.
  std::string npy = dt::npy_f32({1, 4}, {1, 2, 3, 4});
  npy.append(size_t{64} << 20, '\0');
  const std::string dir = tmp.file("calib");
  std::filesystem::create_directories(dir);
  test::write_file(dir + "/0.npz", dt::zip_bytes({{"x.npy", npy, true}}));
  const test::CliResult r = test::run_quantize({model, "--calib", dir, "-o", tmp.file("o.onnx")});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_NE(r.err.find("0.npz"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".npy header describes"), std::string::npos) << r.err;
}

// Graph algorithms must be linear or n log n: a 100k-node Relu chain quantized in seconds, and
// 10k Adds sharing one constant (46 s before). Figures in docs/robustness.md; the ctest TIMEOUT
// catches a quadratic regression or a hang, a stack overflow on depth crashes.
TEST(Hostile, HundredThousandNodeChainQuantizes) {
  test::TempDir tmp;
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] r0) { r0 = Relu (x) })");
  ir::Graph& g = m.graph;
  ir::ValueId prev = g.find("r0");
  for (int i = 1; i < 100000; ++i)
    prev = g.node(g.add_node("Relu", {prev}, {"r" + std::to_string(i)})).outputs[0];
  g.outputs = {prev};
  const std::string model = tmp.file("chain.onnx");
  onnx_io::save_model(m, model);
  const std::string out = tmp.file("o.onnx");
  const test::CliResult r =
      test::run_quantize({model, "--calib", calib_dir(tmp, {1, 4}, 1), "--method", "minmax", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(Hostile, TenThousandAddsSharingOneConstantQuantize) {
  test::TempDir tmp;
  ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] a0) <float[1, 4] c = {1, 2, 3, 4}> { a0 = Add (x, c) })");
  ir::Graph& g = m.graph;
  ir::ValueId prev = g.find("a0");
  const ir::ValueId c = g.find("c");
  for (int i = 1; i < 10000; ++i)
    prev = g.node(g.add_node("Add", {prev, c}, {"a" + std::to_string(i)})).outputs[0];
  g.outputs = {prev};
  const std::string model = tmp.file("adds.onnx");
  onnx_io::save_model(m, model);
  const std::string out = tmp.file("o.onnx");
  const test::CliResult r = test::run_quantize({model, "--calib", calib_dir(tmp, {1, 4}, 1), "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_op(out, "Add"), 10000u);
  expect_finite_scales(out);
}

}  // namespace
}  // namespace ptq
