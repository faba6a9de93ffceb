// Shape manipulation without data movement: Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size,
// ConstantOfShape, Expand (reshapes share the input's storage; nothing is copied).
#include <algorithm>
#include <cstring>

#include "common.h"

namespace ptq::runtime {
namespace {

void check_plain(const Tensor& t) {
  PTQ_CHECK(!t.is_string() && dtype_bits(t.dtype()) >= 8, UnsupportedError, "dtype ",
            dtype_name(t.dtype()), " is not supported here");
}

class Reshape : public Kernel {
 public:
  explicit Reshape(const KernelInit& init) : allowzero_(init.node.attr_int("allowzero", 0) != 0) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    std::vector<int64_t> s = int_values(required_input(in, 1, "shape"), "shape");
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && !allowzero_) {
        PTQ_CHECK(i < X.rank(), ModelError, "shape[", i, "] = 0 copies a dim the input lacks");
        s[i] = X.dims()[i];
      }
      if (s[i] == -1) {
        PTQ_CHECK(infer < 0, ModelError, "shape has more than one -1");
        infer = static_cast<int64_t>(i);
      } else {
        PTQ_CHECK(s[i] >= 0, ModelError, "shape[", i, "] = ", s[i], " is invalid");
        known *= s[i];
      }
    }
    if (infer >= 0) {
      PTQ_CHECK(known != 0 && static_cast<int64_t>(X.numel()) % known == 0, ModelError,
                "cannot infer -1 reshaping ", dims_str(X.dims()), " to ", dims_str(s));
      s[static_cast<size_t>(infer)] = static_cast<int64_t>(X.numel()) / known;
    }
    PTQ_CHECK(numel_of(s) == static_cast<int64_t>(X.numel()), ModelError, "cannot reshape ",
              dims_str(X.dims()), " to ", dims_str(s));
    out[0] = X.reshaped(s);
  }

 private:
  bool allowzero_;
};

class Flatten : public Kernel {
 public:
  explicit Flatten(const KernelInit& init) : axis_(init.node.attr_int("axis", 1)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    const int64_t r = static_cast<int64_t>(X.rank());
    const int64_t a = axis_ == r ? r : normalize_axis(axis_, r);
    const int64_t outer = numel_of(Dims(X.dims().begin(), X.dims().begin() + a));
    out[0] = X.reshaped({outer, numel_of(Dims(X.dims().begin() + a, X.dims().end()))});
  }

 private:
  int64_t axis_;
};

// Squeeze/Unsqueeze: axes are an attribute before opset 13 and an input from 13.
template <bool kSqueeze>
class AxesReshape : public Kernel {
 public:
  explicit AxesReshape(const KernelInit& init)
      : from_input_(init.opset >= 13), axes_(init.node.attr_ints("axes")) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "data");
    std::vector<int64_t> axes = axes_;
    if (from_input_)
      if (const Tensor* a = optional_input(in, 1)) axes = int_values(*a, "axes");
    const int64_t r = static_cast<int64_t>(X.rank());
    Dims od;
    if constexpr (kSqueeze) {
      std::vector<bool> drop(static_cast<size_t>(r), false);
      for (int64_t a : axes) {
        const int64_t ax = normalize_axis(a, r);
        PTQ_CHECK(X.dims()[static_cast<size_t>(ax)] == 1, ModelError, "cannot squeeze axis ", a,
                  " of shape ", dims_str(X.dims()));
        drop[static_cast<size_t>(ax)] = true;
      }
      for (int64_t i = 0; i < r; ++i) {
        const int64_t d = X.dims()[static_cast<size_t>(i)];
        if (axes.empty() ? d != 1 : !drop[static_cast<size_t>(i)]) od.push_back(d);
      }
    } else {
      const int64_t orank = r + static_cast<int64_t>(axes.size());
      std::vector<bool> ins(static_cast<size_t>(orank), false);
      for (int64_t a : axes) {
        const int64_t ax = normalize_axis(a, orank);
        PTQ_CHECK(!ins[static_cast<size_t>(ax)], ModelError, "axis ", a, " repeated");
        ins[static_cast<size_t>(ax)] = true;
      }
      size_t j = 0;
      for (int64_t i = 0; i < orank; ++i) od.push_back(ins[static_cast<size_t>(i)] ? 1 : X.dims()[j++]);
    }
    out[0] = X.reshaped(od);
  }

 private:
  bool from_input_;
  std::vector<int64_t> axes_;
};

class Shape : public Kernel {
 public:
  explicit Shape(const KernelInit& init)
      : start_(init.node.attr_int("start", 0)), end_(init.node.attr_int("end", INT64_MAX)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Dims& d = required_input(in, 0, "data").dims();
    const int64_t r = static_cast<int64_t>(d.size());
    auto clamp = [r](int64_t v) { return std::clamp(v < 0 ? v + r : v, int64_t{0}, r); };
    const int64_t s = clamp(start_), e = std::max(clamp(end_), s);
    std::vector<int64_t> v(d.begin() + s, d.begin() + e);
    out[0] = Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
  }

 private:
  int64_t start_, end_;
};

class Size : public Kernel {
 public:
  explicit Size(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    out[0] = Tensor::scalar<int64_t>(static_cast<int64_t>(required_input(in, 0, "data").numel()));
  }
};

class ConstantOfShape : public Kernel {
 public:
  explicit ConstantOfShape(const KernelInit& init) {
    const ir::Attribute* a = init.node.attr("value");
    if (a) {
      PTQ_CHECK(a->type == ir::AttrType::kTensor && a->t && a->t->numel() == 1, ModelError,
                "value must be a one-element tensor");
      value_ = *a->t;
      check_plain(value_);
    } else {
      value_ = Tensor::scalar<float>(0.f);
    }
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const std::vector<int64_t> s = int_values(required_input(in, 0, "input"), "shape");
    for (int64_t d : s) PTQ_CHECK(d >= 0, ModelError, "negative dim in shape ", dims_str(s));
    out[0] = new_tensor(value_.dtype(), s);
    const size_t es = value_.nbytes();
    char* p = static_cast<char*>(out[0].mutable_raw());
    for (size_t i = 0; i < out[0].numel(); ++i) std::memcpy(p + i * es, value_.raw(), es);
  }

 private:
  Tensor value_;
};

class Expand : public Kernel {
 public:
  explicit Expand(const KernelInit&) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& X = required_input(in, 0, "input");
    check_plain(X);
    const Dims od = broadcast_dims(X.dims(), int_values(required_input(in, 1, "shape"), "shape"));
    out[0] = new_tensor(X.dtype(), od);
    strided_copy(X.raw(), broadcast_strides(X.dims(), od), 0, out[0].mutable_raw(), od,
                 static_cast<size_t>(dtype_bits(X.dtype()) / 8));
  }
};

}  // namespace

void register_shape(KernelRegistry& r) {
  r.add("", "Reshape", 5, INT64_MAX, make_kernel<Reshape>);
  r.add("Flatten", make_kernel<Flatten>);
  r.add("Squeeze", make_kernel<AxesReshape<true>>);
  r.add("Unsqueeze", make_kernel<AxesReshape<false>>);
  r.add("Shape", make_kernel<Shape>);
  r.add("Size", make_kernel<Size>);
  r.add("ConstantOfShape", make_kernel<ConstantOfShape>);
  r.add("Expand", make_kernel<Expand>);
}

}  // namespace ptq::runtime
