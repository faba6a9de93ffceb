// The in-place Concat step: parts write their slices of the output, or run apart as a fallback.
#include "concat_in_place.h"

#include "ptq/core/error.h"
#include "ops/common.h"

namespace ptq::runtime {
namespace {

class ConcatInPlace : public Kernel {
 public:
  ConcatInPlace(std::vector<ConcatPart> parts, std::unique_ptr<Kernel> concat, int64_t axis)
      : parts_(std::move(parts)), concat_(std::move(concat)), axis_(axis) {}

  void run(const KernelContext& ctx, const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    std::vector<std::vector<const Tensor*>> slices;
    size_t at = 0;
    for (const ConcatPart& p : parts_) {
      slices.emplace_back(in.begin() + static_cast<std::ptrdiff_t>(at),
                          in.begin() + static_cast<std::ptrdiff_t>(at + p.inputs));
      at += p.inputs;
    }
    // Each part's output dims; in place only for [1, C_i, ...] parts equal off axis 1.
    std::vector<Dims> dims;
    bool in_place = true;
    for (size_t i = 0; i < parts_.size() && in_place; ++i) {
      std::optional<Dims> d = with_context(parts_[i].label, [&] { return parts_[i].kernel->run_into_dims(slices[i]); });
      in_place = d && d->size() >= 2 && (*d)[0] == 1 && (axis_ == 1 || axis_ == 1 - static_cast<int64_t>(d->size()));
      if (in_place && !dims.empty()) {
        const Dims& f = dims.front();
        in_place = d->size() == f.size();
        for (size_t k = 0; in_place && k < f.size(); ++k) in_place = k == 1 || (*d)[k] == f[k];
      }
      if (in_place) dims.push_back(std::move(*d));
    }
    if (!in_place) {
      std::vector<Tensor> kept(parts_.size());
      std::vector<const Tensor*> pieces;
      for (size_t i = 0; i < parts_.size(); ++i) {
        std::vector<Tensor> o(1);
        with_context(parts_[i].label, [&] { parts_[i].kernel->run(ctx, slices[i], o); });
        kept[i] = std::move(o[0]);
        pieces.push_back(&kept[i]);
      }
      concat_->run(ctx, pieces, out);
      return;
    }
    Dims od = dims.front();
    od[1] = 0;
    for (const Dims& d : dims) od[1] = checked_add(od[1], d[1], "concatenated axis");
    out[0] = Tensor::empty(DType::kFloat, od);
    float* y = out[0].mutable_data<float>();
    for (size_t i = 0; i < parts_.size(); ++i) {
      with_context(parts_[i].label, [&] { parts_[i].kernel->run_into(ctx, slices[i], y); });
      y += checked_numel(dims[i]);
    }
  }

 private:
  std::vector<ConcatPart> parts_;
  std::unique_ptr<Kernel> concat_;
  int64_t axis_;
};

}  // namespace

std::unique_ptr<Kernel> make_concat_in_place(std::vector<ConcatPart> parts, std::unique_ptr<Kernel> concat,
                                             int64_t axis) {
  return std::make_unique<ConcatInPlace>(std::move(parts), std::move(concat), axis);
}

}  // namespace ptq::runtime
