// A small fixed thread pool running one parallel_for at a time (the caller thread helps); idle
// threads spin briefly before sleeping, so consecutive ops do not pay a context switch each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ptq::runtime {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);  // threads includes the caller; 1 means no workers
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }
  // Calls fn(i) once for each i in [0, n); rethrows the first exception a call threw.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

 private:
  void worker_loop(size_t id);
  void drain(size_t id);  // runs participant id's share of the current job

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  // Participant k's share of the indices: [n·k/T, n·(k+1)/T), taken from `next` on by its owner
  // and, once their own is done, by the others. An op's data mostly stays in the cache of the
  // core that wrote it when the next op splits its work the same way; a shared counter handed
  // out indices in arrival order (mobilenetv2's 112x112 pointwise convs ran slower on 2 threads).
  struct alignas(64) Share {
    std::atomic<size_t> next{0};
    size_t end = 0;
  };
  std::vector<Share> shares_;
  // Read without the mutex by spinning threads; written under it.
  std::atomic<size_t> active_{0};  // workers inside the current job
  bool closed_ = true;              // the current job's indices are all taken (under mutex_)
  std::atomic<size_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
  std::atomic<bool> error_flag_{false};
};

}  // namespace ptq::runtime
