// Small valid inputs for each fuzz target (the seed corpora), generated in code, never committed.
#pragma once

#include <string>
#include <vector>

namespace ptq::fuzz {

// Seeds for the target named as in targets(): "onnx_loader", "npy", "npz", "tensor_pb",
// "image", "calib_table". `scratch_dir` is a writable directory for encoders that write files.
std::vector<std::string> seeds(const std::string& target, const std::string& scratch_dir);

}  // namespace ptq::fuzz
