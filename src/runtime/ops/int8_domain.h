// The kernel domain of integer-kernel mode's own 8-bit kernels (no ONNX or ORT op has their
// meaning on 8-bit tensors here), shared by qdq_fusion.cpp and the kernels it selects.
#pragma once

namespace ptq::runtime {

inline constexpr const char* kInt8Domain = "ptq.int8";

}  // namespace ptq::runtime
