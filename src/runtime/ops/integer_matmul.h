// Internal: the u8/s8 matrix product of the integer MatMul kernels (ORT's arithmetic, constant B packed once).
#pragma once

#include <memory>
#include <vector>

#include "int8_gemm.h"
#include "qlinear.h"

namespace ptq::runtime {

// B (or Bᵀ for QGemm's transB) prepared for the GEMM core: its N columns as packed rows of K codes.
struct MatB {
  const Tensor* source = nullptr;
  const void* data = nullptr;
  Dims dims;
  DType dtype = DType::kUndefined;
  std::vector<int8::PackedB> slices;  // one per batch matrix of B
  // uint8 B is packed as its codes minus 128 (signed, so the AVX2 kernels take it) and its zero
  // points lowered by the same: Σ (a − z_a)(b − z_b) is unchanged.
  int32_t code_offset = 0;
};

// Packs every [K, N] matrix of B (or [N, K] when `trans`).
std::shared_ptr<const MatB> prepare_b(const Tensor& B, bool trans);

// The constant B this node reads (input `slot`, or through the DequantizeLinear feeding input 1
// of a fused MatMul/Gemm anchor), prepared once; nullptr when B is not a constant.
std::shared_ptr<const MatB> constant_b(const KernelInit& init, size_t slot, bool trans);

// `cached` when it was prepared from this very B, else B prepared now.
std::shared_ptr<const MatB> use_b(const std::shared_ptr<const MatB>& cached, const Tensor& B, bool trans);

// acc = A · B in ORT's integer arithmetic (int8_gemm.h) with numpy batch broadcasting and 1-D
// promotion. z_a is scalar or per row of A (M values); z_b scalar or per column of B (N values).
// `trans_b`: B is stored [.., N, K]. Sets the output dims and N.
std::vector<int32_t> integer_matmul(const KernelContext& ctx, const Tensor& A, const std::vector<int32_t>& za,
                                    const Tensor& B, const MatB& mb, const std::vector<int32_t>& zb, bool trans_b,
                                    Dims& od, int64_t& N);

}  // namespace ptq::runtime
