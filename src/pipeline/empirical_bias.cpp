// Empirical bias correction (NNCF's and AIMET's idea, gated per Conv): one pass over the rows in
// graph order with Interpreter::run_until, each Conv's output corrected before what reads it runs.
#include "empirical_bias.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ptq/core/error.h"
#include "ptq/passes/activation_inputs.h"
#include "ptq/report/evaluate.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::pipeline {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Candidate {
  ir::ValueId out = ir::kNone;   // the Conv's output (built graph)
  ir::ValueId fp32 = ir::kNone;  // the same value in the prepared graph
  size_t pos = 0;                // the Conv's place in the built graph's topological order
  std::vector<float> bias_scale;       // per output channel
  std::vector<float> channel_scale;    // the output is this much larger than fp32's (depthwise scales)
  // Read through a SiLU or HardSwish, whose input ranges calibration fits to the error after the
  // activation (calib/through.h): the clipped low end leaves the int8 outputs systematically
  // smaller than fp32's (YOLOX-nano: slope 0.94-0.99 of int8 on fp32, compounding over the SiLU
  // blocks). Such a Conv, with weights per output channel, gets a gain per channel as well, not
  // gated: undoing the attenuation amplifies the noise too, so the squared error the gate measures
  // often rises while the detections recover (YOLOX-nano 90.5 / 90.1 -> 100 / 94.5 %). On every
  // Conv (ReLU/ReLU6 classifiers), the gain measured worse agreement (docs/quantization.md).
  bool gain = false;
  float lo = -kInf, hi = kInf;         // the range of the Qs reading the output (all readers Qs)
};

// The float range of a QuantizeLinear with constant scalar parameters, or nothing.
bool q_range(const ir::Graph& g, const ir::Node& q, float& lo, float& hi) {
  if (!q.is_default_domain() || q.op_type != "QuantizeLinear" || q.inputs.size() < 2) return false;
  const Tensor* s = g.constant(q.inputs[1]);
  const Tensor* z = q.inputs.size() > 2 && q.inputs[2] != ir::kNone ? g.constant(q.inputs[2]) : nullptr;
  if (!s || s->dtype() != DType::kFloat || s->numel() != 1 || (q.inputs.size() > 2 && q.inputs[2] != ir::kNone && !z))
    return false;
  double zp = 0, qmin = 0, qmax = 255;
  if (z) {
    if (z->numel() != 1) return false;
    switch (z->dtype()) {
      case DType::kUint8: zp = z->data<uint8_t>()[0], qmin = 0, qmax = 255; break;
      case DType::kInt8: zp = z->data<int8_t>()[0], qmin = -128, qmax = 127; break;
      case DType::kUint16: zp = z->data<uint16_t>()[0], qmin = 0, qmax = 65535; break;
      case DType::kInt16: zp = z->data<int16_t>()[0], qmin = -32768, qmax = 32767; break;
      default: return false;
    }
  }
  const double scale = s->data<float>()[0];
  lo = static_cast<float>((qmin - zp) * scale);
  hi = static_cast<float>((qmax - zp) * scale);
  return true;
}

// Quantized Convs whose bias is a DequantizeLinear of int32 codes and whose output the fp32 model
// computes too (same name), in graph order.
std::vector<Candidate> candidates(const ir::Graph& fp32, const report::BuiltModel& built, const std::vector<size_t>& pos,
                                  bool written_out_hardswish) {
  const ir::Graph& g = built.model.graph;
  const std::map<ir::ValueId, passes::ActivationInput> through = passes::activation_inputs(fp32, written_out_hardswish);
  std::vector<Candidate> out;
  for (ir::NodeId id : g.topological_order()) {
    const ir::Node& n = g.node(id);
    if (!n.is_default_domain() || n.op_type != "Conv" || n.inputs.size() < 3 || n.inputs[2] == ir::kNone) continue;
    const ir::Node* dq = g.producer(n.inputs[2]);
    if (!dq || dq->op_type != "DequantizeLinear" || dq->inputs.size() < 2) continue;
    const Tensor* codes = g.constant(dq->inputs[0]);
    const Tensor* scale = g.constant(dq->inputs[1]);
    if (!codes || !scale || codes->dtype() != DType::kInt32 || scale->dtype() != DType::kFloat) continue;
    Candidate c;
    c.out = n.outputs[0];
    c.fp32 = fp32.find(g.value(c.out).name);
    if (c.fp32 == ir::kNone || fp32.constant(c.fp32)) continue;
    const size_t channels = codes->numel();
    if (scale->numel() != channels && scale->numel() != 1) continue;
    for (size_t k = 0; k < channels; ++k) c.bias_scale.push_back(scale->data<float>()[scale->numel() == 1 ? 0 : k]);
    // A gain is folded into the weights' per-channel scales (the codes stay): per-tensor weights
    // would be requantized, so they get a shift only.
    const ir::Node* wdq = g.producer(n.inputs[1]);
    const Tensor* wscale = wdq && wdq->op_type == "DequantizeLinear" && wdq->inputs.size() >= 2 ? g.constant(wdq->inputs[1]) : nullptr;
    c.gain = through.count(c.fp32) && wscale && wscale->numel() == channels && g.constant(wdq->inputs[0]);
    for (const report::QuantNode& q : built.nodes)
      if (q.test_output == g.value(c.out).name) c.channel_scale = q.channel_scale;
    if (!c.channel_scale.empty() && c.channel_scale.size() != channels) continue;
    // Clipped to the Q its readers see (a folded Relu6 is that Q's range): the correction is
    // judged on what the next layer reads, not on pre-activation values nobody reads.
    bool all_q = !g.value(c.out).uses.empty();
    float lo = -kInf, hi = kInf;
    for (const ir::Use& u : g.value(c.out).uses) {
      float l = 0, h = 0;
      if (!q_range(g, g.node(u.node), l, h) || (lo != -kInf && (l != lo || h != hi))) {
        all_q = false;
        break;
      }
      lo = l, hi = h;
    }
    if (all_q) c.lo = lo, c.hi = hi;
    c.pos = pos[static_cast<size_t>(c.out)];
    out.push_back(std::move(c));
  }
  return out;
}

// One model run value by value in graph order on every row (Interpreter::run_until): each row
// keeps what its runs computed after `done` (a place in topological order), and the values whose
// last reader is at or before it are dropped, unless pinned, so memory stays at the front of the
// graph. Values up to `done` are final: later runs read them back (a moved Conv output included).
// Values that do not depend on the rows (the int8 graph's weight DequantizeLinears) are computed
// once and shared. One interpreter per worker, not per row: each holds its own packed weights.
class Stepper {
 public:
  Stepper(const ir::Model& m, runtime::InterpreterOptions ro, size_t rows, size_t workers, std::vector<bool> pinned)
      : g_(m.graph), pos_(g_.id_bound_values(), 0), last_use_(g_.id_bound_values(), 0), pinned_(std::move(pinned)),
        caches_(rows, std::vector<Tensor>(g_.id_bound_values())), shared_(g_.id_bound_values()),
        row_independent_(g_.id_bound_values(), false), busy_(workers, false) {
    const std::vector<ir::NodeId> order = g_.topological_order();
    for (ir::NodeId id : order) {
      const ir::Node& n = g_.node(id);
      bool independent = !n.inputs.empty();
      for (const ir::Attribute& a : n.attributes) independent = independent && !a.g && a.graphs.empty();
      for (ir::ValueId v : n.inputs)
        independent = independent && (v == ir::kNone || g_.constant(v) || row_independent_[static_cast<size_t>(v)]);
      for (ir::ValueId v : n.outputs)
        if (v != ir::kNone) row_independent_[static_cast<size_t>(v)] = independent;
    }
    for (size_t i = 0; i < order.size(); ++i)
      for (ir::ValueId v : g_.node(order[i]).outputs)
        if (v != ir::kNone) pos_[static_cast<size_t>(v)] = i + 1;  // 0: graph inputs and constants
    for (size_t i = 0; i < order.size(); ++i)
      for (ir::ValueId v : g_.node(order[i]).inputs)
        if (v != ir::kNone) last_use_[static_cast<size_t>(v)] = std::max(last_use_[static_cast<size_t>(v)], i + 1);
    pinned_.resize(g_.id_bound_values(), false);
    ro.threads = 1;
    ro.observed = nullptr;  // every value observed: nothing fused away
    ro.observer = [](const ir::Graph&, ir::ValueId, const Tensor&) {};  // replaced per run
    for (size_t w = 0; w < workers; ++w) interpreters_.push_back(std::make_unique<runtime::Interpreter>(m, ro));
  }

  const std::vector<size_t>& pos() const { return pos_; }
  bool per_row(ir::ValueId v) const { return !row_independent_[static_cast<size_t>(v)]; }

  // Row i up to value v, on a free interpreter (nothing when v is final already).
  void run(size_t i, const std::map<std::string, Tensor>& inputs, ir::ValueId v) {
    if (pos_[static_cast<size_t>(v)] <= done_) return;
    struct Slot {  // a free interpreter, given back however the run ends
      Stepper& s;
      size_t w = 0;
      explicit Slot(Stepper& st) : s(st) {
        std::lock_guard<std::mutex> lock(s.mutex_);
        while (s.busy_[w]) ++w;  // as many interpreters as workers: one is free
        s.busy_[w] = true;
      }
      ~Slot() {
        std::lock_guard<std::mutex> lock(s.mutex_);
        s.busy_[w] = false;
      }
    } slot(*this);
    const size_t w = slot.w;
    std::vector<Tensor>& cache = caches_[i];
    runtime::Interpreter& interpreter = *interpreters_[w];
    interpreter.set_observer([this, &cache](const ir::Graph& sg, ir::ValueId k, const Tensor& t) {
      if (&sg != &g_ || pos_[static_cast<size_t>(k)] <= done_) return;
      if (!row_independent_[static_cast<size_t>(k)]) {
        cache[static_cast<size_t>(k)] = t;
        return;
      }
      std::lock_guard<std::mutex> lock(mutex_);  // set once (every row computes the same), then read only
      if (shared_[static_cast<size_t>(k)].dtype() == DType::kUndefined) shared_[static_cast<size_t>(k)] = t;
    });
    const runtime::KnownValues known = [&](const std::string& value) -> const Tensor* {
      const ir::ValueId k = g_.find(value);
      if (k == ir::kNone) return nullptr;
      if (row_independent_[static_cast<size_t>(k)]) {
        std::lock_guard<std::mutex> lock(mutex_);
        const Tensor& t = shared_[static_cast<size_t>(k)];
        if (t.dtype() != DType::kUndefined) return &t;
        return pos_[static_cast<size_t>(k)] > done_ ? nullptr : &dropped_;
      }
      if (pos_[static_cast<size_t>(k)] > done_) return nullptr;
      const Tensor& t = cache[static_cast<size_t>(k)];
      return t.dtype() == DType::kUndefined ? &dropped_ : &t;
    };
    interpreter.run_until(inputs, known, g_.value(v).name);
  }

  Tensor& value(size_t i, ir::ValueId v) {
    return row_independent_[static_cast<size_t>(v)] ? shared_[static_cast<size_t>(v)] : caches_[i][static_cast<size_t>(v)];
  }

  // Everything up to v is final; v itself no longer pinned.
  void finish(ir::ValueId v) {
    done_ = std::max(done_, pos_[static_cast<size_t>(v)]);
    pinned_[static_cast<size_t>(v)] = false;
    for (size_t k = 0; k < shared_.size(); ++k) {
      if (pos_[k] > done_ || last_use_[k] > done_ || pinned_[k]) continue;
      shared_[k] = Tensor();
      for (std::vector<Tensor>& cache : caches_) cache[k] = Tensor();
    }
  }

 private:
  const ir::Graph& g_;
  std::vector<size_t> pos_, last_use_;
  std::vector<bool> pinned_;
  std::vector<std::vector<Tensor>> caches_;  // per row, by value id
  std::vector<Tensor> shared_;               // the row-independent values, by value id
  std::vector<bool> row_independent_;
  std::vector<std::unique_ptr<runtime::Interpreter>> interpreters_;
  std::vector<bool> busy_;
  std::mutex mutex_;
  size_t done_ = 0;
  const Tensor dropped_;  // what a dropped value reads as: only steps that are skipped "read" it
};

// Calls fn(ch, first, inner) for each [first, first + inner) block of channel ch in [N, C, ...].
template <typename Fn>
void by_channel(const Tensor& q, size_t channels, Fn fn) {
  const size_t outer = static_cast<size_t>(q.dims()[0]);
  const size_t inner = q.numel() / (outer * channels);
  for (size_t o = 0; o < outer; ++o)
    for (size_t ch = 0; ch < channels; ++ch) fn(ch, (o * channels + ch) * inner, inner);
}

// Per output channel: the sums of the int8 output q and of fp32's f (times the channel scale),
// and for the gain those of q, f, q f and f^2 over some of the elements (below).
struct ChannelSums {
  std::vector<double> sum_q, sum_f;
  size_t count = 0;  // elements per channel
  // Over the elements whose fp32 value lies inside the readers' range (lo, hi) only: a folded
  // Relu6 clips fp32's value, not the int8 Conv's, and selecting on f keeps q's slope on f.
  std::vector<double> in_n, in_q, in_f, in_qf, in_ff;
};

void add_sums(const Tensor& q, const Tensor& f, const Candidate& c, ChannelSums& s) {
  const size_t channels = c.bias_scale.size();
  for (std::vector<double>* v : {&s.sum_q, &s.sum_f, &s.in_n, &s.in_q, &s.in_f, &s.in_qf, &s.in_ff})
    v->resize(channels, 0.0);
  const float* pq = q.data<float>();
  const float* pf = f.data<float>();
  by_channel(q, channels, [&](size_t ch, size_t first, size_t inner) {
    const float cs = c.channel_scale.empty() ? 1.f : c.channel_scale[ch];
    double sq = 0, sf = 0, n = 0, iq = 0, jf = 0, qf = 0, ff = 0;
    for (size_t i = first; i < first + inner; ++i) {
      const double x = pq[i], y = static_cast<double>(pf[i]) * cs;
      sq += x, sf += y;
      if (c.gain && y > c.lo && y < c.hi) n += 1, iq += x, jf += y, qf += x * y, ff += y * y;
    }
    s.sum_q[ch] += sq, s.sum_f[ch] += sf;
    s.in_n[ch] += n, s.in_q[ch] += iq, s.in_f[ch] += jf, s.in_qf[ch] += qf, s.in_ff[ch] += ff;
  });
  s.count += q.numel() / channels;
}

// A correction per output channel: the int8 output becomes gain * x + shift.
struct Correction {
  std::vector<float> gain, shift;
};

// Per output channel: the squared error of clip(x) and of clip(gain * x + shift) against clip(fp32).
struct ChannelErrors {
  std::vector<double> none, shifted;
};

void add_errors(const Tensor& q, const Tensor& f, const Candidate& c, const Correction& k, ChannelErrors& e) {
  const size_t channels = c.bias_scale.size();
  e.none.resize(channels, 0.0);
  e.shifted.resize(channels, 0.0);
  const float* pq = q.data<float>();
  const float* pf = f.data<float>();
  by_channel(q, channels, [&](size_t ch, size_t first, size_t inner) {
    const float cs = c.channel_scale.empty() ? 1.f : c.channel_scale[ch];
    double e0 = 0, e1 = 0;
    for (size_t i = first; i < first + inner; ++i) {
      const float x = pq[i], r = std::clamp(pf[i] * cs, c.lo, c.hi);
      const double d0 = std::clamp(x, c.lo, c.hi) - r, d1 = std::clamp(k.gain[ch] * x + k.shift[ch], c.lo, c.hi) - r;
      e0 += d0 * d0;
      e1 += d1 * d1;
    }
    e.none[ch] += e0, e.shifted[ch] += e1;
  });
}

// `into` += `from`, channel by channel (the order in which rows are added fixes the sums' last bits).
void add_into(ChannelSums& into, const ChannelSums& from) {
  std::vector<double> ChannelSums::*const sums[] = {&ChannelSums::sum_q, &ChannelSums::sum_f, &ChannelSums::in_n,
                                                     &ChannelSums::in_q,  &ChannelSums::in_f,  &ChannelSums::in_qf,
                                                     &ChannelSums::in_ff};
  for (const auto member : sums) {
    std::vector<double>& to = into.*member;
    to.resize((from.*member).size(), 0.0);
    for (size_t ch = 0; ch < to.size(); ++ch) to[ch] += (from.*member)[ch];
  }
  into.count += from.count;
}

void add_into(ChannelErrors& into, const ChannelErrors& from) {
  into.none.resize(from.none.size(), 0.0), into.shifted.resize(from.shifted.size(), 0.0);
  for (size_t ch = 0; ch < from.none.size(); ++ch) into.none[ch] += from.none[ch], into.shifted[ch] += from.shifted[ch];
}

// Per channel, the gain that undoes the int8 output's attenuation, var(f) / cov(q, f) (the slope
// of q on f is the int8 output's systematic gain; YOLOX-nano's Conv outputs measured 0.94-0.99,
// compounding over the SiLU blocks), within [0.8, 1.25], over the inside elements; then the shift
// that makes their means equal (the line's intercept), rounded to the bias's integer steps (which
// the gain scales). Without c.gain: the shift that makes all elements' means equal.
Correction fit(const ChannelSums& s, const Candidate& c) {
  Correction k{std::vector<float>(c.bias_scale.size(), 1.f), std::vector<float>(c.bias_scale.size(), 0.f)};
  const double n = static_cast<double>(s.count);
  for (size_t ch = 0; s.count && ch < k.shift.size(); ++ch) {
    double mq = s.sum_q[ch] / n, mf = s.sum_f[ch] / n, gain = 1.0;
    if (c.gain && s.in_n[ch] >= 2) {  // the line through the inside elements
      const double m = s.in_n[ch], iq = s.in_q[ch] / m, jf = s.in_f[ch] / m;
      const double cov = s.in_qf[ch] / m - iq * jf, var_f = s.in_ff[ch] / m - jf * jf;
      if (cov > 0 && var_f > 0) gain = std::clamp(var_f / cov, 0.8, 1.25), mq = iq, mf = jf;
    }
    const double step = c.bias_scale[ch] * gain;
    const double code = step > 0 ? std::nearbyint((mf - gain * mq) / step) : 0.0;
    k.gain[ch] = static_cast<float>(gain);
    k.shift[ch] = static_cast<float>(code * step);
  }
  return k;
}

// The correction for one Conv from its int8 and fp32 outputs per row, or nothing. Each half's fit
// is judged on the other half by the squared error of the output as the next layer reads
// it (clipped to its Q's range); kept only when each half's error falls with the other half's
// shift: on 4 rows, the error summed over both halves alone kept shifts that fit one half's noise
// (PP-OCRv4-rec 15.5 -> 14.8 dB output SQNR, YOLOX-nano 39 -> 38 of 42 detections; with each
// half 16.4 dB and 39). On 16 rows, quarters each judged with the other three's means (kept when
// all four fall) measured no better than halves (docs/quantization.md).
Correction judged(const std::vector<const Tensor*>& q, const std::vector<const Tensor*>& f, const Candidate& c,
                  size_t workers) {
  const size_t n = q.size(), half = n / 2;
  // Each row's figures on the workers, added in row order: the same for any thread count.
  std::vector<ChannelSums> row_sums(n);
  report::parallel_indexed(n, workers, [&](size_t i) { add_sums(*q[i], *f[i], c, row_sums[i]); });
  ChannelSums a, b;
  for (size_t i = 0; i < n; ++i) add_into(i < half ? a : b, row_sums[i]);
  if (c.gain) {  // not gated: see Candidate::gain
    add_into(a, b);
    return fit(a, c);
  }
  const Correction fit_a = fit(a, c), fit_b = fit(b, c);
  std::vector<ChannelErrors> row_errors(n);  // rows of A with B's shift, rows of B with A's
  report::parallel_indexed(n, workers, [&](size_t i) {
    add_errors(*q[i], *f[i], c, i < half ? fit_b : fit_a, row_errors[i]);
  });
  ChannelErrors judged_a, judged_b;
  for (size_t i = 0; i < n; ++i) add_into(i < half ? judged_a : judged_b, row_errors[i]);
  double none_a = 0, shifted_a = 0, none_b = 0, shifted_b = 0;
  for (size_t ch = 0; ch < c.bias_scale.size(); ++ch) {
    none_a += judged_a.none[ch], shifted_a += judged_a.shifted[ch];
    none_b += judged_b.none[ch], shifted_b += judged_b.shifted[ch];
  }
  if (!(shifted_a < none_a && shifted_b < none_b)) return {};
  add_into(a, b);
  Correction k = fit(a, c);
  if (std::all_of(k.gain.begin(), k.gain.end(), [](float v) { return v == 1.f; })) k.gain.clear();
  if (k.gain.empty() && std::all_of(k.shift.begin(), k.shift.end(), [](float v) { return v == 0.f; })) k.shift.clear();
  return k;
}

}  // namespace

EmpiricalBias empirical_bias_shift(const ir::Model& prepared, const report::BuiltModel& built,
                                   const std::vector<std::map<std::string, Tensor>>& rows,
                                   const runtime::InterpreterOptions& fp32_runtime, size_t threads,
                                   bool written_out_hardswish) {
  EmpiricalBias result;
  const ir::Graph& g = built.model.graph;
  if (rows.size() < 2) return result;
  for (const ir::Graph* graph : {&g, &prepared.graph})
    for (ir::NodeId id : graph->node_ids())
      for (const ir::Attribute& a : graph->node(id).attributes)
        if (a.g || !a.graphs.empty()) return result;  // subgraph nodes rerun in every partial run
  runtime::InterpreterOptions int8_runtime;
  int8_runtime.qdq_mode = runtime::QdqMode::kFakeQuant;
  const size_t workers = report::worker_count(threads, rows.size());
  Stepper int8(built.model, int8_runtime, rows.size(), workers, {});
  const std::vector<Candidate> convs = candidates(prepared.graph, built, int8.pos(), written_out_hardswish);
  result.measured = convs.size();
  if (convs.empty()) return result;
  // The fp32 model runs alongside, its Conv outputs kept until judged (its graph order may
  // differ from the int8 graph's).
  std::vector<bool> pinned(prepared.graph.id_bound_values(), false);
  for (const Candidate& c : convs) pinned[static_cast<size_t>(c.fp32)] = true;
  Stepper fp32(prepared, fp32_runtime, rows.size(), workers, std::move(pinned));

  for (const Candidate& c : convs) {
    if (!int8.per_row(c.out) || !fp32.per_row(c.fp32)) continue;  // (constant Conv outputs: nothing to correct)
    const std::string& name = g.value(c.out).name;
    report::parallel_indexed(rows.size(), workers, [&](size_t i) {
      with_context(str_cat("empirical bias correction, row ", i), [&] {
        int8.run(i, rows[i], c.out);
        fp32.run(i, rows[i], c.fp32);
      });
    });
    int8.finish(c.out);
    std::vector<const Tensor*> q(rows.size()), f(rows.size());
    bool same = true;
    for (size_t i = 0; i < rows.size(); ++i) {
      q[i] = &int8.value(i, c.out);
      f[i] = &fp32.value(i, c.fp32);
      same = same && q[i]->dtype() == DType::kFloat && f[i]->dtype() == DType::kFloat && q[i]->dims() == f[i]->dims() &&
             q[i]->rank() >= 2 && q[i]->numel() > 0 && static_cast<size_t>(q[i]->dims()[1]) == c.bias_scale.size();
    }
    const Correction k = same ? judged(q, f, c, workers) : Correction{};
    fp32.finish(c.fp32);
    if (k.shift.empty()) continue;
    const size_t channels = k.shift.size();
    for (size_t i = 0; i < rows.size(); ++i) {
      Tensor& t = int8.value(i, c.out);
      Tensor moved = Tensor::empty(DType::kFloat, t.dims());
      const float* src = t.data<float>();
      float* dst = moved.mutable_data<float>();
      by_channel(t, channels, [&](size_t ch, size_t first, size_t inner) {
        const float gain = k.gain.empty() ? 1.f : k.gain[ch];
        for (size_t e = first; e < first + inner; ++e) dst[e] = gain * src[e] + k.shift[ch];
      });
      t = std::move(moved);
    }
    result.shift[name] = std::vector<double>(k.shift.begin(), k.shift.end());
    if (!k.gain.empty()) result.gain[name] = std::vector<double>(k.gain.begin(), k.gain.end());
  }
  return result;
}

}  // namespace ptq::pipeline
