// Sample-parallel map over a dataset with in-order consumption: workers decode and process
// their own samples, the caller folds the results in sample order (so sums stay reproducible).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "ptq/data/dataset.h"

namespace ptq::data {

// Reads the dataset from its cursor on `workers` threads: worker w calls work(w, sample) for the
// samples it claims (decoding included, so reading overlaps compute), and the calling thread
// calls consume(sample, result) strictly in sample order, for at most `limit` valid samples
// (0: all). At most 2 * workers samples are in flight, so memory does not grow with the dataset.
// Skipped (NaN/Inf) samples are counted as Dataset::next() counts them. The first error in
// sample order is rethrown (the same one whatever the thread count). Returns samples consumed.
template <typename R>
size_t for_each_ordered(Dataset& data, size_t workers, size_t limit,
                        const std::function<R(size_t worker, const Sample&)>& work,
                        const std::function<void(const Sample&, R&)>& consume) {
  struct Slot {
    std::optional<Sample> sample;  // nullopt: skipped
    std::optional<R> result;
    std::exception_ptr error;
  };
  const size_t end = data.plan().size();
  const size_t first = data.position();
  if (workers == 0) workers = 1;
  const size_t window = 2 * workers;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<size_t, Slot> ready;
  size_t next_claim = first, next_consume = first;
  bool stop = false;

  const auto worker_loop = [&](size_t w) {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stop || next_claim >= end || next_claim < next_consume + window; });
        if (stop || next_claim >= end) return;
        i = next_claim++;
      }
      Slot slot;
      try {
        slot.sample = data.read_at(i);
        if (slot.sample) slot.result.emplace(work(w, *slot.sample));
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        ready.emplace(i, std::move(slot));
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  // Stops and joins the workers however the caller's loop ends (an error, the limit, the end).
  struct Joiner {
    std::mutex& m;
    std::condition_variable& cv;
    bool& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      {
        std::lock_guard<std::mutex> lock(m);
        stop = true;
      }
      cv.notify_all();
      for (std::thread& t : threads) t.join();
    }
  } joiner{mutex, changed, stop, threads};
  for (size_t w = 0; w < workers; ++w) threads.emplace_back(worker_loop, w);

  size_t consumed = 0, skipped = 0, i = first;
  for (; i < end && (limit == 0 || consumed < limit); ++i) {
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return ready.count(i) > 0; });
      auto it = ready.find(i);
      slot = std::move(it->second);
      ready.erase(it);
      next_consume = i + 1;
    }
    changed.notify_all();
    if (slot.error) {
      data.advance(i + 1, skipped);
      std::rethrow_exception(slot.error);
    }
    if (!slot.sample) {
      ++skipped;
      continue;
    }
    consume(*slot.sample, *slot.result);
    ++consumed;
  }
  data.advance(i, skipped);
  return consumed;
}

}  // namespace ptq::data
