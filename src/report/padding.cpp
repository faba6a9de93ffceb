// The padded-batch check: each sample against itself padded, on both models.
#include "ptq/report/padding.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "ptq/report/metrics.h"

namespace ptq::report {
namespace {

bool is_mask_dtype(DType t) {
  return t == DType::kInt64 || t == DType::kInt32 || t == DType::kBool || t == DType::kFloat;
}

double value_at(const Tensor& t, size_t i) {
  switch (t.dtype()) {
    case DType::kInt64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::kInt32: return static_cast<double>(t.data<int32_t>()[i]);
    case DType::kBool: return t.data<bool>()[i] ? 1.0 : 0.0;
    default: return static_cast<double>(t.data<float>()[i]);
  }
}

// `t` [batch, length] widened to [batch, to] with zero bytes after each row.
Tensor pad_rows(const Tensor& t, int64_t to) {
  const int64_t rows = t.dims()[0], len = t.dims()[1];
  Tensor out = Tensor::zeros(t.dtype(), {rows, to});
  const size_t es = t.nbytes() / std::max<size_t>(t.numel(), 1);
  const auto* src = static_cast<const unsigned char*>(t.raw());
  auto* dst = out.mutable_data<unsigned char>();
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + static_cast<size_t>(r * to) * es, src + static_cast<size_t>(r * len) * es,
                static_cast<size_t>(len) * es);
  return out;
}

// The padded output `p` cut back to the unpadded output's dims `want` along the one axis where
// they differ (the sequence axis); an empty tensor when the shapes do not line up that way.
Tensor unpad(const Tensor& p, const Dims& want) {
  if (p.dtype() != DType::kFloat) return {};
  if (p.dims() == want) return p;
  const Dims& d = p.dims();
  if (d.size() != want.size()) return {};
  size_t axis = d.size();
  for (size_t k = 0; k < d.size(); ++k)
    if (d[k] != want[k]) {
      if (axis != d.size() || d[k] < want[k]) return {};
      axis = k;
    }
  int64_t outer = 1, inner = 1;
  for (size_t k = 0; k < axis; ++k) outer *= d[k];
  for (size_t k = axis + 1; k < d.size(); ++k) inner *= d[k];
  Tensor out = Tensor::empty(DType::kFloat, want);
  const float* src = p.data<float>();
  float* dst = out.mutable_data<float>();
  const int64_t keep = want[axis] * inner, stride = d[axis] * inner;
  for (int64_t o = 0; o < outer; ++o)
    std::copy(src + o * stride, src + o * stride + keep, dst + o * keep);
  return out;
}

double cosine(const Tensor& x, const Tensor& y) {
  ErrorStats s;
  s.add(x, y);
  return s.cosine();
}

}  // namespace

Tensor masked_positions(const Tensor& y, const Tensor& mask) {
  const Dims& d = y.dims();
  if (y.dtype() != DType::kFloat || d.size() < 2 || mask.dims().size() != 2 || d[0] != mask.dims()[0] ||
      d[1] != mask.dims()[1])
    return y;
  const size_t rows = mask.numel();
  const size_t inner = rows ? y.numel() / rows : 0;
  size_t kept = 0;
  for (size_t i = 0; i < rows; ++i) kept += value_at(mask, i) != 0.0;
  if (kept == rows) return y;
  Dims out_dims{static_cast<int64_t>(kept)};
  out_dims.insert(out_dims.end(), d.begin() + 2, d.end());
  Tensor out = Tensor::empty(DType::kFloat, out_dims);
  const float* src = y.data<float>();
  float* dst = out.mutable_data<float>();
  for (size_t i = 0; i < rows; ++i)
    if (value_at(mask, i) != 0.0) dst = std::copy(src + i * inner, src + (i + 1) * inner, dst);
  return out;
}

std::string attention_mask_input(const data::Sample& sample) {
  for (const auto& [name, t] : sample.inputs) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("mask") == std::string::npos || !is_mask_dtype(t.dtype()) || t.dims().size() != 2) continue;
    bool binary = t.numel() > 0;
    for (size_t i = 0; i < t.numel() && binary; ++i) binary = value_at(t, i) == 0.0 || value_at(t, i) == 1.0;
    if (binary) return name;
  }
  return "";
}

std::optional<PaddingCheck> check_padding(const ir::Model& a, const ir::Model& b, data::Dataset& data,
                                          size_t max_samples, const runtime::InterpreterOptions& a_runtime,
                                          const runtime::InterpreterOptions& b_runtime) {
  data.rewind();
  std::optional<data::Sample> s = data.next();
  if (!s) return std::nullopt;
  PaddingCheck check;
  check.mask_input = attention_mask_input(*s);
  if (check.mask_input.empty()) return std::nullopt;
  runtime::InterpreterOptions ao = a_runtime, bo = b_runtime;
  ao.observer = {};
  bo.observer = {};
  const runtime::Interpreter ia(a, ao), ib(b, bo);
  std::vector<size_t> index;  // model output position of each check.outputs entry
  const size_t limit = max_samples ? std::min(max_samples, kPaddingSamples) : kPaddingSamples;
  for (; s && check.samples < limit; s = data.next()) {
    const Tensor& mask = s->inputs.at(check.mask_input);
    const Dims rows_by_len = mask.dims();
    const int64_t to = (rows_by_len[1] / 64 + 1) * 64;
    std::map<std::string, Tensor> padded;
    for (const auto& [name, t] : s->inputs)
      padded[name] = t.dims() == rows_by_len ? pad_rows(t, to) : t;
    const std::vector<Tensor> ya = ia.run(s->inputs), yb = ib.run(s->inputs);
    const std::vector<Tensor> pa = ia.run(padded), pb = ib.run(padded);
    if (check.outputs.empty()) {
      for (size_t k = 0; k < ya.size() && k < yb.size(); ++k) {
        if (ya[k].dtype() != DType::kFloat || yb[k].dtype() != DType::kFloat) continue;
        if (unpad(pa[k], ya[k].dims()).dtype() != DType::kFloat) continue;  // no counterpart
        PaddingOutput o;
        o.name = a.graph.value(a.graph.outputs[k]).name;
        o.a_mean_cosine = o.b_mean_cosine = 0;  // sums until the end
        check.outputs.push_back(o);
        index.push_back(k);
      }
      if (check.outputs.empty()) return std::nullopt;
    }
    for (size_t j = 0; j < check.outputs.size(); ++j) {
      const size_t k = index[j];
      const Tensor ua = unpad(pa[k], ya[k].dims()), ub = unpad(pb[k], yb[k].dims());
      // No counterpart on this sample (a shape that does not follow the sequence): worst case.
      const bool both = ua.dtype() == DType::kFloat && ub.dtype() == DType::kFloat;
      const double ca = both ? cosine(ya[k], ua) : 0.0, cb = both ? cosine(yb[k], ub) : 0.0;
      PaddingOutput& o = check.outputs[j];
      o.a_min_cosine = std::min(o.a_min_cosine, ca);
      o.b_min_cosine = std::min(o.b_min_cosine, cb);
      o.a_mean_cosine += ca;
      o.b_mean_cosine += cb;
    }
    ++check.samples;
  }
  for (PaddingOutput& o : check.outputs) {
    o.a_mean_cosine /= static_cast<double>(check.samples);
    o.b_mean_cosine /= static_cast<double>(check.samples);
  }
  data.rewind();
  return check;
}

}  // namespace ptq::report
