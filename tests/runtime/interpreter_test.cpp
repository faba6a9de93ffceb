// The interpreter: errors for missing kernels and bad inputs, the observer hook, constants.
#include <gtest/gtest.h>

#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/runtime/interpreter.h"
#include "ptq/runtime/kernel_registry.h"
#include "runtime_testutil.h"

namespace ptq {
namespace {

TEST(Interpreter, MissingKernelNamesNodeOpAndOpset) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y) { y = Relu (x)  z = Foo (y) })");
  try {
    runtime::Interpreter interp(m);
    FAIL() << "no error";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("(Foo): no kernel for ai.onnx Foo at opset 13"),
              std::string::npos) << e.what();
  }
}

TEST(Interpreter, BadInputsAreUsageErrorsNamingTheInput) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[N, 3] x) => (float[N, 3] y) { y = Relu (x) })");
  runtime::Interpreter interp(m, {1, {}});
  auto message = [&](const std::map<std::string, Tensor>& in) -> std::string {
    try {
      interp.run(in);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message({}).find("missing input 'x'"), std::string::npos);
  EXPECT_NE(message({{"x", Tensor::zeros(DType::kFloat, {2, 4})}}).find("input 'x': expected shape [N,3]"),
            std::string::npos);
  EXPECT_NE(message({{"x", Tensor::zeros(DType::kInt64, {2, 3})}}).find("expected dtype float"),
            std::string::npos);
  EXPECT_NE(message({{"x", Tensor::zeros(DType::kFloat, {2, 3})}, {"q", Tensor::scalar(1.f)}})
                .find("'q' is not an input"),
            std::string::npos);
  EXPECT_EQ(interp.run({{"x", Tensor::zeros(DType::kFloat, {5, 3})}})[0].dims(), (Dims{5, 3}));
}

TEST(Interpreter, ObserverSeesInputsAndEveryProducedValue) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y) <float[2] w = {1.0, -4.0}> { a = Add (x, w)  y = Relu (a) })");
  std::vector<std::string> seen;
  runtime::InterpreterOptions o;
  o.threads = 2;
  o.observer = [&](const ir::Graph& g, ir::ValueId id, const Tensor& t) {
    seen.push_back(g.value(id).name + "=" + std::to_string(t.data<float>()[1]));
  };
  runtime::Interpreter interp(m, o);
  const auto out = interp.run({{"x", Tensor::from_vector<float>({2}, {1, 2})}});
  EXPECT_EQ(seen, (std::vector<std::string>{"x=2.000000", "a=-2.000000", "y=0.000000"}));
  EXPECT_EQ(out[0].name, "y");
}

TEST(Interpreter, InitializerOutputsAreNotCopied) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y, float[2] w2) <float[2] w = {1.0, 2.0}> {
        y = Relu (x)  w2 = Identity (w) })");
  runtime::Interpreter interp(m, {1, {}});
  const auto out = interp.run({{"x", Tensor::from_vector<float>({2}, {1, 2})}});
  EXPECT_EQ(out[1].raw(), m.graph.constant(m.graph.find("w"))->raw());
}

// Partial runs: nodes whose outputs are known and whose inputs were not recomputed are skipped
// (the observer shows which ran); anything downstream of a recomputed value runs again.
TEST(Interpreter, PartialRunSkipsKnownUpstreamAndRecomputesDownstream) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y, float[2] w) { a = Relu (x)  b = Neg (a)  c = Abs (b)  y = Add (c, a)  w = Neg (x) })");
  std::vector<std::string> ran;
  runtime::InterpreterOptions o;
  o.threads = 1;
  o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) { ran.push_back(g.value(v).name); };
  const runtime::Interpreter interp(m, o);
  const std::map<std::string, Tensor> in = {{"x", Tensor::from_vector<float>({2}, {-1.f, 2.f})}};
  const std::vector<Tensor> full = interp.run(in);
  // Known: a (true value) and b (a wrong value, to show it is used), not c: c and y recompute.
  const Tensor a = Tensor::from_vector<float>({2}, {0.f, 2.f});
  const Tensor b = Tensor::from_vector<float>({2}, {5.f, 7.f});
  const Tensor w = Tensor::from_vector<float>({2}, {9.f, 9.f});
  const runtime::KnownValues known = [&](const std::string& name) -> const Tensor* {
    return name == "a" ? &a : name == "b" ? &b : name == "w" ? &w : nullptr;
  };
  ran.clear();
  const std::vector<Tensor> part = interp.run(in, known);
  ASSERT_EQ(part.size(), 2u);
  EXPECT_EQ(part[0].data<float>()[0], 5.f + 0.f);  // |b| + a from the known values
  EXPECT_EQ(part[0].data<float>()[1], 7.f + 2.f);
  EXPECT_EQ(part[1].data<float>()[0], 9.f);        // w was known: Neg did not run
  EXPECT_EQ(full[1].data<float>()[0], 1.f);
  // With a recomputed a (not known), b is recomputed although known: it depends on a.
  const runtime::KnownValues only_b = [&](const std::string& name) -> const Tensor* {
    return name == "b" ? &b : nullptr;
  };
  const std::vector<Tensor> again = interp.run(in, only_b);
  EXPECT_EQ(again[0].data<float>()[0], full[0].data<float>()[0]);
  EXPECT_EQ(again[0].data<float>()[1], full[0].data<float>()[1]);
}

// run_until: the same partial run, ended once the named value is computed.
TEST(Interpreter, RunUntilStopsAfterTheNamedValue) {
  const ir::Model m = onnx_io::parse_model_text(R"(<ir_version: 8, opset_import: ["" : 13]>
      g (float[2] x) => (float[2] y) { a = Relu (x)  b = Neg (a)  y = Abs (b) })");
  std::vector<std::string> seen;
  runtime::InterpreterOptions o;
  o.threads = 1;
  o.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor& t) {
    seen.push_back(g.value(v).name + "=" + std::to_string(t.data<float>()[0]));
  };
  const runtime::Interpreter interp(m, o);
  const std::map<std::string, Tensor> in = {{"x", Tensor::from_vector<float>({2}, {-1.f, 2.f})}};
  interp.run_until(in, [](const std::string&) -> const Tensor* { return nullptr; }, "b");
  EXPECT_EQ(seen, (std::vector<std::string>{"x=-1.000000", "a=0.000000", "b=-0.000000"}));
  // With a known (a wrong value, to show it is used), only b runs past it.
  const Tensor a = Tensor::from_vector<float>({2}, {3.f, 3.f});
  seen.clear();
  interp.run_until(in, [&](const std::string& n) -> const Tensor* { return n == "a" ? &a : nullptr; }, "b");
  EXPECT_EQ(seen, (std::vector<std::string>{"x=-1.000000", "a=3.000000", "b=-3.000000"}));
  EXPECT_THROW(interp.run_until(in, [](const std::string&) -> const Tensor* { return nullptr; }, "nope"), UsageError);
}

TEST(KernelRegistry, OpsetRangesSelectKernels) {
  const auto& r = runtime::KernelRegistry::builtin();
  EXPECT_NE(r.find("", "Conv", 11), nullptr);
  EXPECT_NE(r.find("ai.onnx", "Relu", 6), nullptr);
  EXPECT_EQ(r.find("", "LayerNormalization", 16), nullptr);
  EXPECT_EQ(r.find("com.microsoft", "Relu", 1), nullptr);
}

}  // namespace
}  // namespace ptq
