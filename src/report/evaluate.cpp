// Side-by-side evaluation of two models: output error statistics, classifier agreement/accuracy,
// and intermediate-tensor probes captured through the interpreter's observer.
#include "ptq/report/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "ptq/core/error.h"
#include "ptq/data/ordered_parallel.h"
#include "ptq/report/padding.h"

namespace ptq::report {
namespace {

// Captures the named tensors of one graph during a run, or hands each to `on_seen` as it is
// produced (then nothing is kept).
struct Capture {
  const ir::Graph* graph = nullptr;
  std::set<std::string> wanted;
  std::map<std::string, Tensor> seen;
  std::function<void(const std::string&, const Tensor&)> on_seen;
  bool active = true;  // false: this sample's tensors are not wanted
  runtime::Observer observer() {
    return [this](const ir::Graph& g, ir::ValueId v, const Tensor& t) {
      if (!active || &g != graph) return;
      const std::string& name = g.value(v).name;
      if (!wanted.count(name)) return;
      if (on_seen) on_seen(name, t);
      else seen[name] = t;
    };
  }
  // The values observer() keeps: the others may be fused away (runtime::InterpreterOptions).
  runtime::ValueFilter needed() const {
    return [this](const ir::Graph& g, ir::ValueId v) { return &g == graph && wanted.count(g.value(v).name) > 0; };
  }
};

bool is_classifier(const std::vector<Tensor>& outs, Task task) {
  if (task == Task::kGeneric || outs.empty() || outs[0].dtype() != DType::kFloat) return false;
  if (task == Task::kClassify) return outs[0].rank() >= 1;
  return outs.size() == 1 && classifier_classes(outs[0].dims()) > 0;
}

void classify(const Tensor& a, const Tensor& b, const data::Sample& s, const Labels* labels, Classification& c) {
  const size_t batch = a.rank() >= 2 ? static_cast<size_t>(a.dims()[0]) : 1;
  if (batch == 0) return;
  const size_t n = a.numel() / batch;
  c.classes = n;
  std::optional<long> label;
  if (labels && batch == 1 && !s.sources.empty()) label = labels->find(s.sources.front());
  for (size_t r = 0; r < batch; ++r) {
    const std::vector<size_t> ta = top_k(a.data<float>() + r * n, n, 5);
    const std::vector<size_t> tb = top_k(b.data<float>() + r * n, n, 5);
    ++c.rows;
    if (ta[0] == tb[0]) ++c.agree_top1;
    for (size_t k : tb) c.agree_top5 += k == ta[0] ? 1 : 0;
    if (!label) continue;
    const size_t want = static_cast<size_t>(*label);
    ++c.labeled;
    c.a_top1 += ta[0] == want ? 1 : 0;
    c.b_top1 += tb[0] == want ? 1 : 0;
    for (size_t k : ta) c.a_top5 += k == want ? 1 : 0;
    for (size_t k : tb) c.b_top5 += k == want ? 1 : 0;
  }
}

// A probe's test tensor as float in the reference's units: dequantized, each channel (axis 1)
// divided by its scale.
Tensor unscaled(const Tensor& tb, const Probe& p) {
  Tensor out = Tensor::empty(DType::kFloat, tb.dims());
  float* o = out.mutable_data<float>();
  for (size_t i = 0; i < tb.numel(); ++i)
    o[i] = !p.dequantize ? tb.data<float>()[i]
           : tb.dtype() == DType::kUint8 ? static_cast<float>(tb.data<uint8_t>()[i] - p.zero_point) * p.scale
                                          : static_cast<float>(tb.data<int8_t>()[i] - p.zero_point) * p.scale;
  const size_t c = p.channel_scale.size();
  if (tb.rank() < 2 || static_cast<size_t>(tb.dims()[1]) != c) return out;
  size_t inner = 1;
  for (size_t k = 2; k < tb.rank(); ++k) inner *= static_cast<size_t>(tb.dims()[k]);
  for (size_t i = 0; i < tb.numel(); ++i) o[i] /= p.channel_scale[(i / inner) % c];
  return out;
}

}  // namespace

Task parse_task(const std::string& name) {
  if (name == "auto") return Task::kAuto;
  if (name == "classify") return Task::kClassify;
  if (name == "generic") return Task::kGeneric;
  throw UsageError(str_cat("--task: '", name, "' is not auto, classify or generic"));
}

size_t worker_count(size_t threads, size_t jobs) {
  size_t n = threads ? threads : std::max<unsigned>(1, std::thread::hardware_concurrency());
  return std::max<size_t>(1, std::min(n, jobs));
}

std::string format_channel_scale(const std::vector<float>& s) {
  std::string out;
  char buf[32];
  for (float f : s) {
    std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(f));
    if (!out.empty()) out += ',';
    out += buf;
  }
  return out;
}

std::vector<float> recorded_channel_scale(const ir::Model& m, const std::string& tensor) {
  const std::string key = kChannelScaleKey + tensor;
  for (const auto& [k, v] : m.metadata_props) {
    if (k != key) continue;
    std::vector<float> s;
    const char* p = v.c_str();
    while (*p) {
      char* end = nullptr;
      const float f = std::strtof(p, &end);
      if (end == p || !(f > 0.f) || !std::isfinite(f) || (*end && *end != ',')) return {};
      s.push_back(f);
      p = *end ? end + 1 : end;
    }
    return s;
  }
  return {};
}

Probe make_probe(const ir::Graph& g, const std::string& a_name, const std::string& b_name) {
  Probe p{a_name, b_name, false, 1.f, 0, 0, 0, {}};
  const ir::ValueId v = g.find(b_name);
  if (v == ir::kNone) return p;
  for (const ir::Use& u : g.value(v).uses) {
    const ir::Node& q = g.node(u.node);
    if (q.op_type != "QuantizeLinear" || u.slot != 0 || q.outputs.empty() || q.inputs.size() < 2) continue;
    const Tensor* scale = g.constant(q.inputs[1]);
    const Tensor* zp = q.inputs.size() > 2 ? g.constant(q.inputs[2]) : nullptr;
    if (!scale || scale->numel() != 1 || scale->dtype() != DType::kFloat) continue;
    if (zp && (zp->numel() != 1 || (zp->dtype() != DType::kUint8 && zp->dtype() != DType::kInt8))) continue;
    p.tensor_b = g.value(q.outputs[0]).name;
    p.dequantize = true;
    p.scale = scale->data<float>()[0];
    const bool u8 = !zp || zp->dtype() == DType::kUint8;  // no zero point: uint8
    p.zero_point = !zp ? 0 : u8 ? zp->data<uint8_t>()[0] : zp->data<int8_t>()[0];
    p.qmin = u8 ? 0 : -128;
    p.qmax = u8 ? 255 : 127;
    return p;
  }
  return p;
}

EvalResult evaluate(const ir::Model& a, const ir::Model& b, data::Dataset& data, const EvalOptions& o,
                    ReferenceCache* cache) {
  EvalResult result;
  result.probes.assign(o.probes.size(), std::nullopt);
  result.histograms.assign(o.probes.size(), std::nullopt);
  const size_t limit = o.max_samples ? std::min(o.max_samples, data.size()) : data.size();
  const bool use_cache = cache && cache->filled && cache->samples >= limit && o.probes.empty();
  const bool fill_cache = cache && !use_cache;
  if (fill_cache) {
    cache->outputs.clear();
    cache->filled = false;
  }

  // What one sample contributes: computed by a worker, folded in sample order below.
  struct SampleResult {
    std::vector<Tensor> ya, yb;
    std::vector<std::optional<ErrorStats>> outputs;  // float outputs
    std::vector<std::optional<ErrorStats>> probes;
    std::vector<std::optional<ValueHistogram>> histograms;
  };
  struct Worker {
    std::unique_ptr<runtime::Interpreter> ia, ib;
    Capture ca, cb;
    SampleResult* current = nullptr;  // the sample whose model-a run is under way
    size_t sample_index = 0;
  };
  // Probe indices by model-a tensor name.
  std::map<std::string, std::vector<size_t>> probes_of_a;
  for (size_t k = 0; k < o.probes.size(); ++k) probes_of_a[o.probes[k].tensor_a].push_back(k);
  // Compares one model-a tensor, just produced (still in cache: comparing after both runs read
  // every fp32 probe tensor back from memory, a sixth of a mobilenetv2 report), with the model-b
  // tensors captured before.
  const auto compare = [&](Worker& wk, const std::string& name, const Tensor& ta) {
    SampleResult& r = *wk.current;
    for (size_t k : probes_of_a.at(name)) {
      const Probe& p = o.probes[k];
      auto pb = wk.cb.seen.find(p.tensor_b);
      if (pb == wk.cb.seen.end()) continue;
      const Tensor& tb = pb->second;
      // A QuantizeLinear output is compared as the values its DequantizeLinear gives.
      const bool codes = tb.dtype() == DType::kUint8 || tb.dtype() == DType::kInt8;
      if (ta.dtype() != DType::kFloat || ta.numel() != tb.numel() ||
          (p.dequantize ? !codes : tb.dtype() != DType::kFloat))
        continue;
      r.probes[k].emplace();
      if (!p.channel_scale.empty()) {
        r.probes[k]->add(ta, unscaled(tb, p));
        continue;  // (the clipping histogram is in the test graph's units: not drawn)
      }
      if (p.dequantize) r.probes[k]->add_codes(ta, tb, p.zero_point, p.scale);
      else r.probes[k]->add(ta, tb);
      if (p.dequantize && wk.sample_index < kHistogramSamples) {
        r.histograms[k] = ValueHistogram::for_range(p.clip_lo(), p.clip_hi());
        r.histograms[k]->add(ta);
      }
    }
  };
  const size_t workers = worker_count(o.threads, limit);
  std::vector<Worker> ws(workers);
  const std::function<SampleResult(size_t, const data::Sample&)> work = [&](size_t w, const data::Sample& s) {
    Worker& wk = ws[w];
    if (!wk.ib) {
      wk.ca.graph = &a.graph;
      wk.cb.graph = &b.graph;
      for (const Probe& p : o.probes) {
        wk.ca.wanted.insert(p.tensor_a);
        wk.cb.wanted.insert(p.tensor_b);
      }
      wk.ca.on_seen = [&compare, &wk](const std::string& name, const Tensor& t) { compare(wk, name, t); };
      runtime::InterpreterOptions ao = o.a_runtime, bo = o.b_runtime;
      ao.threads = bo.threads = 1;
      if (!o.probes.empty()) {
        ao.observer = wk.ca.observer();
        bo.observer = wk.cb.observer();
        ao.observed = wk.ca.needed();
        bo.observed = wk.cb.needed();
      }
      if (!use_cache) wk.ia = std::make_unique<runtime::Interpreter>(a, ao);
      wk.ib = std::make_unique<runtime::Interpreter>(b, bo);
    }
    wk.cb.seen.clear();
    wk.ca.active = wk.cb.active = o.probe_samples == 0 || s.index < o.probe_samples;
    SampleResult r;
    r.probes.resize(o.probes.size());
    r.histograms.resize(o.probes.size());
    // Model b first: its probe tensors (mostly 8-bit codes) are kept, and model a's are compared
    // as they are produced.
    r.yb = with_context(str_cat("sample ", s.source_str()), [&] { return wk.ib->run(s.inputs); });
    wk.current = &r;
    wk.sample_index = s.index;
    r.ya = use_cache ? cache->outputs.at(s.index) : wk.ia->run(s.inputs);
    wk.current = nullptr;
    wk.cb.seen.clear();  // captured tensors are not needed past this sample
    PTQ_CHECK(r.ya.size() == r.yb.size(), UsageError, "the models have ", r.ya.size(), " and ", r.yb.size(),
              " outputs");
    r.outputs.resize(r.ya.size());
    const std::string mask = attention_mask_input(s);  // padded positions are not compared
    for (size_t k = 0; k < r.ya.size(); ++k) {
      if (r.ya[k].dtype() != DType::kFloat) continue;
      r.outputs[k].emplace();
      with_context(str_cat("output '", r.ya[k].name, "'"), [&] {
        if (mask.empty()) return r.outputs[k]->add(r.ya[k], r.yb[k]);
        const Tensor& m = s.inputs.at(mask);
        r.outputs[k]->add(masked_positions(r.ya[k], m), masked_positions(r.yb[k], m));
      });
    }
    return r;
  };

  Measure& m = result.measure;
  size_t i = 0;
  const std::function<void(const data::Sample&, SampleResult&)> consume = [&](const data::Sample& s,
                                                                             SampleResult& r) {
    if (fill_cache) cache->outputs[s.index] = r.ya;
    if (m.outputs.empty()) {
      for (const Tensor& t : r.ya) {
        OutputReport rep;
        rep.name = t.name;
        rep.shape = t.dims();
        rep.compared = t.dtype() == DType::kFloat;
        m.outputs.push_back(rep);
      }
      if (is_classifier(r.ya, o.task)) {
        m.classification.emplace();
        m.classification->output = r.ya[0].name;
        m.classification->has_labels = o.labels != nullptr;
      }
    }
    for (size_t k = 0; k < r.ya.size() && k < m.outputs.size(); ++k)
      if (m.outputs[k].compared && r.outputs[k]) m.outputs[k].stats.merge(*r.outputs[k]);
    if (m.classification) classify(r.ya[0], r.yb[0], s, o.labels, *m.classification);
    for (size_t k = 0; k < o.probes.size(); ++k) {
      if (!r.probes[k]) continue;
      if (!result.probes[k]) result.probes[k].emplace();
      result.probes[k]->merge(*r.probes[k]);
      if (r.histograms[k]) {
        if (result.histograms[k]) result.histograms[k]->merge(*r.histograms[k]);
        else result.histograms[k] = std::move(r.histograms[k]);
      }
    }
    ++i;
  };
  data.rewind();
  data::for_each_ordered<SampleResult>(data, workers, limit, work, consume);
  m.samples = i;
  if (fill_cache) {
    cache->samples = i;
    cache->filled = true;
  }
  PTQ_CHECK(m.samples > 0, IoError, "no samples to evaluate");
  return result;
}

}  // namespace ptq::report
