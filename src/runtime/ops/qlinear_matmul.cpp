// QLinearMatMul, MatMulInteger (ONNX) and QGemm (com.microsoft): exact integer GEMM, float requant.
#include <Eigen/Core>
#include <algorithm>

#include "qlinear.h"

namespace ptq::runtime {
namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat>;
using MMap = Eigen::Map<RowMat>;

// Centred values (q − z) as doubles: products and sums of them are exact below 2^53, so any
// summation order gives the int32 accumulator ORT computes. `z` has one value or one per
// index `(i / inner) % count` (per-row or per-column zero points).
std::vector<double> centred(const Tensor& t, const std::vector<int32_t>& z, int64_t inner,
                            const char* what) {
  std::vector<double> r(t.numel());
  const size_t count = z.size();
  dispatch_8bit(t.dtype(), what, [&](auto tag) {
    using Q = decltype(tag);
    const Q* p = t.data<Q>();
    for (size_t i = 0; i < r.size(); ++i) {
      const int32_t zi = count == 1 ? z[0] : z[(i / static_cast<size_t>(inner)) % count];
      r[i] = static_cast<double>(static_cast<int32_t>(p[i]) - zi);
    }
  });
  return r;
}

// Rows per parallel chunk: fixed, so the split ignores the thread count.
constexpr int64_t kRowBlock = 32;

// acc = (A − z_a) · (B − z_b) with numpy batch broadcasting and 1-D promotion. z_a is scalar
// or per row of A (M values); z_b scalar or per column of B (N values). Sets the output dims.
std::vector<int32_t> integer_matmul(const KernelContext& ctx, const Tensor& A,
                                    const std::vector<int32_t>& za, const Tensor& B,
                                    const std::vector<int32_t>& zb, Dims& od, int64_t& N) {
  PTQ_CHECK(A.rank() >= 1 && B.rank() >= 1, ModelError, "MatMul inputs must have rank >= 1");
  Dims ad = A.dims(), bd = B.dims();
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back();
  N = bd.back();
  PTQ_CHECK(bd[bd.size() - 2] == K, ModelError, "inner dims differ: A ", dims_str(A.dims()), ", B ",
            dims_str(B.dims()));
  PTQ_CHECK(za.size() == 1 || static_cast<int64_t>(za.size()) == M, ModelError,
            "a_zero_point has ", za.size(), " values for ", M, " rows");
  PTQ_CHECK(zb.size() == 1 || static_cast<int64_t>(zb.size()) == N, ModelError,
            "b_zero_point has ", zb.size(), " values for ", N, " columns");
  const Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  const Dims batch = broadcast_dims(abatch, bbatch);
  od = batch;
  if (!a1) od.push_back(M);
  if (!b1) od.push_back(N);
  const std::vector<double> a = centred(A, za, K, "A"), b = centred(B, zb, 1, "B");
  const int64_t nb = numel_of(batch);
  std::vector<int32_t> acc(static_cast<size_t>(nb * M * N));
  if (acc.empty()) return acc;
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
    const RowMat y = CMap(a.data() + oa * M * K + r0 * K, rows, K) * CMap(b.data() + ob * K * N, K, N);
    int32_t* dst = acc.data() + bi * M * N + r0 * N;
    for (int64_t j = 0; j < rows * N; ++j) dst[j] = static_cast<int32_t>(y.data()[j]);
  });
  return acc;
}

class QLinearMatMul : public Kernel {
 public:
  explicit QLinearMatMul(const KernelInit&) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = required_input(in, 0, "a");
    const QParam aq = scalar_qparam(in, 1, 2, "a");
    const Tensor& B = required_input(in, 3, "b");
    const std::vector<float> bs = scales(required_input(in, 4, "b_scale"), "b_scale");
    const Tensor* bzt = optional_input(in, 5);
    const std::vector<int32_t> bz = bzt ? zero_points(*bzt, "b_zero_point") : std::vector<int32_t>{0};
    const QParam yq = scalar_qparam(in, 6, 7, "y");
    PTQ_CHECK(optional_input(in, 7) != nullptr, ModelError, "missing y_zero_point");
    Dims od;
    int64_t N = 0;
    const std::vector<int32_t> acc = integer_matmul(ctx, A, {aq.zero}, B, bz, od, N);
    PTQ_CHECK(bs.size() == 1 || static_cast<int64_t>(bs.size()) == N, ModelError, "b_scale has ",
              bs.size(), " values for ", N, " columns");
    std::vector<float> mult(bs.size());
    for (size_t i = 0; i < bs.size(); ++i) mult[i] = aq.scale * bs[i] / yq.scale;
    const DType yt = in[7]->dtype();
    out[0] = Tensor::empty(yt, od);
    dispatch_8bit(yt, "y", [&](auto tag) {
      using Q = decltype(tag);
      Q* y = out[0].mutable_data<Q>();
      for (size_t i = 0; i < acc.size(); ++i)
        y[i] = requantize<Q>(static_cast<float>(acc[i]) * mult[mult.size() == 1 ? 0 : i % static_cast<size_t>(N)], yq.zero);
    });
  }
};

class MatMulInteger : public Kernel {
 public:
  explicit MatMulInteger(const KernelInit&) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A = required_input(in, 0, "A");
    const Tensor& B = required_input(in, 1, "B");
    const Tensor* az = optional_input(in, 2);
    const Tensor* bz = optional_input(in, 3);
    Dims od;
    int64_t N = 0;
    const std::vector<int32_t> acc =
        integer_matmul(ctx, A, az ? zero_points(*az, "a_zero_point") : std::vector<int32_t>{0}, B,
                       bz ? zero_points(*bz, "b_zero_point") : std::vector<int32_t>{0}, od, N);
    out[0] = Tensor::from_vector(od, acc);
  }
};

// Transposes a 2-D 8-bit tensor (QGemm's transA/transB) so the GEMM core sees [M,K]·[K,N].
Tensor transpose_2d(const Tensor& t) {
  const int64_t r = t.dims()[0], c = t.dims()[1];
  Tensor o = Tensor::empty(t.dtype(), {c, r});
  dispatch_8bit(t.dtype(), "QGemm input", [&](auto tag) {
    using Q = decltype(tag);
    const Q* s = t.data<Q>();
    Q* d = o.mutable_data<Q>();
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) d[j * r + i] = s[i * c + j];
  });
  return o;
}

class QGemm : public Kernel {
 public:
  explicit QGemm(const KernelInit& init)
      : trans_a_(init.node.attr_int("transA", 0) != 0), trans_b_(init.node.attr_int("transB", 0) != 0),
        alpha_(init.node.attr_float("alpha", 1.f)) {}
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& A0 = required_input(in, 0, "A");
    const QParam aq = scalar_qparam(in, 1, 2, "a");
    const Tensor& B0 = required_input(in, 3, "B");
    const std::vector<float> bs = scales(required_input(in, 4, "b_scale"), "b_scale");
    const Tensor* bzt = optional_input(in, 5);
    const std::vector<int32_t> bz = bzt ? zero_points(*bzt, "b_zero_point") : std::vector<int32_t>{0};
    const Tensor* C = optional_input(in, 6);
    const Tensor* ys = optional_input(in, 7);
    PTQ_CHECK(A0.rank() == 2 && B0.rank() == 2, ModelError, "QGemm inputs must be 2-D");
    const Tensor A = trans_a_ ? transpose_2d(A0) : A0;
    const Tensor B = trans_b_ ? transpose_2d(B0) : B0;
    Dims od;
    int64_t N = 0;
    std::vector<int32_t> acc = integer_matmul(ctx, A, {aq.zero}, B, bz, od, N);
    PTQ_CHECK(bs.size() == 1 || static_cast<int64_t>(bs.size()) == N, ModelError, "b_scale has ",
              bs.size(), " values for ", N, " columns");
    if (C) {
      PTQ_CHECK(C->dtype() == DType::kInt32, ModelError, "C must be int32");
      const std::vector<int64_t> st = broadcast_strides(C->dims(), od);
      PTQ_CHECK(broadcast_dims(C->dims(), od) == od, ModelError, "C ", dims_str(C->dims()),
                " does not broadcast to ", dims_str(od));
      for (size_t i = 0; i < acc.size(); ++i) {
        const int64_t r = static_cast<int64_t>(i) / N, c = static_cast<int64_t>(i) % N;
        acc[i] += C->data<int32_t>()[r * st[0] + c * st[1]];
      }
    }
    auto col_scale = [&](size_t i) { return bs[bs.size() == 1 ? 0 : i % static_cast<size_t>(N)]; };
    if (!ys) {  // float output: the accumulator in real units
      out[0] = Tensor::empty(DType::kFloat, od);
      float* y = out[0].mutable_data<float>();
      for (size_t i = 0; i < acc.size(); ++i)
        y[i] = static_cast<float>(acc[i]) * (alpha_ * aq.scale * col_scale(i));
      return;
    }
    const QParam yq = scalar_qparam(in, 7, 8, "y");
    const DType yt = optional_input(in, 8) ? in[8]->dtype() : DType::kUint8;
    out[0] = Tensor::empty(yt, od);
    dispatch_8bit(yt, "y", [&](auto tag) {
      using Q = decltype(tag);
      Q* y = out[0].mutable_data<Q>();
      for (size_t i = 0; i < acc.size(); ++i)
        y[i] = requantize<Q>(static_cast<float>(acc[i]) * (alpha_ * aq.scale * col_scale(i) / yq.scale), yq.zero);
    });
  }

 private:
  bool trans_a_, trans_b_;
  float alpha_;
};

}  // namespace

void register_qlinear_matmul(KernelRegistry& r) {
  r.add("", "QLinearMatMul", 10, INT64_MAX, make_kernel<QLinearMatMul>);
  r.add("", "MatMulInteger", 10, INT64_MAX, make_kernel<MatMulInteger>);
  r.add("com.microsoft", "QGemm", 1, INT64_MAX, make_kernel<QGemm>);
}

}  // namespace ptq::runtime
