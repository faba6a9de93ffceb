// Input specs: shape overrides, dtype/rank/shape checks with batch insertion, NaN/Inf detection.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.h"
#include "ptq/core/error.h"
#include "ptq/data/input_spec.h"

namespace ptq::data {
namespace {

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(InputShape, Parse) {
  const InputShape s = parse_input_shape("--input-shape", "data:1x3x224x224");
  EXPECT_EQ(s.name, "data");
  EXPECT_EQ(s.dims, (Dims{1, 3, 224, 224}));
  const InputShape t = parse_input_shape("--input-shape", "input:0:2,5");
  EXPECT_EQ(t.name, "input:0");
  EXPECT_EQ(t.dims, (Dims{2, 5}));
  EXPECT_THROW(parse_input_shape("--input-shape", "data"), UsageError);
  EXPECT_THROW(parse_input_shape("--input-shape", ":1x3"), UsageError);
  EXPECT_THROW(parse_input_shape("--input-shape", "data:1x0x3"), UsageError);
  EXPECT_THROW(parse_input_shape("--input-shape", "data:1xx3"), UsageError);
  EXPECT_NE(message_of([] { parse_input_shape("--input-shape", "data:ax3"); }).find("--input-shape"),
            std::string::npos);
}

TEST(InputSpecs, OverridesFixSymbolicDims) {
  const ir::Model m = test::model_with_inputs("float[N,3,H,W] x, int64[N] ids", "x");
  const auto specs = make_input_specs(m.graph, {parse_input_shape("f", "x:2x3x8x8")});
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "x");
  EXPECT_EQ(shape_str(*specs[0].shape), "[2,3,8,8]");
  EXPECT_EQ(shape_str(*specs[1].shape), "[N]");
  EXPECT_EQ(specs[1].dtype, DType::kInt64);
  // Errors: unknown name, wrong rank, contradicting a static dim.
  EXPECT_NE(message_of([&] { make_input_specs(m.graph, {{"y", {1}}}); }).find("'y'"),
            std::string::npos);
  EXPECT_THROW(make_input_specs(m.graph, {{"x", {1, 3, 8}}}), UsageError);
  EXPECT_THROW(make_input_specs(m.graph, {{"x", {1, 4, 8, 8}}}), UsageError);
}

TEST(ConformTensor, AcceptsSymbolicAndAddsBatch) {
  const ir::Model m = test::model_with_inputs("float[N,3,2] x, float[1,2] y, float z", "x");
  const auto specs = make_input_specs(m.graph);
  const Tensor a = conform_tensor(specs[0], Tensor::zeros(DType::kFloat, {5, 3, 2}));
  EXPECT_EQ(a.dims(), (Dims{5, 3, 2}));
  const Tensor b = conform_tensor(specs[0], Tensor::zeros(DType::kFloat, {3, 2}));
  EXPECT_EQ(b.dims(), (Dims{1, 3, 2}));
  const Tensor c = conform_tensor(specs[1], Tensor::zeros(DType::kFloat, {2}));
  EXPECT_EQ(c.dims(), (Dims{1, 2}));
  // "float z" is a scalar: a 1-element [1] is not silently accepted.
  EXPECT_EQ(conform_tensor(specs[2], Tensor::scalar(1.0f)).dims(), Dims{});
  EXPECT_THROW(conform_tensor(specs[2], Tensor::zeros(DType::kFloat, {1})), IoError);
  // No declared shape at all (rank unknown): any shape goes.
  const InputSpec any{"w", DType::kFloat, std::nullopt};
  EXPECT_EQ(conform_tensor(any, Tensor::zeros(DType::kFloat, {4, 4})).dims(), (Dims{4, 4}));
}

TEST(ConformTensor, ErrorsSayExpectedAndFound) {
  const ir::Model m = test::model_with_inputs("float[N,3,2] x, float[2,2] y", "x");
  const auto specs = make_input_specs(m.graph);
  const auto msg = [&](size_t i, DType dt, Dims d) {
    return message_of([&] { conform_tensor(specs[i], Tensor::zeros(dt, d)); });
  };
  const std::string dtype = msg(0, DType::kDouble, {1, 3, 2});
  EXPECT_NE(dtype.find("input 'x'"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("expected float [N,3,2]"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("found double [1,3,2]"), std::string::npos) << dtype;
  EXPECT_NE(msg(0, DType::kFloat, {1, 3, 2, 1}).find("wrong rank"), std::string::npos);
  EXPECT_NE(msg(0, DType::kFloat, {1, 4, 2}).find("wrong shape at dim 1"), std::string::npos);
  EXPECT_NE(msg(0, DType::kFloat, {0, 3, 2}).find("wrong shape at dim 0"), std::string::npos);
  // No batch insertion when the first dim is a static 2.
  EXPECT_NE(msg(1, DType::kFloat, {2}).find("wrong rank"), std::string::npos);
  EXPECT_THROW(conform_tensor(specs[1], Tensor::zeros(DType::kFloat, {2})), IoError);
}

TEST(NonFinite, DetectsNanAndInfInEveryFloatType) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(has_nonfinite(Tensor::from_vector<float>({3}, {1, -2, 3e38f})));
  EXPECT_TRUE(has_nonfinite(Tensor::from_vector<float>({3}, {1, std::nanf(""), 3})));
  EXPECT_TRUE(has_nonfinite(Tensor::from_vector<float>({2}, {1, -inf})));
  EXPECT_TRUE(has_nonfinite(Tensor::from_vector<double>({1}, {std::nan("")})));
  const uint16_t h_ok[2] = {0x3C00, 0x7BFF}, h_inf[2] = {0x3C00, 0xFC00};
  EXPECT_FALSE(has_nonfinite(Tensor::from_bytes(DType::kFloat16, {2}, h_ok, 4)));
  EXPECT_TRUE(has_nonfinite(Tensor::from_bytes(DType::kFloat16, {2}, h_inf, 4)));
  const uint16_t bf_nan[1] = {0x7FC1};
  EXPECT_TRUE(has_nonfinite(Tensor::from_bytes(DType::kBfloat16, {1}, bf_nan, 2)));
  EXPECT_FALSE(has_nonfinite(Tensor::from_vector<int32_t>({1}, {-1})));
}

}  // namespace
}  // namespace ptq::data
