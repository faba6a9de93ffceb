// Helpers for runtime tests: run an inline ONNX-text model, random tensors, loop oracles.
#pragma once

#include <map>
#include <random>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/ir/model.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::test {

// Parses `text` and runs it once with `threads` kernel threads; returns the outputs.
std::vector<Tensor> run_text(const std::string& text, const std::map<std::string, Tensor>& inputs,
                             size_t threads = 1,
                             runtime::QdqMode mode = runtime::QdqMode::kFakeQuant);

// Uniform floats in [-1, 1) from a fixed-seed generator.
Tensor random_floats(std::mt19937& rng, Dims dims);

// Largest |a - b| over two float tensors of equal shape (fails the test on a shape mismatch).
float max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace ptq::test
