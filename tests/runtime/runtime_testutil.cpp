// Runtime test helpers (see runtime_testutil.h).
#include "runtime_testutil.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ptq/onnx_io/load.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::test {

std::vector<Tensor> run_text(const std::string& text, const std::map<std::string, Tensor>& inputs,
                             size_t threads, runtime::QdqMode mode) {
  const ir::Model m = onnx_io::parse_model_text(text);
  runtime::InterpreterOptions o;
  o.threads = threads;
  o.qdq_mode = mode;
  runtime::Interpreter interp(m, o);
  return interp.run(inputs);
}

Tensor random_floats(std::mt19937& rng, Dims dims) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  Tensor t = Tensor::empty(DType::kFloat, std::move(dims));
  for (size_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = d(rng);
  return t;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.dims(), b.dims());
  if (a.dims() != b.dims()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::abs(a.data<float>()[i] - b.data<float>()[i]));
  return m;
}

}  // namespace ptq::test
