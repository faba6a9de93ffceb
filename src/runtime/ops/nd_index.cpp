// Index-tuple ops: GatherND (batch_dims) and ScatterND (reduction none/add/mul/max/min).
#include <cstring>

#include "common.h"

namespace ptq::runtime {
namespace {

// Element offset in `data` of the slice addressed by index tuple `idx` (k entries) in batch b.
int64_t slice_offset(const Dims& dd, const std::vector<int64_t>& ds, size_t batch_dims, int64_t b,
                     const int64_t* idx, size_t k) {
  int64_t off = 0, rem = b;
  for (size_t d = batch_dims; d-- > 0;) {
    off += (rem % dd[d]) * ds[d];
    rem /= dd[d];
  }
  for (size_t j = 0; j < k; ++j) {
    const int64_t n = dd[batch_dims + j];
    int64_t i = idx[j] < 0 ? idx[j] + n : idx[j];
    PTQ_CHECK(i >= 0 && i < n, ModelError, "index ", idx[j], " out of range for dimension of size ", n);
    off += i * ds[batch_dims + j];
  }
  return off;
}

class GatherND : public Kernel {
 public:
  explicit GatherND(const KernelInit& init) : batch_dims_(init.node.attr_int("batch_dims", 0)) {}
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& data = required_input(in, 0, "data");
    const Tensor& ind = required_input(in, 1, "indices");
    PTQ_CHECK(!data.is_string() && dtype_bits(data.dtype()) >= 8, UnsupportedError, "dtype ",
              dtype_name(data.dtype()));
    const std::vector<int64_t> iv = int_values(ind, "indices");
    const Dims& dd = data.dims();
    const Dims& id = ind.dims();
    const size_t bd = static_cast<size_t>(batch_dims_);
    PTQ_CHECK(batch_dims_ >= 0 && id.size() >= 1 && bd < id.size() && bd < dd.size(), ModelError,
              "batch_dims ", batch_dims_, " does not fit data ", dims_str(dd), " and indices ", dims_str(id));
    const size_t k = static_cast<size_t>(id.back());
    PTQ_CHECK(k >= 1 && bd + k <= dd.size(), ModelError, "indices last dimension ", k, " too large");
    int64_t batches = 1;
    for (size_t d = 0; d < bd; ++d) {
      PTQ_CHECK(dd[d] == id[d], ModelError, "batch dimension ", d, " differs");
      batches *= dd[d];
    }
    Dims od(id.begin(), id.end() - 1);
    od.insert(od.end(), dd.begin() + static_cast<int64_t>(bd + k), dd.end());
    out[0] = new_tensor(data.dtype(), od);
    const int64_t slice = numel_of(Dims(dd.begin() + static_cast<int64_t>(bd + k), dd.end()));
    const int64_t tuples = static_cast<int64_t>(iv.size() / k), per_batch = tuples / batches;
    const std::vector<int64_t> ds = strides_of(dd);
    const size_t es = (static_cast<size_t>(dtype_bits(data.dtype())) / 8);
    const auto* src = static_cast<const char*>(data.raw());
    auto* dst = static_cast<char*>(out[0].mutable_raw());
    for (int64_t t = 0; t < tuples; ++t) {
      const int64_t off = slice_offset(dd, ds, bd, t / per_batch, iv.data() + t * k, k);
      std::memcpy(dst + t * slice * es, src + off * es, static_cast<size_t>(slice) * es);
    }
  }

 private:
  int64_t batch_dims_;
};

class ScatterND : public Kernel {
 public:
  explicit ScatterND(const KernelInit& init) : red_(init.node.attr_string("reduction", "none")) {
    PTQ_CHECK(red_ == "none" || red_ == "add" || red_ == "mul" || red_ == "max" || red_ == "min",
              ModelError, "reduction '", red_, "'");
  }
  void run(const KernelContext&, const std::vector<const Tensor*>& in,
           std::vector<Tensor>& out) override {
    const Tensor& data = required_input(in, 0, "data");
    const Tensor& ind = required_input(in, 1, "indices");
    const Tensor& upd = required_input(in, 2, "updates");
    const std::vector<int64_t> iv = int_values(ind, "indices");
    const Dims& dd = data.dims();
    const Dims& id = ind.dims();
    PTQ_CHECK(id.size() >= 1 && upd.dtype() == data.dtype(), ModelError, "indices/updates do not fit");
    const size_t k = static_cast<size_t>(id.back());
    PTQ_CHECK(k >= 1 && k <= dd.size(), ModelError, "indices last dimension ", k, " too large");
    Dims ud(id.begin(), id.end() - 1);
    ud.insert(ud.end(), dd.begin() + static_cast<int64_t>(k), dd.end());
    PTQ_CHECK(upd.dims() == ud, ModelError, "updates shape ", dims_str(upd.dims()), ", expected ", dims_str(ud));
    out[0] = Tensor::from_bytes(data.dtype(), dd, data.raw(), data.numel() * (static_cast<size_t>(dtype_bits(data.dtype())) / 8));
    const int64_t slice = numel_of(Dims(dd.begin() + static_cast<int64_t>(k), dd.end()));
    const std::vector<int64_t> ds = strides_of(dd);
    const int64_t tuples = k ? static_cast<int64_t>(iv.size() / k) : 0;
    dispatch_numeric(data.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* y = out[0].mutable_data<T>();
      const T* u = upd.data<T>();
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t off = slice_offset(dd, ds, 0, 0, iv.data() + t * k, k);
        for (int64_t j = 0; j < slice; ++j) {
          T& dst = y[off + j];
          const T v = u[t * slice + j];
          if (red_ == "none") dst = v;
          else if (red_ == "add") dst = static_cast<T>(dst + v);
          else if (red_ == "mul") dst = static_cast<T>(dst * v);
          else if (red_ == "max") dst = v > dst ? v : dst;
          else dst = v < dst ? v : dst;
        }
      }
    });
  }

 private:
  std::string red_;
};

}  // namespace

void register_nd_index(KernelRegistry& r) {
  r.add("GatherND", make_kernel<GatherND>);
  r.add("ScatterND", make_kernel<ScatterND>);
}

}  // namespace ptq::runtime
