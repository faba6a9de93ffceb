// Side-by-side evaluation of two models: output error statistics, classifier agreement/accuracy,
// and intermediate-tensor probes captured through the interpreter's observer.
#include "ptq/report/evaluate.h"

#include <map>
#include <set>

#include "ptq/core/error.h"

namespace ptq::report {
namespace {

// Captures the named tensors of one graph during a run.
struct Capture {
  const ir::Graph* graph = nullptr;
  std::set<std::string> wanted;
  std::map<std::string, Tensor> seen;
  runtime::Observer observer() {
    return [this](const ir::Graph& g, ir::ValueId v, const Tensor& t) {
      if (&g != graph) return;
      const std::string& name = g.value(v).name;
      if (wanted.count(name)) seen[name] = t;
    };
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

}  // namespace

Task parse_task(const std::string& name) {
  if (name == "auto") return Task::kAuto;
  if (name == "classify") return Task::kClassify;
  if (name == "generic") return Task::kGeneric;
  throw UsageError(str_cat("--task: '", name, "' is not auto, classify or generic"));
}

void Samples::rewind() {
  cursor_ = 0;
  streaming_ = false;
}

std::optional<data::Sample> Samples::next() {
  if (!streaming_ && cursor_ < kept_.size()) return kept_[cursor_++];
  if (!streaming_) {
    // Past the kept prefix: continue the dataset from where the prefix ended.
    data_.rewind();
    for (size_t i = 0; i < kept_.size(); ++i) data_.next();
    streaming_ = true;
  }
  std::optional<data::Sample> s = data_.next();
  if (s && cursor_ < keep_ && cursor_ == kept_.size()) kept_.push_back(*s);
  ++cursor_;
  return s;
}

Probe make_probe(const ir::Graph& g, const std::string& a_name, const std::string& b_name) {
  Probe p{a_name, b_name};
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
    p.zero_point = !zp ? 0 : zp->dtype() == DType::kUint8 ? zp->data<uint8_t>()[0] : zp->data<int8_t>()[0];
    return p;
  }
  return p;
}

namespace {

// A captured QuantizeLinear output back to float (what its DequantizeLinear computes).
std::optional<Tensor> dequantized(const Tensor& t, const Probe& p) {
  if (!p.dequantize) return t;
  if (t.dtype() != DType::kUint8 && t.dtype() != DType::kInt8) return std::nullopt;
  std::vector<float> v(t.numel());
  for (size_t i = 0; i < v.size(); ++i) {
    const int32_t q = t.dtype() == DType::kUint8 ? t.data<uint8_t>()[i] : t.data<int8_t>()[i];
    v[i] = static_cast<float>(q - p.zero_point) * p.scale;
  }
  return Tensor::from_vector<float>(t.dims(), v);
}

}  // namespace

EvalResult evaluate(const ir::Model& a, const ir::Model& b, Samples& data, const EvalOptions& o,
                    ReferenceCache* cache) {
  EvalResult result;
  Capture ca, cb;
  ca.graph = &a.graph;
  cb.graph = &b.graph;
  for (const Probe& p : o.probes) {
    ca.wanted.insert(p.tensor_a);
    cb.wanted.insert(p.tensor_b);
  }
  result.probes.assign(o.probes.size(), std::nullopt);
  runtime::InterpreterOptions ao = o.a_runtime, bo = o.b_runtime;
  if (!o.probes.empty()) {
    ao.observer = ca.observer();
    bo.observer = cb.observer();
  }
  const size_t limit = o.max_samples ? std::min(o.max_samples, data.size()) : data.size();
  const bool use_cache = cache && cache->filled && cache->samples >= limit && o.probes.empty();
  std::optional<runtime::Interpreter> ia;
  if (!use_cache) ia.emplace(a, ao);
  runtime::Interpreter ib(b, bo);
  const bool fill_cache = cache && !use_cache;
  if (fill_cache) {
    cache->outputs.clear();
    cache->filled = false;
  }
  Measure& m = result.measure;
  data.rewind();
  size_t i = 0;
  for (; i < limit; ++i) {
    std::optional<data::Sample> s = data.next();
    if (!s) break;
    ca.seen.clear();
    cb.seen.clear();
    std::vector<Tensor> ya = use_cache ? cache->outputs.at(i) : ia->run(s->inputs);
    std::vector<Tensor> yb = with_context(str_cat("sample ", s->source_str()), [&] { return ib.run(s->inputs); });
    PTQ_CHECK(ya.size() == yb.size(), UsageError, "the models have ", ya.size(), " and ", yb.size(), " outputs");
    if (fill_cache) cache->outputs.push_back(ya);
    if (m.outputs.empty()) {
      for (const Tensor& t : ya) {
        OutputReport r;
        r.name = t.name;
        r.shape = t.dims();
        r.compared = t.dtype() == DType::kFloat;
        m.outputs.push_back(r);
      }
      if (is_classifier(ya, o.task)) {
        m.classification.emplace();
        m.classification->output = ya[0].name;
        m.classification->has_labels = o.labels != nullptr;
      }
    }
    for (size_t k = 0; k < ya.size(); ++k) {
      if (!m.outputs[k].compared) continue;
      with_context(str_cat("output '", m.outputs[k].name, "'"), [&] { m.outputs[k].stats.add(ya[k], yb[k]); });
    }
    if (m.classification) classify(ya[0], yb[0], *s, o.labels, *m.classification);
    for (size_t k = 0; k < o.probes.size(); ++k) {
      auto pa = ca.seen.find(o.probes[k].tensor_a);
      auto pb = cb.seen.find(o.probes[k].tensor_b);
      if (pa == ca.seen.end() || pb == cb.seen.end()) continue;
      const std::optional<Tensor> tb = dequantized(pb->second, o.probes[k]);
      if (!tb || pa->second.dtype() != DType::kFloat || tb->dtype() != DType::kFloat ||
          pa->second.numel() != tb->numel())
        continue;
      if (!result.probes[k]) result.probes[k].emplace();
      result.probes[k]->add(pa->second, *tb);
    }
  }
  m.samples = i;
  if (fill_cache) {
    cache->samples = i;
    cache->filled = true;
  }
  PTQ_CHECK(m.samples > 0, IoError, "no samples to evaluate");
  return result;
}

}  // namespace ptq::report
