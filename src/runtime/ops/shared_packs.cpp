// Packed copies of constant weights shared by every kernel that packs the same tensor the same way.
#include "shared_packs.h"

#include <map>
#include <mutex>
#include <tuple>

namespace ptq::runtime {

SharedPack shared_pack(const Tensor& w, int64_t variant, const std::function<std::vector<float>()>& make) {
  using Key = std::tuple<const void*, Dims, int64_t>;
  static std::mutex mu;
  static std::map<Key, std::weak_ptr<const std::vector<float>>> packs;
  const Key key{w.raw(), w.dims(), variant};
  {
    const std::lock_guard<std::mutex> lock(mu);
    const auto it = packs.find(key);
    if (it != packs.end())
      if (SharedPack p = it->second.lock()) return p;
  }
  // Packed outside the lock, so kernels of other weights are not held up; two threads packing
  // the same weights at once make identical packs, and the first one stored is kept.
  SharedPack made = std::make_shared<const std::vector<float>>(make());
  const std::lock_guard<std::mutex> lock(mu);
  for (auto it = packs.begin(); it != packs.end();)  // entries whose holders are all gone
    it = it->second.expired() ? packs.erase(it) : std::next(it);
  std::weak_ptr<const std::vector<float>>& slot = packs[key];
  if (SharedPack p = slot.lock()) return p;
  slot = made;
  return made;
}

}  // namespace ptq::runtime
