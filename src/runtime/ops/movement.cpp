// Data movement: Concat, Transpose, Gather, Slice, Split (any fixed-width dtype, byte copies).
#include <algorithm>
#include <cstring>

#include "common.h"

namespace ptq::runtime {
namespace {

size_t elem_size(const Tensor& t) {
  PTQ_CHECK(!t.is_string() && dtype_bits(t.dtype()) >= 8, UnsupportedError, "dtype ",
            dtype_name(t.dtype()), " is not supported here");
  return static_cast<size_t>(dtype_bits(t.dtype()) / 8);
}

// Concat splits its copy into at most kConcatParts parts per outer index, of at least
// kConcatPartBytes each and at least 256 bytes of every input row (shorter memcpys cost more than
// the split saves).
constexpr int64_t kConcatParts = 32;
constexpr size_t kConcatPartBytes = 4096;

class Concat : public Kernel {
 public:
  explicit Concat(const KernelInit& init) : axis_(init.node.attr_int("axis", 1)) {
    PTQ_CHECK(init.opset < 4 || init.node.attr("axis"), ModelError, "axis is required");
  }
  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& first = required_input(in, 0, "inputs");
    const int64_t r = static_cast<int64_t>(first.rank());
    const int64_t axis = normalize_axis(axis_, r);
    Dims od = first.dims();
    od[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = required_input(in, i, "inputs");
      PTQ_CHECK(t.dtype() == first.dtype() && t.rank() == first.rank(), ModelError, "input ", i,
                " has dtype/rank ", dtype_name(t.dtype()), "/", t.rank(), ", expected ",
                dtype_name(first.dtype()), "/", first.rank());
      for (int64_t d = 0; d < r; ++d)
        PTQ_CHECK(d == axis || t.dims()[static_cast<size_t>(d)] == first.dims()[static_cast<size_t>(d)],
                  ModelError, "input ", i, " shape ", dims_str(t.dims()), " does not match ",
                  dims_str(first.dims()), " off axis ", axis);
      od[static_cast<size_t>(axis)] = checked_add(od[static_cast<size_t>(axis)], t.dims()[static_cast<size_t>(axis)], "concatenated axis");
    }
    const size_t es = elem_size(first);
    out[0] = new_tensor(first.dtype(), od);
    const int64_t outer = numel_of(Dims(od.begin(), od.begin() + axis));
    const int64_t inner = numel_of(Dims(od.begin() + axis + 1, od.end()));
    const size_t row = static_cast<size_t>(od[static_cast<size_t>(axis)] * inner) * es;
    char* y = static_cast<char*>(out[0].mutable_raw());
    // Task (o, b) copies part b of every input row (channel plane) of outer index o: the tasks
    // follow the positions along the inner axis, as the convolutions' column tiles do, so each
    // thread mostly copies what it wrote and what it will read next.
    const size_t inner_bytes = static_cast<size_t>(inner) * es;
    const int64_t parts = std::clamp<int64_t>(
        static_cast<int64_t>(std::min(row / kConcatPartBytes, inner_bytes / 256)), 1, kConcatParts);
    parallel_blocks(ctx, outer * parts, static_cast<int64_t>(row / static_cast<size_t>(parts)), [&](int64_t i) {
      const int64_t o = i / parts, b = i % parts;
      const size_t lo = inner_bytes * static_cast<size_t>(b) / static_cast<size_t>(parts) / es * es;
      const size_t hi = inner_bytes * static_cast<size_t>(b + 1) / static_cast<size_t>(parts) / es * es;
      char* yo = y + static_cast<size_t>(o) * row;
      for (const Tensor* t : in) {
        const int64_t channels = t->dims()[static_cast<size_t>(axis)];
        const char* x = static_cast<const char*>(t->raw()) + static_cast<size_t>(o * channels) * inner_bytes;
        for (int64_t ch = 0; ch < channels; ++ch, x += inner_bytes, yo += inner_bytes)
          if (hi > lo) std::memcpy(yo + lo, x + lo, hi - lo);
      }
    }, 16384);
  }

 private:
  int64_t axis_;
};

class Transpose : public Kernel {
 public:
  explicit Transpose(const KernelInit& init) : perm_(init.node.attr_ints("perm")) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    const size_t r = X.rank();
    std::vector<int64_t> perm = perm_;
    if (perm.empty())
      for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
    PTQ_CHECK(perm.size() == r, ModelError, "perm has ", perm.size(), " entries for rank ", r);
    std::vector<bool> seen(r, false);
    const std::vector<int64_t> xs = strides_of(X.dims());
    Dims od(r);
    std::vector<int64_t> st(r);
    for (size_t i = 0; i < r; ++i) {
      PTQ_CHECK(perm[i] >= 0 && perm[i] < static_cast<int64_t>(r) && !seen[static_cast<size_t>(perm[i])],
                ModelError, "perm is not a permutation of 0..", r - 1);
      seen[static_cast<size_t>(perm[i])] = true;
      od[i] = X.dims()[static_cast<size_t>(perm[i])];
      st[i] = xs[static_cast<size_t>(perm[i])];
    }
    out[0] = new_tensor(X.dtype(), od);
    strided_copy(X.raw(), st, 0, out[0].mutable_raw(), od, elem_size(X));
  }

 private:
  std::vector<int64_t> perm_;
};

class Gather : public Kernel {
 public:
  explicit Gather(const KernelInit& init) : axis_(init.node.attr_int("axis", 0)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    const Tensor& I = required_input(in, 1, "indices");
    const int64_t r = static_cast<int64_t>(X.rank());
    PTQ_CHECK(r >= 1, ModelError, "Gather data must have rank >= 1");
    const int64_t axis = normalize_axis(axis_, r);
    const std::vector<int64_t> idx = int_values(I, "indices");
    const int64_t n = X.dims()[static_cast<size_t>(axis)];
    Dims od(X.dims().begin(), X.dims().begin() + axis);
    od.insert(od.end(), I.dims().begin(), I.dims().end());
    od.insert(od.end(), X.dims().begin() + axis + 1, X.dims().end());
    const size_t es = elem_size(X);
    out[0] = new_tensor(X.dtype(), od);
    const int64_t outer = numel_of(Dims(X.dims().begin(), X.dims().begin() + axis));
    const size_t inner = static_cast<size_t>(numel_of(Dims(X.dims().begin() + axis + 1, X.dims().end()))) * es;
    const char* x = static_cast<const char*>(X.raw());
    char* y = static_cast<char*>(out[0].mutable_raw());
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t k : idx) {
        PTQ_CHECK(k >= -n && k < n, ModelError, "index ", k, " out of range for axis size ", n);
        if (k < 0) k += n;
        std::memcpy(y, x + (static_cast<size_t>(o * n + k)) * inner, inner);
        y += inner;
      }
    }
  }

 private:
  int64_t axis_;
};

// Slice: starts/ends/axes/steps are attributes before opset 10 and inputs from 10.
class Slice : public Kernel {
 public:
  explicit Slice(const KernelInit& init) : inputs_(init.opset >= 10) {
    if (!inputs_) {
      starts_ = init.node.attr_ints("starts");
      ends_ = init.node.attr_ints("ends");
      axes_ = init.node.attr_ints("axes");
    }
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    if (inputs_) {
      starts = int_values(required_input(in, 1, "starts"), "starts");
      ends = int_values(required_input(in, 2, "ends"), "ends");
      if (const Tensor* t = optional_input(in, 3)) axes = int_values(*t, "axes");
      if (const Tensor* t = optional_input(in, 4)) steps = int_values(*t, "steps");
    }
    const int64_t r = static_cast<int64_t>(X.rank());
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    PTQ_CHECK(ends.size() == starts.size() && axes.size() == starts.size() &&
                  steps.size() == starts.size(),
              ModelError, "starts, ends, axes and steps must have the same length");
    Dims od = X.dims();
    const std::vector<int64_t> xs = strides_of(X.dims());
    std::vector<int64_t> st = xs;
    int64_t offset = 0;
    std::vector<bool> seen(static_cast<size_t>(r), false);
    for (size_t i = 0; i < starts.size(); ++i) {
      const size_t a = static_cast<size_t>(normalize_axis(axes[i], r));
      PTQ_CHECK(!seen[a], ModelError, "axis ", axes[i], " repeated");
      seen[a] = true;
      const int64_t d = X.dims()[a], step = steps[i];
      PTQ_CHECK(step != 0, ModelError, "step must not be 0");
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s += d;
      if (e < 0 && e > INT64_MIN / 2) e += d;
      // Clamping differs by direction: [0, d] going forward, [-1, d-1] going backward.
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, d);
        e = std::clamp<int64_t>(e, 0, d);
        // (e - s - 1) / step + 1: with e - s + step - 1 a huge step (INT64_MAX) overflowed.
        od[a] = e > s ? (e - s - 1) / step + 1 : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, d - 1);
        e = std::clamp<int64_t>(e, -1, d - 1);
        // -step overflows for INT64_MIN: divide by it as unsigned.
        const uint64_t back = uint64_t{0} - static_cast<uint64_t>(step);
        od[a] = s > e ? static_cast<int64_t>(static_cast<uint64_t>(s - e - 1) / back + 1) : 0;
      }
      offset += s * xs[a];
      // With two or more elements |step| < d, so the product stays below the tensor size.
      st[a] = od[a] > 1 ? xs[a] * step : 0;
    }
    out[0] = new_tensor(X.dtype(), od);
    strided_copy(X.raw(), st, offset, out[0].mutable_raw(), od, elem_size(X));
  }

 private:
  bool inputs_;
  std::vector<int64_t> starts_, ends_, axes_;
};

// Split: sizes from the `split` attribute (< 13) or input (>= 13), else equal parts
// (num_outputs from 18, otherwise the number of outputs).
class Split : public Kernel {
 public:
  explicit Split(const KernelInit& init)
      : axis_(init.node.attr_int("axis", 0)), from_input_(init.opset >= 13),
        split_(init.node.attr_ints("split")), outputs_(static_cast<int64_t>(init.node.outputs.size())) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    const int64_t r = static_cast<int64_t>(X.rank());
    const int64_t axis = normalize_axis(axis_, r);
    const int64_t d = X.dims()[static_cast<size_t>(axis)];
    std::vector<int64_t> split = split_;
    if (from_input_)
      if (const Tensor* t = optional_input(in, 1)) split = int_values(*t, "split");
    if (split.empty()) {
      const int64_t part = (d + outputs_ - 1) / outputs_;  // the last part may be smaller (18)
      for (int64_t i = 0; i < outputs_; ++i)
        split.push_back(std::max<int64_t>(0, std::min(part, d - std::min(i, d) * std::min(part, d))));
    }
    PTQ_CHECK(static_cast<int64_t>(split.size()) == outputs_, ModelError, "split has ", split.size(),
              " entries for ", outputs_, " outputs");
    int64_t total = 0;
    for (int64_t s : split) {
      PTQ_CHECK(s >= 0, ModelError, "split size ", s, " is negative");
      total = checked_add(total, s, "split sizes");
    }
    PTQ_CHECK(total == d, ModelError, "split sizes sum to ", total, ", axis has ", d);
    const std::vector<int64_t> xs = strides_of(X.dims());
    int64_t start = 0;
    for (size_t i = 0; i < split.size(); ++i) {
      Dims od = X.dims();
      od[static_cast<size_t>(axis)] = split[i];
      out[i] = new_tensor(X.dtype(), od);
      strided_copy(X.raw(), xs, start * xs[static_cast<size_t>(axis)], out[i].mutable_raw(), od,
                   elem_size(X));
      start += split[i];
    }
  }

 private:
  int64_t axis_;
  bool from_input_;
  std::vector<int64_t> split_;
  int64_t outputs_;
};

}  // namespace

void register_movement(KernelRegistry& r) {
  r.add("Concat", make_kernel<Concat>);
  r.add("Transpose", make_kernel<Transpose>);
  r.add("Gather", make_kernel<Gather>);
  r.add("Slice", make_kernel<Slice>);
  r.add("Split", make_kernel<Split>);
}

}  // namespace ptq::runtime
