// MatMul (numpy batch broadcasting, 1-D promotion) and Gemm (alpha, beta, transA/B, C broadcast).
#include <Eigen/Core>
#include <algorithm>

#include "common.h"
#include "eigen_types.h"
#include "fast_kernels.h"
#include "shared_packs.h"

namespace ptq::runtime {
namespace {

using CMap = Eigen::Map<const RowMat>;
using MMap = Eigen::Map<RowMat>;

// Rows per parallel chunk: fixed, so the split (and every result bit) ignores the thread count.
constexpr int64_t kRowBlock = 32;
// Fast path: rows per task (a multiple of fast::kMr) and, when there are few row blocks (batch-1
// classifiers, short sequences), columns per task (a multiple of fast::kNr).
constexpr int64_t kFastRowBlock = 48;
constexpr int64_t kFastColBlock = 256;
static_assert(kFastRowBlock % fast::kMr == 0 && kFastColBlock % fast::kNr == 0);

// A constant 2-D float B packed once for fast::gemm_packed, and the tensor pinned so that its
// address identifies it at run time (a fed value with other storage is packed per call).
struct PackedB {
  Tensor pinned;
  SharedPack data;  // shared with other kernels packing the same B the same way
  int64_t k = 0, n = 0;

  void init(const KernelInit& init, size_t input, bool trans) {
    if (!fast::cpu_supported() || init.node.inputs.size() <= input ||
        init.node.inputs[input] == ir::kNone)
      return;
    const Tensor* b = init.graph.constant(init.node.inputs[input]);
    if (!b || b->dtype() != DType::kFloat || b->rank() != 2) return;
    pinned = *b;
    k = trans ? b->dims()[1] : b->dims()[0];
    n = trans ? b->dims()[0] : b->dims()[1];
    data = shared_pack(*b, trans ? -2 : -1, [&] {  // variants apart from Conv's (group >= 1)
      std::vector<float> packed(static_cast<size_t>(fast::packed_b_size(k, n)));
      fast::pack_b(b->data<float>(), trans ? 1 : n, trans ? k : 1, k, n, packed.data());
      return packed;
    });
  }
  const float* match(const Tensor& b) const {
    return data && b.data<float>() == pinned.data<float>() && b.dims() == pinned.dims() ? data->data() : nullptr;
  }
};

// y[r·N + j] (m×n, row stride n) = A·B from packed B; A(i, p) at a[i·ars + p·acs]. Calls
// epilogue(r0, rows, c0, cols) on each finished tile (inside the task).
template <typename Epilogue>
void fast_gemm_rows(const KernelContext& ctx, const float* a, int64_t ars, int64_t acs,
                    const float* pb, float* y, int64_t m, int64_t k, int64_t n,
                    const Epilogue& epilogue) {
  const int64_t rblocks = (m + kFastRowBlock - 1) / kFastRowBlock;
  const int64_t cblock = rblocks >= 4 ? n : std::min(n, kFastColBlock);
  const int64_t cblocks = (n + cblock - 1) / cblock;
  ctx.parallel_for(static_cast<size_t>(rblocks * cblocks), [&](size_t i) {
    const int64_t rb = static_cast<int64_t>(i) / cblocks, cb = static_cast<int64_t>(i) % cblocks;
    const int64_t r0 = rb * kFastRowBlock, rows = std::min(kFastRowBlock, m - r0);
    const int64_t c0 = cb * cblock, cols = std::min(cblock, n - c0);
    thread_local std::vector<float> apack;
    apack.resize(static_cast<size_t>(fast::packed_a_size(rows, k)));
    fast::pack_a(a + r0 * ars, ars, acs, rows, k, apack.data());
    // c0 is a multiple of kNr, so its column panel starts at c0·k in packed B.
    fast::gemm_packed(apack.data(), pb + c0 * k, rows, cols, k, nullptr, y + r0 * n + c0, n);
    epilogue(r0, rows, c0, cols);
  });
}

class MatMul : public Kernel {
 public:
  explicit MatMul(const KernelInit& init) { packed_.init(init, 1, false); }
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
    if (fast::available() && bd.size() == 2 && !b1) {
      if (const float* pb = packed_.match(B)) {
        fast_gemm_rows(ctx, a, K, 1, pb, y, nb * M, K, N, [](int64_t, int64_t, int64_t, int64_t) {});
        return;
      }
    }
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

  PackedB packed_;
};

class Gemm : public Kernel {
 public:
  explicit Gemm(const KernelInit& init)
      : alpha_(init.node.attr_float("alpha", 1.f)), beta_(init.node.attr_float("beta", 1.f)),
        trans_a_(init.node.attr_int("transA", 0) != 0), trans_b_(init.node.attr_int("transB", 0) != 0) {
    packed_.init(init, 1, trans_b_);
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
    std::vector<int64_t> cs;
    if (C) {
      PTQ_CHECK(C->dtype() == DType::kFloat, ModelError, "C must be float");
      broadcast_dims(C->dims(), {M, N});
      PTQ_CHECK(C->rank() <= 2, ModelError, "C must have rank <= 2");
      cs = broadcast_strides(C->dims(), {M, N});
    }
    const float alpha = alpha_, beta = beta_;
    // y = alpha·AB + beta·C on one tile, in the reference's order (scale, then add).
    auto epilogue = [&](int64_t r0, int64_t rows, int64_t c0, int64_t cols) {
      for (int64_t r = r0; r < r0 + rows; ++r) {
        float* yr = y + r * N;
        if (alpha != 1.f)
          for (int64_t j = c0; j < c0 + cols; ++j) yr[j] *= alpha;
        if (C && beta != 0.f) {
          const float* c = C->data<float>();
          for (int64_t j = c0; j < c0 + cols; ++j) yr[j] += beta * c[r * cs[0] + j * cs[1]];
        }
      }
    };
    if (M == 0 || N == 0) return;
    if (fast::available()) {
      if (const float* pb = packed_.match(B)) {
        const float* a = A.data<float>();
        fast_gemm_rows(ctx, a, trans_a_ ? 1 : K, trans_a_ ? M : 1, pb, y, M, K, N, epilogue);
        return;
      }
    }
    // transA is rare; a transposed copy keeps the row-block split simple.
    RowMat at;
    const float* a = A.data<float>();
    if (trans_a_) {
      at = CMap(a, K, M).transpose();
      a = at.data();
    }
    const float* b = B.data<float>();
    const bool tb = trans_b_;
    const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
    ctx.parallel_for(static_cast<size_t>(blocks), [&](size_t i) {
      const int64_t r0 = static_cast<int64_t>(i) * kRowBlock, rows = std::min(kRowBlock, M - r0);
      MMap yt(y + r0 * N, rows, N);
      CMap at_rows(a + r0 * K, rows, K);
      if (tb) yt.noalias() = at_rows * CMap(b, N, K).transpose();
      else yt.noalias() = at_rows * CMap(b, K, N);
      epilogue(r0, rows, 0, N);
    });
  }

 private:
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  PackedB packed_;
};

}  // namespace

void register_matmul(KernelRegistry& r) {
  r.add("MatMul", make_kernel<MatMul>);
  // Gemm before opset 7 needed an explicit broadcast attribute for C; not supported.
  r.add("", "Gemm", 7, INT64_MAX, make_kernel<Gemm>);
}

}  // namespace ptq::runtime
