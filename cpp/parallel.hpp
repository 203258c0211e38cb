// A bounded, per-call worker pool: no global state, exceptions never escape a worker thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hts {

/// Threads to use for `tasks` independent tasks when the caller asked for `requested` (0 = all cores).
inline int effective_threads(int requested, std::size_t tasks) {
  std::size_t want = requested > 0 ? static_cast<std::size_t>(requested)
                                   : std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::max<std::size_t>(1, std::min(want, tasks)));
}

/// Calls fn(i) for every i in [0, n) on up to `threads` threads (the calling thread is one of them).
///
/// Tasks are handed out in increasing i, one at a time, so a slow task never holds up a queue. If any fn(i)
/// throws, no new task starts, every thread is joined, and the exception of the *smallest* failing i is
/// rethrown on the calling thread: all tasks before it were already handed out and ran to completion, so the
/// error reported does not depend on the thread count or on timing.
template <class Fn>
void parallel_for(std::size_t n, int threads, Fn&& fn) {
  if (n == 0) return;
  const int workers = effective_threads(threads, n);
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  std::size_t error_index = n;

  auto work = [&]() {
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) return;
      const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        stop.store(true, std::memory_order_relaxed);
      }
    }
  };

  if (workers == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(workers - 1));
    try {
      for (int t = 1; t < workers; ++t) pool.emplace_back(work);
    } catch (...) {  // could not start a thread: run with what we have
    }
    work();
    for (auto& th : pool) th.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace hts
