// Blockwise round-to-nearest weight quantization (4 or 8 bits) in the packed layout of ONNX
// Runtime's com.microsoft MatMulNBits and GatherBlockQuantized.
#pragma once

#include <cstdint>
#include <vector>

namespace ptq::quant {

// `rows` independent vectors of `cols` values, each cut into blocks of `block_size` along cols
// (the last block zero-padded). Codes are unsigned: 0..15 (bits 4) or 0..255 (bits 8).
//   data        [rows, blocks, block_size·bits/8]: two 4-bit codes per byte, the even index in
//               the low nibble (MatMulNBits' B; GatherBlockQuantized's uint8 data when
//               cols % block_size == 0)
//   scales      [rows, blocks]
//   zero_points [rows, ceil(blocks·bits/8)], packed the same way; empty when symmetric, where
//               the zero point is implicitly 2^(bits-1) (8 or 128)
// Symmetric (as ORT's quantizer): the block's value of largest magnitude a maps to code 0 with
// scale a / -2^(bits-1), so the whole signed range [-2^(bits-1), 2^(bits-1)-1] is used.
// Asymmetric: [min(lo, 0), max(hi, 0)] onto 0..2^bits-1 with a rounded zero point.
// `clip_search`: per block, the range shrink factor in {1, 0.95, ..., 0.75} with the least
// squared error (a data-free refinement of RTN); false is plain RTN.
struct BlockQuantized {
  int bits = 4;
  int64_t block_size = 32;
  int64_t rows = 0, cols = 0;
  bool symmetric = false;
  std::vector<uint8_t> data;
  std::vector<float> scales;
  std::vector<uint8_t> zero_points;
  int64_t blocks() const { return (cols + block_size - 1) / block_size; }
  int64_t blob_bytes() const { return block_size * bits / 8; }
  int64_t zero_point_bytes() const { return (blocks() * bits + 7) / 8; }
};

// Element (r, c) is at w[r·row_stride + c·col_stride]: a MatMul weight [K, N] quantized along K
// per column n is rows = N, cols = K, row_stride = 1, col_stride = N; an embedding table [V, D]
// along D is rows = V, cols = D, row_stride = D, col_stride = 1. bits 4 or 8, block_size a power
// of two >= 16 (InternalError otherwise: the CLI validates).
BlockQuantized quantize_blockwise(const float* w, int64_t rows, int64_t cols, int64_t row_stride,
                                  int64_t col_stride, int bits, int64_t block_size, bool symmetric,
                                  bool clip_search = false);

// GPTQ (Frantar et al. 2022) for a MatMul weight: element (r, c) at w[r·row_stride + c·col_stride]
// with rows = N output columns and cols = K, `gram` the K×K sum of x·xᵀ over the calibration
// inputs of the MatMul (row-major). Columns are quantized in order, each one's rounding error
// spread over the columns not yet quantized through the Cholesky factor of the damped inverse
// Hessian (1 % of its mean diagonal); block parameters are chosen when a block starts, from the
// updated values, as in quantize_blockwise. Same layout and codes as quantize_blockwise; falls
// back to it when the damped Hessian is not positive definite.
BlockQuantized quantize_blockwise_gptq(const float* w, int64_t rows, int64_t cols, int64_t row_stride,
                                       int64_t col_stride, const std::vector<double>& gram, int bits,
                                       int64_t block_size, bool symmetric, bool clip_search);

// Code of element (r, c) and its zero point.
int32_t block_code(const BlockQuantized& q, int64_t r, int64_t c);
int32_t block_zero_point(const BlockQuantized& q, int64_t r, int64_t block);
// (code - zero point) · scale as rows × cols, row-major.
std::vector<float> dequantize_blockwise(const BlockQuantized& q);

}  // namespace ptq::quant
