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
  void worker_loop();
  void drain();  // takes indices of the current job until none are left

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_ = 0;
  size_t next_ = 0;
  // Read without the mutex by spinning threads; written under it.
  std::atomic<size_t> active_{0};  // workers still inside the current job
  std::atomic<size_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace ptq::runtime
