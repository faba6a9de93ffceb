// QdqMode::kIntegerKernel: which QDQ groups fuse, and that fused groups compute what the
// equivalent QLinear* graph computes (the kernels themselves are checked in qlinear_test.cpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <set>

#include "ptq/onnx_io/load.h"
#include "runtime/ops/int8_gemm.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

using runtime::QdqMode;

const char* kHeader = R"(<ir_version: 8, opset_import: ["" : 13, "com.microsoft" : 1]>
)";
const char* kParams = R"(<float sx = {0.02}, uint8 zx = {120}, float[3] sw = {0.01, 0.02, 0.015},
  int8[3] zw = {0, 0, 0}, float[3] sb = {0.0002, 0.0004, 0.0003}, int32[3] zb = {0, 0, 0},
  float sy = {0.03}, uint8 zy = {100}, float sa = {0.05}, uint8 za = {90}>)";

std::string conv_qdq(const std::string& extra_outputs = "", const std::string& extra_nodes = "") {
  return std::string(kHeader) +
         "g (float[1,2,5,4] x, int8[3,2,3,3] w, int32[3] b) => (float[n,o,p,q] y" + extra_outputs +
         ")\n" + kParams + R"( {
    xq = QuantizeLinear (x, sx, zx)
    xd = DequantizeLinear (xq, sx, zx)
    wd = DequantizeLinear <axis = 0> (w, sw, zw)
    bd = DequantizeLinear <axis = 0> (b, sb, zb)
    c = Conv <pads = [1, 1, 1, 1]> (xd, wd, bd)
    cq = QuantizeLinear (c, sy, zy)
    y = DequantizeLinear (cq, sy, zy)
)" + extra_nodes + "}";
}

std::map<std::string, Tensor> conv_inputs(unsigned seed) {
  std::mt19937 rng(seed);
  Tensor x = test::random_floats(rng, {1, 2, 5, 4});
  for (size_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] *= 2.f;
  std::uniform_int_distribution<int> w8(-127, 127), b32(-3000, 3000);
  Tensor w = Tensor::empty(DType::kInt8, {3, 2, 3, 3});
  for (size_t i = 0; i < w.numel(); ++i) w.mutable_data<int8_t>()[i] = static_cast<int8_t>(w8(rng));
  Tensor b = Tensor::empty(DType::kInt32, {3});
  for (size_t i = 0; i < 3; ++i) b.mutable_data<int32_t>()[i] = b32(rng);
  return {{"x", x}, {"w", w}, {"b", b}};
}

// Names of every value the interpreter produced.
std::set<std::string> produced(const std::string& text, const std::map<std::string, Tensor>& in,
                               QdqMode mode) {
  const ir::Model m = onnx_io::parse_model_text(text);
  std::set<std::string> names;
  runtime::InterpreterOptions o;
  o.threads = 1;
  o.qdq_mode = mode;
  o.observer = [&](const ir::Graph& g, ir::ValueId id, const Tensor&) { names.insert(g.value(id).name); };
  runtime::Interpreter(m, o).run(in);
  return names;
}

TEST(IntegerMode, ConvGroupRunsAsQLinearConv) {
  const std::string qlinear = std::string(kHeader) +
      "g (float[1,2,5,4] x, int8[3,2,3,3] w, int32[3] b) => (float[n,o,p,q] y)\n" + kParams + R"( {
    xq = QuantizeLinear (x, sx, zx)
    cq = QLinearConv <pads = [1, 1, 1, 1]> (xq, sx, zx, w, sw, zw, sy, zy, b)
    y = DequantizeLinear (cq, sy, zy) })";
  for (unsigned seed = 1; seed <= 5; ++seed) {
    const auto in = conv_inputs(seed);
    const Tensor integer = test::run_text(conv_qdq(), in, 2, QdqMode::kIntegerKernel)[0];
    const Tensor reference = test::run_text(qlinear, in, 1)[0];
    EXPECT_EQ(test::max_abs_diff(integer, reference), 0.f);
    // The graph's meaning (fake quant) differs only by rounding at .5 boundaries: 1 LSB at most,
    // unless ORT's u8×s8 kernels saturate int16 pairs on this CPU (int8_gemm.h).
    const Tensor fake = test::run_text(conv_qdq(), in, 1)[0];
    if (runtime::int8::u8s8_arith() == runtime::int8::Arith::kExact) {
      EXPECT_LE(test::max_abs_diff(integer, fake), 0.03f * 1.0001f);
    }
  }
  const auto names = produced(conv_qdq(), conv_inputs(1), QdqMode::kIntegerKernel);
  EXPECT_FALSE(names.count("c"));   // the float Conv output never exists
  EXPECT_FALSE(names.count("wd"));  // nor do DQs read only by fused groups
  EXPECT_TRUE(names.count("cq"));
  EXPECT_TRUE(produced(conv_qdq(), conv_inputs(1), QdqMode::kFakeQuant).count("c"));
}

TEST(IntegerMode, NoFusionWhenTheOpOutputHasAnotherReader) {
  // `c` is also a graph output, so ORT keeps the group in float; so must integer mode.
  const std::string text = conv_qdq(", float[a,b,c,d] c");
  const auto in = conv_inputs(9);
  const auto names = produced(text, in, QdqMode::kIntegerKernel);
  EXPECT_TRUE(names.count("c"));
  const auto a = test::run_text(text, in, 1, QdqMode::kIntegerKernel);
  const auto b = test::run_text(text, in, 1, QdqMode::kFakeQuant);
  EXPECT_EQ(test::max_abs_diff(a[0], b[0]), 0.f);
}

TEST(IntegerMode, AddAndReshapeGroups) {
  // An Add of two DQ'd tensors (QLinearAdd), then a Reshape between equal Q/DQ parameters
  // (DropQDQ: it runs on the integer tensor).
  const std::string text = conv_qdq(", float[e] r", R"(
    s = Add (y, y)
    sq = QuantizeLinear (s, sa, za)
    sd = DequantizeLinear (sq, sa, za)
    shape = Constant <value = int64[1] {-1}> ()
    rr = Reshape (sd, shape)
    rq = QuantizeLinear (rr, sa, za)
    r = DequantizeLinear (rq, sa, za)
)");
  const std::string qlinear = std::string(kHeader) +
      "g (float[1,2,5,4] x, int8[3,2,3,3] w, int32[3] b) => (float[n,o,p,q] y, float[e] r)\n" +
      kParams + R"( {
    xq = QuantizeLinear (x, sx, zx)
    cq = QLinearConv <pads = [1, 1, 1, 1]> (xq, sx, zx, w, sw, zw, sy, zy, b)
    y = DequantizeLinear (cq, sy, zy)
    sq = com.microsoft.QLinearAdd (cq, sy, zy, cq, sy, zy, sa, za)
    shape = Constant <value = int64[1] {-1}> ()
    rq = Reshape (sq, shape)
    r = DequantizeLinear (rq, sa, za) })";
  const auto in = conv_inputs(6);
  const auto integer = test::run_text(text, in, 2, QdqMode::kIntegerKernel);
  const auto reference = test::run_text(qlinear, in, 1);
  ASSERT_EQ(integer.size(), 2u);
  EXPECT_EQ(integer[1].dims(), (Dims{60}));
  EXPECT_EQ(test::max_abs_diff(integer[1], reference[1]), 0.f);
  const auto names = produced(text, in, QdqMode::kIntegerKernel);
  EXPECT_FALSE(names.count("s"));
  EXPECT_FALSE(names.count("rr"));
  EXPECT_TRUE(names.count("rq"));
}

TEST(IntegerMode, ResultsDoNotDependOnThreads) {
  const auto in = conv_inputs(4);
  const Tensor one = test::run_text(conv_qdq(), in, 1, QdqMode::kIntegerKernel)[0];
  for (size_t t : {2, 3, 4})
    EXPECT_EQ(test::max_abs_diff(one, test::run_text(conv_qdq(), in, t, QdqMode::kIntegerKernel)[0]), 0.f);
}

}  // namespace
}  // namespace ptq

namespace ptq {
namespace {

// DQ → MaxPool → Q with equal parameters (ORT's DropQDQ): pooled on the codes by ptq's 8-bit
// MaxPool, never materializing the float tensors, with the fake-quant graph's exact values.
TEST(IntegerMode, MaxPoolRunsOnCodes) {
  // 9x11, and rows of 150 and 151 columns where stride-2 phases are split 32 bytes at a time.
  for (const char* shape : {"2,3,9,11", "1,2,7,150", "1,2,5,151"}) {
    for (const char* type : {"uint8", "int8"}) {
      for (const char* attrs : {"kernel_shape = [3, 3], strides = [2, 2], pads = [1, 1, 1, 1], ceil_mode = 1",
                                "kernel_shape = [3, 3], strides = [2, 2]",
                                "kernel_shape = [2, 3], strides = [1, 3], dilations = [2, 1], pads = [0, 2, 1, 0]"}) {
        const std::string zero = std::string(type) == "int8" ? "-7" : "40";
        const std::string text = std::string(kHeader) +
            "g (float[" + shape + "] x) => (float[n,o,p,q] y)\n<float s = {0.04}, " + type + " z = {" + zero +
            "}> {\n  xq = QuantizeLinear (x, s, z)\n  xd = DequantizeLinear (xq, s, z)\n"
            "  p = MaxPool <" + attrs + "> (xd)\n  pq = QuantizeLinear (p, s, z)\n"
            "  y = DequantizeLinear (pq, s, z) }";
        std::mt19937 rng(11);
        Dims dims;
        for (const char* c = shape; *c;) {
          char* end = nullptr;
          dims.push_back(std::strtoll(c, &end, 10));
          c = *end ? end + 1 : end;
        }
        Tensor x = test::random_floats(rng, dims);
        for (size_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] *= 4.f;  // some saturate
        const Tensor integer = test::run_text(text, {{"x", x}}, 2, QdqMode::kIntegerKernel)[0];
        const Tensor fake = test::run_text(text, {{"x", x}}, 1)[0];
        ASSERT_EQ(integer.dims(), fake.dims()) << shape << " " << type << " " << attrs;
        EXPECT_EQ(test::max_abs_diff(integer, fake), 0.f) << shape << " " << type << " " << attrs;
        const auto names = produced(text, {{"x", x}}, QdqMode::kIntegerKernel);
        EXPECT_FALSE(names.count("p"));
        EXPECT_TRUE(names.count("pq"));
      }
    }
  }
}

}  // namespace
}  // namespace ptq

namespace ptq {

// NaN has no integer code: QuantizeLinear gives the zero point (a float-to-int conversion of NaN is
// undefined behaviour, which UBSan caught once the placement search ran int8 models on NaN data),
// and a fused QDQ group fed NaN runs in either mode.
TEST(IntegerMode, NanQuantizesToTheZeroPoint) {
  const ir::Model m = onnx_io::parse_model_text(std::string(kHeader) + R"(g (float[3] x) => (uint8[3] q)
    <float s = {0.1}, uint8 z = {7}> { q = QuantizeLinear (x, s, z) })");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor q = runtime::Interpreter(m, {.threads = 1}).run({{"x", Tensor::from_vector<float>({3}, {nan, 1.f, -1e30f})}})[0];
  EXPECT_EQ(q.data<uint8_t>()[0], 7);
  EXPECT_EQ(q.data<uint8_t>()[1], 17);
  EXPECT_EQ(q.data<uint8_t>()[2], 0);
  std::map<std::string, Tensor> in = conv_inputs(5);
  in["x"].mutable_data<float>()[3] = nan;
  for (QdqMode mode : {QdqMode::kFakeQuant, QdqMode::kIntegerKernel}) {
    runtime::InterpreterOptions o;
    o.threads = 1;
    o.qdq_mode = mode;
    EXPECT_NO_THROW(runtime::Interpreter(onnx_io::parse_model_text(conv_qdq()), o).run(in));
  }
}

}  // namespace ptq
