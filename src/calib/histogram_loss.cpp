// histogram_loss: the fake-quantization error of a histogram's non-empty bins for one range.
#include "histogram_loss.h"

#include <bit>
#include <cmath>

#include "ptq/core/cpu_features.h"
#include "ptq/quant/quant_params.h"

namespace ptq::calib {

LossBins::LossBins(const Histogram& h, Through f) {
  const auto& c = h.counts();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i] == 0) continue;
    const float x = static_cast<float>(h.center(i));
    centre.push_back(x);
    count.push_back(static_cast<double>(c[i]));
    fx.push_back(through_apply(f, x));
  }
}

namespace {

// The loop, inlined into two callers: with SSE4.1 std::nearbyint becomes one roundss (round to
// nearest, exceptions suppressed: the same value) instead of a libm call per bin.
inline __attribute__((always_inline)) double loss_sum(const LossBins& b, quant::QuantParams qp, quant::IntRange r,
                                                      Through f) {
  double total = 0;
  for (size_t i = 0; i < b.centre.size(); ++i) {
    const double e = through_apply(f, quant::fake_quantize(b.centre[i], qp, r)) - b.fx[i];
    total += b.count[i] * e * e;
  }
  return total;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("sse4.1"))) double loss_sum_sse41(const LossBins& b, quant::QuantParams qp,
                                                        quant::IntRange r, Through f) {
  return loss_sum(b, qp, r, f);
}
#endif

double grid_loss(const LossBins& bins, quant::QuantParams qp, Through f, const CalibParams& p) {
  const quant::IntRange r = quant::full_range(p.activation_type);
#if defined(__x86_64__) || defined(__i386__)
  if (cpu_features().sse41) return loss_sum_sse41(bins, qp, r, f);
#endif
  return loss_sum(bins, qp, r, f);
}

quant::QuantParams grid(double lo, double hi, const CalibParams& p) {
  return quant::compute_scale_zp(static_cast<float>(lo), static_cast<float>(hi), p.activation_type,
                                 p.activation_symmetry);
}

}  // namespace

double histogram_loss(const LossBins& bins, double lo, double hi, Through f, const CalibParams& p) {
  return grid_loss(bins, grid(lo, hi, p), f, p);
}

double LossMemo::operator()(double lo, double hi) {
  const quant::QuantParams qp = grid(lo, hi, p_);
  const uint64_t key = uint64_t{std::bit_cast<uint32_t>(qp.scale)} << 32 | static_cast<uint32_t>(qp.zero_point);
  const auto [it, fresh] = seen_.try_emplace(key, 0.0);
  if (fresh) it->second = grid_loss(bins_, qp, f_, p_);
  return it->second;
}

}  // namespace ptq::calib
