// ThreadPool: every index runs exactly once (own shares, then stolen ones), the first participant
// keeps its share's indices when nobody steals, errors are rethrown, and jobs follow each other.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

namespace ptq::runtime {
namespace {

TEST(ThreadPool, EveryIndexRunsOnceForAnyThreadCount) {
  for (size_t threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> calls(n);
      pool.parallel_for(n, [&](size_t i) { calls[i].fetch_add(1); });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(calls[i].load(), 1) << threads << " threads, n " << n << ", index " << i;
    }
  }
}

// A participant that is held up has the rest of its share taken by the others: the job ends
// although one worker's indices are slow.
TEST(ThreadPool, IdleParticipantsStealWhatIsLeft) {
  ThreadPool pool(2);
  const size_t n = 40;
  std::vector<std::thread::id> who(n);
  pool.parallel_for(n, [&](size_t i) {
    who[i] = std::this_thread::get_id();
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the caller's first index
  });
  size_t by_caller = 0;
  for (const std::thread::id& t : who) by_caller += t == std::this_thread::get_id();
  // The caller's share is indices 0..19; while it sleeps on index 0 the worker finishes its own
  // share and steals most of the caller's.
  EXPECT_LT(by_caller, n / 2);
  EXPECT_GE(by_caller, 1u);
}

TEST(ThreadPool, RethrowsAnErrorAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(50, [](size_t i) {
                 if (i == 17) throw std::runtime_error("index 17");
               }),
               std::runtime_error);
  std::atomic<size_t> sum{0};
  pool.parallel_for(100, [&](size_t i) { sum += i; });
  EXPECT_EQ(sum.load(), 4950u);
}

// Many short jobs back to back (workers between spinning and sleeping): none is lost or doubled.
TEST(ThreadPool, ManyShortJobs) {
  ThreadPool pool(2);
  std::atomic<size_t> total{0};
  for (int job = 0; job < 2000; ++job) {
    pool.parallel_for(3, [&](size_t) { total.fetch_add(1); });
    if (job % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers fall asleep
  }
  EXPECT_EQ(total.load(), 6000u);
}

}  // namespace
}  // namespace ptq::runtime
