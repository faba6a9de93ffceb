// Row-major Eigen matrix aliases shared by the kernels (ONNX tensors are row-major).
#pragma once

#include <Eigen/Core>

namespace ptq::runtime {

template <typename T>
using RowMatOf = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMat = RowMatOf<float>;

}  // namespace ptq::runtime
