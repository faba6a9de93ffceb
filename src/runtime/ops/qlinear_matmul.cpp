// QLinearMatMul, MatMulInteger (ONNX) and QGemm (com.microsoft): the int8 GEMM core with ORT's
// arithmetic (int8_gemm.h), constant B packed once, float requantization.
#include <algorithm>
#include <memory>

#include "integer_matmul.h"

namespace ptq::runtime {
namespace {

int32_t code_at(const Tensor& t, size_t i) {
  return t.dtype() == DType::kInt8 ? static_cast<int32_t>(t.data<int8_t>()[i])
                                   : static_cast<int32_t>(t.data<uint8_t>()[i]);
}

}  // namespace

// Packs every [K, N] matrix of B (or [N, K] when `trans`).
std::shared_ptr<const MatB> prepare_b(const Tensor& B, bool trans) {
  dispatch_8bit(B.dtype(), "B", [](auto) {});
  PTQ_CHECK(B.rank() >= 1, ModelError, "MatMul inputs must have rank >= 1");
  auto mb = std::make_shared<MatB>();
  mb->source = &B;
  mb->data = B.raw();
  mb->dims = B.dims();
  mb->dtype = B.dtype();
  Dims bd = B.dims();
  if (bd.size() == 1) bd.push_back(1);
  const int64_t r0 = bd[bd.size() - 2], r1 = bd.back();
  const int64_t K = trans ? r1 : r0, N = trans ? r0 : r1;
  const int64_t count = numel_of(Dims(bd.begin(), bd.end() - 2));
  mb->code_offset = B.dtype() == DType::kUint8 ? 128 : 0;
  for (int64_t s = 0; s < count; ++s) {
    const size_t base = static_cast<size_t>(s * K * N);
    mb->slices.push_back(int8::pack_b(N, K, true, [&](int64_t j, int64_t k) {
      return code_at(B, base + static_cast<size_t>(trans ? j * K + k : k * N + j)) - mb->code_offset;
    }, B.dtype() == DType::kUint8));
  }
  return mb;
}

// The constant B this node reads (input `slot`, or through the DequantizeLinear feeding input 1
// of a fused MatMul/Gemm anchor), prepared once.
std::shared_ptr<const MatB> constant_b(const KernelInit& init, size_t slot, bool trans) {
  const ir::Node& n = init.node;
  const Tensor* w = nullptr;
  if (n.op_type == "MatMul" || n.op_type == "Gemm") {
    const ir::Node* dq = n.inputs.size() > 1 && n.inputs[1] != ir::kNone ? init.graph.producer(n.inputs[1]) : nullptr;
    if (dq && dq->op_type == "DequantizeLinear" && !dq->inputs.empty()) w = init.graph.constant(dq->inputs[0]);
  } else if (slot < n.inputs.size() && n.inputs[slot] != ir::kNone) {
    w = init.graph.constant(n.inputs[slot]);
  }
  if (!w || (w->dtype() != DType::kInt8 && w->dtype() != DType::kUint8) || w->rank() < 1) return nullptr;
  return prepare_b(*w, trans);
}

std::shared_ptr<const MatB> use_b(const std::shared_ptr<const MatB>& cached, const Tensor& B, bool trans) {
  if (cached && cached->source == &B && cached->data == B.raw() && cached->dims == B.dims() &&
      cached->dtype == B.dtype())
    return cached;
  return prepare_b(B, trans);
}

namespace {
// Rows per parallel chunk: fixed, so the split ignores the thread count.
constexpr int64_t kRowBlock = 32;
}  // namespace

// acc = A · B in ORT's integer arithmetic (int8_gemm.h) with numpy batch broadcasting and 1-D
// promotion. z_a is scalar or per row of A (M values); z_b scalar or per column of B (N values).
// `trans_b`: B is stored [.., N, K]. Sets the output dims.
std::vector<int32_t> integer_matmul(const KernelContext& ctx, const Tensor& A,
                                    const std::vector<int32_t>& za, const Tensor& B,
                                    const MatB& mb, const std::vector<int32_t>& zb, bool trans_b,
                                    Dims& od, int64_t& N) {
  PTQ_CHECK(A.rank() >= 1 && B.rank() >= 1, ModelError, "MatMul inputs must have rank >= 1");
  dispatch_8bit(A.dtype(), "A", [](auto) {});
  Dims ad = A.dims(), bd = B.dims();
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  if (trans_b) std::swap(bd[bd.size() - 2], bd[bd.size() - 1]);
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
  const int64_t nb = numel_of(batch);
  std::vector<int32_t> acc(static_cast<size_t>(nb * M * N));
  if (acc.empty()) return acc;
  // A's rows copied with K padded to a multiple of 4 (zeros), as the core reads K quads.
  const int64_t k4 = (K + 3) / 4 * 4, arows = numel_of(abatch) * M;
  std::vector<uint8_t> abuf(static_cast<size_t>(arows * k4), 0);
  const uint8_t* ap = static_cast<const uint8_t*>(A.raw());
  for (int64_t r = 0; r < arows; ++r)
    std::copy(ap + r * K, ap + (r + 1) * K, abuf.data() + r * k4);
  const bool a_signed = A.dtype() == DType::kInt8;
  const int8::Arith arith = int8::arith_for(a_signed, mb.dtype == DType::kInt8);
  std::vector<int32_t> zbp = zb;  // the packed codes' zero points
  for (int32_t& z : zbp) z -= mb.code_offset;
  const std::vector<int64_t> sa = broadcast_strides(abatch, batch);
  const std::vector<int64_t> sb = broadcast_strides(bbatch, batch);
  const std::vector<int64_t> bs = strides_of(batch);
  const int64_t blocks = (M + kRowBlock - 1) / kRowBlock;
  // Few rows (batch 1 classifiers): also split the columns, in blocks of 128 (shape-only split).
  const int64_t col_block = nb * blocks >= 8 ? N : 128;
  const int64_t col_splits = (N + col_block - 1) / col_block;
  ctx.parallel_for(static_cast<size_t>(nb * blocks * col_splits), [&](size_t i_) {
    const int64_t i = static_cast<int64_t>(i_) / col_splits, cs = static_cast<int64_t>(i_) % col_splits;
    const int64_t j0 = cs * col_block, j1 = std::min(N, j0 + col_block);
    const int64_t bi = i / blocks, blk = i % blocks;
    int64_t oa = 0, ob = 0, rem = bi;
    for (size_t d = 0; d < batch.size(); ++d) {
      const int64_t idx = rem / bs[d];
      rem %= bs[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    const int64_t r0 = blk * kRowBlock, rows = std::min(kRowBlock, M - r0);
    const int8::PackedB& pb = mb.slices[static_cast<size_t>(ob)];
    int32_t* dst = acc.data() + bi * M * N + r0 * N;
    const uint8_t* arow = abuf.data() + (oa * M + r0) * k4;
    if (za.size() == 1) {
      int8::gemm({arow, rows, k4, 4, a_signed, za[0]}, pb, zbp, arith, dst, N, 1, nullptr, j0, j1);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        int8::gemm({arow + r * k4, 1, k4, 4, a_signed, za[static_cast<size_t>(r0 + r)]}, pb, zbp,
                   arith, dst + r * N, N, 1, nullptr, j0, j1);
    }
  });
  return acc;
}

namespace {

class QLinearMatMul : public Kernel {
 public:
  explicit QLinearMatMul(const KernelInit& init) : b_(constant_b(init, 3, false)) {}
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
    const std::vector<int32_t> acc =
        integer_matmul(ctx, A, {aq.zero}, B, *use_b(b_, B, false), bz, false, od, N);
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

 private:
  std::shared_ptr<const MatB> b_;
};

class MatMulInteger : public Kernel {
 public:
  explicit MatMulInteger(const KernelInit& init) : b_(constant_b(init, 1, false)) {}
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
                       *use_b(b_, B, false),
                       bz ? zero_points(*bz, "b_zero_point") : std::vector<int32_t>{0}, false, od, N);
    out[0] = Tensor::from_vector(od, acc);
  }

 private:
  std::shared_ptr<const MatB> b_;
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
        alpha_(init.node.attr_float("alpha", 1.f)), b_(constant_b(init, 3, trans_b_)) {}
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
    Dims od;
    int64_t N = 0;
    std::vector<int32_t> acc =
        integer_matmul(ctx, A, {aq.zero}, B0, *use_b(b_, B0, trans_b_), bz, trans_b_, od, N);
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
  std::shared_ptr<const MatB> b_;
};

}  // namespace

void register_qlinear_matmul(KernelRegistry& r) {
  r.add("", "QLinearMatMul", 10, INT64_MAX, make_kernel<QLinearMatMul>);
  r.add("", "MatMulInteger", 10, INT64_MAX, make_kernel<MatMulInteger>);
  r.add(kMs, "QGemm", 1, INT64_MAX, make_kernel<QGemm>);
}

}  // namespace ptq::runtime
