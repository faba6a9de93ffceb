// com.microsoft FusedMatMul (ORT's MatMul + Transpose + scale fusion): alpha * op(A) @ op(B) with
// numpy batch broadcasting, op transposing the last two dims (transA/transB).
#include <Eigen/Core>

#include "common.h"
#include "eigen_types.h"

namespace ptq::runtime {
namespace {

using CMap = Eigen::Map<const RowMat>;

class FusedMatMul : public Kernel {
 public:
  explicit FusedMatMul(const KernelInit& init)
      : alpha_(init.node.attr_float("alpha", 1.f)),
        ta_(init.node.attr_int("transA", 0) != 0),
        tb_(init.node.attr_int("transB", 0) != 0) {
    PTQ_CHECK(init.node.attr_int("transBatchA", 0) == 0 && init.node.attr_int("transBatchB", 0) == 0,
              UnsupportedError, "FusedMatMul transBatchA/transBatchB are not supported");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = float_input(in, 0, "A");
    const Tensor& B = float_input(in, 1, "B");
    PTQ_CHECK(A.rank() >= 2 && B.rank() >= 2, UnsupportedError, "FusedMatMul needs rank >= 2 inputs, got ",
              dims_str(A.dims()), " and ", dims_str(B.dims()));
    const Dims& ad = A.dims();
    const Dims& bd = B.dims();
    const int64_t ar = ad[ad.size() - 2], ac = ad.back(), br = bd[bd.size() - 2], bc = bd.back();
    const int64_t M = ta_ ? ac : ar, K = ta_ ? ar : ac, Kb = tb_ ? bc : br, N = tb_ ? br : bc;
    PTQ_CHECK(K == Kb, ModelError, "inner dimensions differ: ", dims_str(ad), " and ", dims_str(bd),
              " (transA ", ta_, ", transB ", tb_, ")");
    const Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
    Dims od = broadcast_dims(abatch, bbatch);
    const int64_t batches = numel_of(od);
    // Offsets of each broadcast batch in A and B.
    std::vector<int64_t> ao(static_cast<size_t>(batches)), bo(static_cast<size_t>(batches));
    {
      const std::vector<int64_t> as = broadcast_strides(abatch, od), bs = broadcast_strides(bbatch, od);
      std::vector<int64_t> idx(od.size(), 0);
      for (int64_t i = 0; i < batches; ++i) {
        int64_t oa = 0, ob = 0;
        for (size_t d = 0; d < od.size(); ++d) {
          oa += idx[d] * as[d];
          ob += idx[d] * bs[d];
        }
        ao[static_cast<size_t>(i)] = oa * ar * ac;
        bo[static_cast<size_t>(i)] = ob * br * bc;
        for (size_t d = od.size(); d-- > 0;)
          if (++idx[d] < od[d]) break;
          else idx[d] = 0;
      }
    }
    od.push_back(M);
    od.push_back(N);
    out[0] = new_tensor(DType::kFloat, od);
    float* y = out[0].mutable_data<float>();
    const float alpha = alpha_;
    ctx.parallel_for(static_cast<size_t>(batches), [&](size_t i) {
      const CMap a(A.data<float>() + ao[i], ar, ac), b(B.data<float>() + bo[i], br, bc);
      Eigen::Map<RowMat> c(y + static_cast<int64_t>(i) * M * N, M, N);
      if (ta_ && tb_) c.noalias() = alpha * (a.transpose() * b.transpose());
      else if (ta_) c.noalias() = alpha * (a.transpose() * b);
      else if (tb_) c.noalias() = alpha * (a * b.transpose());
      else c.noalias() = alpha * (a * b);
    });
  }

 private:
  float alpha_;
  bool ta_, tb_;
};

}  // namespace

void register_contrib_matmul(KernelRegistry& r) {
  r.add(kMs, "FusedMatMul", 1, INT64_MAX, make_kernel<FusedMatMul>);
}

}  // namespace ptq::runtime
