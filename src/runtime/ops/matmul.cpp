// MatMul (numpy batch broadcasting, 1-D promotion) and Gemm (alpha, beta, transA/B, C broadcast).
#include <Eigen/Core>
#include <algorithm>

#include "common.h"

namespace ptq::runtime {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat>;
using MMap = Eigen::Map<RowMat>;

// Rows per parallel chunk: fixed, so the split (and every result bit) ignores the thread count.
constexpr int64_t kRowBlock = 32;

class MatMul : public Kernel {
 public:
  explicit MatMul(const KernelInit&) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = float_input(in, 0, "A");
    const Tensor& B = float_input(in, 1, "B");
    PTQ_CHECK(A.rank() >= 1 && B.rank() >= 1, ModelError, "MatMul inputs must have rank >= 1");
    Dims ad = A.dims(), bd = B.dims();
    const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
    if (a1) ad.insert(ad.begin(), 1);
    if (b1) bd.push_back(1);
    const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
    PTQ_CHECK(bd[bd.size() - 2] == K, ModelError, "MatMul inner dims differ: A ", dims_str(A.dims()),
              ", B ", dims_str(B.dims()));
    const Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
    const Dims batch = broadcast_dims(abatch, bbatch);
    Dims od = batch;
    if (!a1) od.push_back(M);
    if (!b1) od.push_back(N);
    out[0] = Tensor::empty(DType::kFloat, od);
    float* y = out[0].mutable_data<float>();
    const float* a = A.data<float>();
    const float* b = B.data<float>();
    const int64_t nb = numel_of(batch);
    if (nb == 0 || M == 0 || N == 0) return;
    // A shared 2-D B lets the whole batch of A act as one tall matrix.
    if (numel_of(bbatch) == 1 && numel_of(abatch) == nb) {
      gemm_rows(ctx, a, b, y, nb * M, K, N);
      return;
    }
    const std::vector<int64_t> sa = broadcast_strides(abatch, batch);
    const std::vector<int64_t> sb = broadcast_strides(bbatch, batch);
    const std::vector<int64_t> bs = strides_of(batch);
    const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
    ctx.parallel_for(static_cast<size_t>(nb * blocks), [&](size_t i) {
      const int64_t bi = static_cast<int64_t>(i) / blocks, blk = static_cast<int64_t>(i) % blocks;
      int64_t oa = 0, ob = 0, rem = bi;
      for (size_t d = 0; d < batch.size(); ++d) {
        const int64_t idx = rem / bs[d];
        rem %= bs[d];
        oa += idx * sa[d];
        ob += idx * sb[d];
      }
      const int64_t r0 = blk * kRowBlock, rows = std::min(kRowBlock, M - r0);
      MMap(y + bi * M * N + r0 * N, rows, N).noalias() =
          CMap(a + oa * M * K + r0 * K, rows, K) * CMap(b + ob * K * N, K, N);
    });
  }

 private:
  static void gemm_rows(const KernelContext& ctx, const float* a, const float* b, float* y,
                        int64_t M, int64_t K, int64_t N) {
    const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
    ctx.parallel_for(static_cast<size_t>(blocks), [&](size_t i) {
      const int64_t r0 = static_cast<int64_t>(i) * kRowBlock, rows = std::min(kRowBlock, M - r0);
      MMap(y + r0 * N, rows, N).noalias() = CMap(a + r0 * K, rows, K) * CMap(b, K, N);
    });
  }
};

class Gemm : public Kernel {
 public:
  explicit Gemm(const KernelInit& init)
      : alpha_(init.node.attr_float("alpha", 1.f)), beta_(init.node.attr_float("beta", 1.f)),
        trans_a_(init.node.attr_int("transA", 0) != 0), trans_b_(init.node.attr_int("transB", 0) != 0) {
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = float_input(in, 0, "A");
    const Tensor& B = float_input(in, 1, "B");
    const Tensor* C = optional_input(in, 2);
    PTQ_CHECK(A.rank() == 2 && B.rank() == 2, ModelError, "Gemm needs 2-D A and B, got ",
              dims_str(A.dims()), " and ", dims_str(B.dims()));
    const int64_t M = trans_a_ ? A.dims()[1] : A.dims()[0], K = trans_a_ ? A.dims()[0] : A.dims()[1];
    const int64_t KB = trans_b_ ? B.dims()[1] : B.dims()[0], N = trans_b_ ? B.dims()[0] : B.dims()[1];
    PTQ_CHECK(K == KB, ModelError, "Gemm inner dims differ: ", K, " vs ", KB);
    out[0] = Tensor::empty(DType::kFloat, {M, N});
    float* y = out[0].mutable_data<float>();
    // transA is rare; a transposed copy keeps the row-block split simple.
    RowMat at;
    const float* a = A.data<float>();
    if (trans_a_) {
      at = CMap(a, K, M).transpose();
      a = at.data();
    }
    const float* b = B.data<float>();
    std::vector<int64_t> cs;
    if (C) {
      PTQ_CHECK(C->dtype() == DType::kFloat, ModelError, "C must be float");
      broadcast_dims(C->dims(), {M, N});
      PTQ_CHECK(C->rank() <= 2, ModelError, "C must have rank <= 2");
      cs = broadcast_strides(C->dims(), {M, N});
    }
    const float alpha = alpha_, beta = beta_;
    const bool tb = trans_b_;
    const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
    ctx.parallel_for(static_cast<size_t>(blocks), [&](size_t i) {
      const int64_t r0 = static_cast<int64_t>(i) * kRowBlock, rows = std::min(kRowBlock, M - r0);
      MMap yt(y + r0 * N, rows, N);
      CMap at_rows(a + r0 * K, rows, K);
      if (tb) yt.noalias() = at_rows * CMap(b, N, K).transpose();
      else yt.noalias() = at_rows * CMap(b, K, N);
      if (alpha != 1.f) yt *= alpha;
      if (C && beta != 0.f) {
        const float* c = C->data<float>();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < N; ++j) yt(r, j) += beta * c[(r0 + r) * cs[0] + j * cs[1]];
      }
    });
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
};

}  // namespace

void register_matmul(KernelRegistry& r) {
  r.add("MatMul", make_kernel<MatMul>);
  // Gemm before opset 7 needed an explicit broadcast attribute for C; not supported.
  r.add("", "Gemm", 7, INT64_MAX, make_kernel<Gemm>);
}

}  // namespace ptq::runtime
