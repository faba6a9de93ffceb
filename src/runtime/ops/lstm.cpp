// LSTM (forward, reverse, bidirectional; default activations; optional bias, initial state,
// peepholes, clip). Gate order i, o, f, c as ONNX stores them.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "common.h"
#include "eigen_types.h"

namespace ptq::runtime {
namespace {

using CMap = Eigen::Map<const RowMat>;

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

class Lstm : public Kernel {
 public:
  explicit Lstm(const KernelInit& init) {
    const ir::Node& n = init.node;
    hidden_ = n.attr_int("hidden_size", 0);
    PTQ_CHECK(hidden_ > 0, ModelError, "hidden_size must be positive");
    direction_ = n.attr_string("direction", "forward");
    PTQ_CHECK(direction_ == "forward" || direction_ == "reverse" || direction_ == "bidirectional",
              ModelError, "direction '", direction_, "' is not valid");
    clip_ = n.attr_float("clip", 0.f);
    PTQ_CHECK(n.attr_int("input_forget", 0) == 0, UnsupportedError, "LSTM input_forget=1");
    PTQ_CHECK(n.attr_int("layout", 0) == 0, UnsupportedError, "LSTM layout=1");
    const auto acts = n.attr("activations") ? n.attr("activations")->strings : std::vector<std::string>{};
    for (size_t i = 0; i < acts.size(); ++i) {
      const char* want = i % 3 == 0 ? "Sigmoid" : "Tanh";
      PTQ_CHECK(acts[i] == want, UnsupportedError, "LSTM activation '", acts[i],
                "' (only the defaults Sigmoid, Tanh, Tanh are supported)");
    }
  }

  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = float_input(in, 0, "X");
    const Tensor& W = float_input(in, 1, "W");
    const Tensor& R = float_input(in, 2, "R");
    const Tensor* B = optional_input(in, 3);
    const Tensor* L = optional_input(in, 4);
    const Tensor* H0 = optional_input(in, 5);
    const Tensor* C0 = optional_input(in, 6);
    const Tensor* P = optional_input(in, 7);
    PTQ_CHECK(X.rank() == 3, ModelError, "X must be [seq, batch, input]");
    const int64_t T = X.dims()[0], N = X.dims()[1], I = X.dims()[2], H = hidden_;
    const int64_t D = direction_ == "bidirectional" ? 2 : 1;
    PTQ_CHECK(W.dims() == Dims({D, 4 * H, I}) && R.dims() == Dims({D, 4 * H, H}), ModelError,
              "W/R shapes ", dims_str(W.dims()), "/", dims_str(R.dims()), " do not match");
    PTQ_CHECK(!B || B->dims() == Dims({D, 8 * H}), ModelError, "B must be [", D, ", ", 8 * H, "]");
    PTQ_CHECK(!H0 || H0->dims() == Dims({D, N, H}), ModelError, "initial_h must be [", D, ", ", N, ", ", H, "]");
    PTQ_CHECK(!C0 || C0->dims() == Dims({D, N, H}), ModelError, "initial_c must be [", D, ", ", N, ", ", H, "]");
    PTQ_CHECK(!P || P->dims() == Dims({D, 3 * H}), ModelError, "P must be [", D, ", ", 3 * H, "]");
    if (L)
      for (int64_t l : int_values(*L, "sequence_lens"))
        PTQ_CHECK(l == T, UnsupportedError, "sequence_lens shorter than the sequence");
    Tensor Y = Tensor::zeros(DType::kFloat, {T, D, N, H});
    Tensor Yh = Tensor::empty(DType::kFloat, {D, N, H});
    Tensor Yc = Tensor::empty(DType::kFloat, {D, N, H});
    std::vector<float> gates(static_cast<size_t>(T * N * 4 * H));
    std::vector<float> hr(static_cast<size_t>(N * 4 * H));
    for (int64_t d = 0; d < D; ++d) {
      const bool reverse = direction_ == "reverse" || d == 1;
      // Input projections for all steps at once: [T*N, 4H] = X [T*N, I] * W_d^T.
      Eigen::Map<RowMat> g(gates.data(), T * N, 4 * H);
      g.noalias() = CMap(X.data<float>(), T * N, I) * CMap(W.data<float>() + d * 4 * H * I, 4 * H, I).transpose();
      if (B) {
        const float* b = B->data<float>() + d * 8 * H;
        for (int64_t row = 0; row < T * N; ++row)
          for (int64_t k = 0; k < 4 * H; ++k) g(row, k) += b[k] + b[4 * H + k];
      }
      float* h = Yh.mutable_data<float>() + d * N * H;
      float* c = Yc.mutable_data<float>() + d * N * H;
      for (int64_t k = 0; k < N * H; ++k) {
        h[k] = H0 ? H0->data<float>()[d * N * H + k] : 0.f;
        c[k] = C0 ? C0->data<float>()[d * N * H + k] : 0.f;
      }
      const float* p = P ? P->data<float>() + d * 3 * H : nullptr;
      CMap r(R.data<float>() + d * 4 * H * H, 4 * H, H);
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = reverse ? T - 1 - s : s;
        Eigen::Map<RowMat> hrm(hr.data(), N, 4 * H);
        hrm.noalias() = CMap(h, N, H) * r.transpose();
        for (int64_t b = 0; b < N; ++b) {
          const float* gx = gates.data() + (t * N + b) * 4 * H;
          const float* gh = hr.data() + b * 4 * H;
          float* hb = h + b * H;
          float* cb = c + b * H;
          for (int64_t k = 0; k < H; ++k) {
            auto pre = [&](int gate) {
              float v = gx[gate * H + k] + gh[gate * H + k];
              return clip_ > 0 ? std::clamp(v, -clip_, clip_) : v;
            };
            const float c_prev = cb[k];
            const float ig = sigmoid(pre(0) + (p ? p[k] * c_prev : 0.f));
            const float fg = sigmoid(pre(2) + (p ? p[2 * H + k] * c_prev : 0.f));
            const float cc = std::tanh(pre(3));
            const float cn = fg * c_prev + ig * cc;
            const float og = sigmoid(pre(1) + (p ? p[H + k] * cn : 0.f));
            cb[k] = cn;
            hb[k] = og * std::tanh(cn);
          }
        }
        std::copy_n(h, N * H, Y.mutable_data<float>() + (t * D + d) * N * H);
      }
    }
    out[0] = Y;
    if (out.size() > 1) out[1] = Yh;
    if (out.size() > 2) out[2] = Yc;
  }

 private:
  int64_t hidden_;
  std::string direction_;
  float clip_;
};

}  // namespace

void register_lstm(KernelRegistry& r) { r.add("LSTM", make_kernel<Lstm>); }

}  // namespace ptq::runtime
