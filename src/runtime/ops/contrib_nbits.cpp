// com.microsoft MatMulNBits and GatherBlockQuantized: blockwise 4/8-bit weights, dequantized to float.
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <memory>

#include "common.h"
#include "eigen_types.h"

namespace ptq::runtime {
namespace {

using CMap = Eigen::Map<const RowMat>;
using MMap = Eigen::Map<RowMat>;

constexpr int64_t kNBitsRowBlock = 32;  // fixed row chunks: results ignore the thread count

int32_t nibble(const uint8_t* bytes, int64_t i) { return i % 2 ? bytes[i / 2] >> 4 : bytes[i / 2] & 0x0F; }

const Tensor* constant_input(const KernelInit& init, size_t i) {
  return i < init.node.inputs.size() && init.node.inputs[i] != ir::kNone ? init.graph.constant(init.node.inputs[i])
                                                                         : nullptr;
}

bool input_given(const KernelInit& init, size_t i) {
  return i < init.node.inputs.size() && init.node.inputs[i] != ir::kNone;
}

// Inputs: A [..., K] float, B [N, k_blocks, blob] uint8, scales [N·k_blocks] float,
// zero_points? uint8 [N, ceil(k_blocks·bits/8)], g_idx? (unsupported), bias? [N].
// y = A · W + bias with W[k, n] = (code - zero point) · scale of k's block in column n, the zero
// point 2^(bits-1) when absent. ORT (accuracy_level 0..3 on CPU) dequantizes B the same way and
// runs an fp32 GEMM, so results agree up to float summation order; accuracy_level 4 quantizes A
// to int8 in ORT and is computed here in fp32 all the same.
class MatMulNBits : public Kernel {
 public:
  explicit MatMulNBits(const KernelInit& init)
      : k_(init.node.attr_int("K", 0)),
        n_(init.node.attr_int("N", 0)),
        bits_(init.node.attr_int("bits", 4)),
        block_(init.node.attr_int("block_size", 0)) {
    PTQ_CHECK(bits_ == 4 || bits_ == 8, UnsupportedError, "MatMulNBits: bits ", bits_, " is not supported (4 or 8)");
    PTQ_CHECK(k_ > 0 && n_ > 0 && block_ >= 16 && (block_ & (block_ - 1)) == 0, ModelError,
              "MatMulNBits: needs K, N > 0 and block_size a power of two >= 16 (K ", k_, ", N ", n_, ", block_size ",
              block_, ")");
    PTQ_CHECK(!input_given(init, 4), UnsupportedError, "MatMulNBits: g_idx is not supported");
    const Tensor* b = constant_input(init, 1);
    const Tensor* s = constant_input(init, 2);
    const Tensor* z = constant_input(init, 3);
    if (b && s && (z || !input_given(init, 3))) w_ = std::make_shared<std::vector<float>>(dequantize(*b, *s, z));
  }

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& A = float_input(in, 0, "A");
    PTQ_CHECK(A.rank() >= 1 && A.dims().back() == k_, ModelError, "MatMulNBits: A ", dims_str(A.dims()),
              " does not end in K = ", k_);
    std::shared_ptr<const std::vector<float>> w = w_;
    if (!w)
      w = std::make_shared<std::vector<float>>(
          dequantize(required_input(in, 1, "B"), required_input(in, 2, "scales"), optional_input(in, 3)));
    const Tensor* bias = optional_input(in, 5);
    PTQ_CHECK(!bias || (bias->dtype() == DType::kFloat && static_cast<int64_t>(bias->numel()) == n_), ModelError,
              "MatMulNBits: bias must be float with N values");
    Dims od = A.dims();
    od.back() = n_;
    out[0] = new_tensor(DType::kFloat, od);
    const int64_t m = numel_of(A.dims()) / k_;
    const float* a = A.data<float>();
    float* y = out[0].mutable_data<float>();
    const int64_t blocks = (m + kNBitsRowBlock - 1) / kNBitsRowBlock;
    ctx.parallel_for(static_cast<size_t>(blocks), [&](size_t i) {
      const int64_t r0 = static_cast<int64_t>(i) * kNBitsRowBlock, rows = std::min(kNBitsRowBlock, m - r0);
      MMap yb(y + r0 * n_, rows, n_);
      yb.noalias() = CMap(a + r0 * k_, rows, k_) * CMap(w->data(), k_, n_);
      if (bias) yb.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->data<float>(), n_);
    });
  }

 private:
  std::vector<float> dequantize(const Tensor& B, const Tensor& S, const Tensor* Z) const {
    const int64_t kb = (k_ + block_ - 1) / block_, blob = block_ * bits_ / 8, zbytes = (kb * bits_ + 7) / 8;
    PTQ_CHECK(B.dtype() == DType::kUint8 && static_cast<int64_t>(B.numel()) == n_ * kb * blob, ModelError,
              "MatMulNBits: B must be uint8 [N, k_blocks, blob] = [", n_, ", ", kb, ", ", blob, "], got ",
              dtype_name(B.dtype()), " ", dims_str(B.dims()));
    PTQ_CHECK(S.dtype() == DType::kFloat && static_cast<int64_t>(S.numel()) == n_ * kb, ModelError,
              "MatMulNBits: scales must be float with N·k_blocks = ", n_ * kb, " values");
    PTQ_CHECK(!Z || Z->dtype() == DType::kUint8, UnsupportedError, "MatMulNBits: zero_points of type ",
              Z ? dtype_name(Z->dtype()) : "", " are not supported (uint8 only)");
    PTQ_CHECK(!Z || static_cast<int64_t>(Z->numel()) == n_ * zbytes, ModelError, "MatMulNBits: zero_points must have ",
              n_ * zbytes, " bytes");
    const uint8_t* b = B.data<uint8_t>();
    const float* s = S.data<float>();
    const uint8_t* z = Z ? Z->data<uint8_t>() : nullptr;
    std::vector<float> w(static_cast<size_t>(k_ * n_));
    for (int64_t n = 0; n < n_; ++n)
      for (int64_t blk = 0; blk < kb; ++blk) {
        const int32_t zp = !z ? 1 << (bits_ - 1) : bits_ == 8 ? z[n * zbytes + blk] : nibble(z + n * zbytes, blk);
        const float scale = s[n * kb + blk];
        const uint8_t* blob_p = b + (n * kb + blk) * blob;
        for (int64_t j = 0; j < block_ && blk * block_ + j < k_; ++j) {
          const int32_t code = bits_ == 8 ? blob_p[j] : nibble(blob_p, j);
          w[static_cast<size_t>((blk * block_ + j) * n_ + n)] = static_cast<float>(code - zp) * scale;
        }
      }
    return w;
  }

  int64_t k_, n_, bits_, block_;
  std::shared_ptr<const std::vector<float>> w_;  // dequantized [K, N] when B, scales, zero points are constant
};

// Inputs: data (uint8 holding `bits`-bit codes, two per byte for 4, or int4/uint4), indices,
// scales (data's logical dims with the quantize_axis dim divided into blocks), zero_points?.
// Gathers along gather_axis the rows of (code - zero point) · scale; the default zero point is
// 0 for int4 and 2^(bits-1) otherwise. The same float arithmetic as ORT: bit-exact.
class GatherBlockQuantized : public Kernel {
 public:
  explicit GatherBlockQuantized(const KernelInit& init)
      : gather_axis_(init.node.attr_int("gather_axis", 0)),
        quantize_axis_(init.node.attr_int("quantize_axis", 1)),
        block_(init.node.attr_int("block_size", 128)),
        bits_(init.node.attr_int("bits", 4)) {
    PTQ_CHECK(block_ >= 16 && (block_ & (block_ - 1)) == 0, ModelError,
              "GatherBlockQuantized: block_size must be a power of two >= 16, got ", block_);
    const Tensor* d = constant_input(init, 0);
    const Tensor* s = constant_input(init, 2);
    const Tensor* z = constant_input(init, 3);
    if (d && s && (z || !input_given(init, 3))) table_ = std::make_shared<Tensor>(dequantize(*d, *s, z));
  }

  void run(const KernelContext&, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    std::shared_ptr<const Tensor> table = table_;
    if (!table)
      table = std::make_shared<Tensor>(
          dequantize(required_input(in, 0, "data"), required_input(in, 2, "scales"), optional_input(in, 3)));
    const Tensor& X = *table;
    const Tensor& I = required_input(in, 1, "indices");
    const int64_t r = static_cast<int64_t>(X.rank());
    const int64_t axis = normalize_axis(gather_axis_, r, "gather_axis");
    const std::vector<int64_t> idx = int_values(I, "indices");
    const int64_t n = X.dims()[static_cast<size_t>(axis)];
    Dims od(X.dims().begin(), X.dims().begin() + axis);
    od.insert(od.end(), I.dims().begin(), I.dims().end());
    od.insert(od.end(), X.dims().begin() + axis + 1, X.dims().end());
    out[0] = new_tensor(DType::kFloat, od);
    const int64_t outer = numel_of(Dims(X.dims().begin(), X.dims().begin() + axis));
    const int64_t inner = numel_of(Dims(X.dims().begin() + axis + 1, X.dims().end()));
    const float* x = X.data<float>();
    float* y = out[0].mutable_data<float>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k : idx) {
        PTQ_CHECK(k >= -n && k < n, ModelError, "index ", k, " out of range for axis size ", n);
        if (k < 0) k += n;
        std::memcpy(y, x + (o * n + k) * inner, static_cast<size_t>(inner) * sizeof(float));
        y += inner;
      }
  }

 private:
  Tensor dequantize(const Tensor& D, const Tensor& S, const Tensor* Z) const {
    const bool packed_u8 = D.dtype() == DType::kUint8;
    PTQ_CHECK(packed_u8 || D.dtype() == DType::kUint4 || D.dtype() == DType::kInt4, UnsupportedError,
              "GatherBlockQuantized: data of type ", dtype_name(D.dtype()), " is not supported");
    PTQ_CHECK(!packed_u8 || bits_ == 4 || bits_ == 8, UnsupportedError, "GatherBlockQuantized: bits ", bits_);
    const int bits = packed_u8 ? static_cast<int>(bits_) : 4;
    const bool is_signed = D.dtype() == DType::kInt4;
    PTQ_CHECK(D.rank() >= 1, ModelError, "GatherBlockQuantized: data must have rank >= 1");
    Dims dims = D.dims();  // logical dims: a uint8 tensor of 4-bit codes holds two per byte in its last dim
    if (packed_u8 && bits == 4) dims.back() *= 2;
    const int64_t r = static_cast<int64_t>(dims.size());
    const int64_t qa = normalize_axis(quantize_axis_, r, "quantize_axis");
    const int64_t len = dims[static_cast<size_t>(qa)], nb = (len + block_ - 1) / block_;
    const int64_t inner = numel_of(Dims(dims.begin() + qa + 1, dims.end()));
    const int64_t total = numel_of(dims);
    PTQ_CHECK(S.dtype() == DType::kFloat && static_cast<int64_t>(S.numel()) == total / len * nb, ModelError,
              "GatherBlockQuantized: scales must be float with ", total / len * nb, " values");
    PTQ_CHECK(!Z || (Z->dtype() == D.dtype()), ModelError, "GatherBlockQuantized: zero_points must have data's type");
    const uint8_t* d = static_cast<const uint8_t*>(D.raw());
    const uint8_t* z = Z ? static_cast<const uint8_t*>(Z->raw()) : nullptr;
    const float* s = S.data<float>();
    const auto code = [&](const uint8_t* bytes, int64_t i) {
      if (bits == 8) return static_cast<int32_t>(bytes[i]);
      const int32_t c = nibble(bytes, i);
      return is_signed && c >= 8 ? c - 16 : c;
    };
    const int32_t default_zp = is_signed ? 0 : 1 << (bits - 1);
    Tensor out = new_tensor(DType::kFloat, dims);
    float* o = out.mutable_data<float>();
    for (int64_t i = 0; i < total; ++i) {
      const int64_t outer = i / (len * inner), c = i / inner % len, in = i % inner;
      const int64_t si = (outer * nb + c / block_) * inner + in;
      const int32_t zp = z ? code(z, si) : default_zp;
      o[i] = static_cast<float>(code(d, i) - zp) * s[si];
    }
    return out;
  }

  int64_t gather_axis_, quantize_axis_, block_, bits_;
  std::shared_ptr<const Tensor> table_;  // dequantized when data, scales and zero points are constant
};

}  // namespace

void register_contrib_nbits(KernelRegistry& r) {
  r.add(kMs, "MatMulNBits", 1, INT64_MAX, make_kernel<MatMulNBits>);
  r.add(kMs, "GatherBlockQuantized", 1, INT64_MAX, make_kernel<GatherBlockQuantized>);
}

}  // namespace ptq::runtime
