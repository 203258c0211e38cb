#include "bulge_chasing.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <mutex>
#include <thread>
#include <vector>

#include "eigen_batch.hpp"
#include "parallel.hpp"

extern "C" {
// LAPACK's one bulge-chasing task (Fortran: LOGICAL wantz is an int; one hidden length for uplo).
void scipy_dsb2st_kernels_(const char* uplo, const int* wantz, const int* ttype, const int* st, const int* ed,
                           const int* sweep, const int* n, const int* nb, const int* ib, double* a, const int* lda,
                           double* v, double* tau, const int* ldvt, double* work, std::size_t);
void scipy_ssb2st_kernels_(const char* uplo, const int* wantz, const int* ttype, const int* st, const int* ed,
                           const int* sweep, const int* n, const int* nb, const int* ib, float* a, const int* lda,
                           float* v, float* tau, const int* ldvt, float* work, std::size_t);
}

namespace hts {

namespace {

struct Task {
  int type, first, last, sweep;  // LAPACK's TTYPE, ST, ED, SWEEP (1-based)
};

/// The tasks of LAPACK sytrd_sb2st (one thread group, group size 1, shift 3) in its serial order: for each
/// column i and sub-step m, task (i − s)·3 + m of every sweep s still running.
void schedule(int n, int kd, std::vector<Task>& tasks) {
  const int shift = 3;
  int first_sweep = 1;
  for (int i = 1; i <= n - 1; ++i) {
    if (first_sweep > i) break;
    for (int m = 1; m <= shift; ++m) {
      const int st = first_sweep;
      for (int sweep = st; sweep <= i; ++sweep) {
        const int id = (i - sweep) * shift + m;
        const int type = id == 1 ? 1 : id % 2 + 2;
        int colpt, last_row;
        if (type == 2) {
          colpt = (id / 2) * kd + sweep;
          last_row = colpt;
        } else {
          colpt = ((id + 1) / 2) * kd + sweep;
          const int a = colpt - kd + 1, b = std::min(colpt, n);
          last_row = (a >= b - 1 && b == n) ? n : 0;
        }
        tasks.push_back({type, colpt - kd + 1, std::min(colpt, n), sweep});
        if (last_row >= n - 1) ++first_sweep;  // this sweep has reached the end of the band
      }
    }
  }
}

template <class T>
void run_task(const Task& t, int n, int kd, T* a, int lda, T* v, T* tau, T* work) {
  const char uplo = 'L';
  const int wantz = 0, ib = 1, ldvt = kd + ib;
  if constexpr (std::is_same<T, double>::value)
    scipy_dsb2st_kernels_(&uplo, &wantz, &t.type, &t.first, &t.last, &t.sweep, &n, &kd, &ib, a, &lda, v, tau,
                          &ldvt, work, 1);
  else
    scipy_ssb2st_kernels_(&uplo, &wantz, &t.type, &t.first, &t.last, &t.sweep, &n, &kd, &ib, a, &lda, v, tau,
                          &ldvt, work, 1);
}

/// Waits (spinning briefly, then yielding: the team may share cores with other work) until ready() or abort.
template <class Ready>
bool wait_until(Ready ready, const std::atomic<bool>& abort) {
  for (int spin = 0; !ready(); ++spin) {
    if (abort.load(std::memory_order_relaxed)) return false;
    if (spin > 256) std::this_thread::yield();
  }
  return true;
}

}  // namespace

template <class T>
void band_to_tridiagonal(int n, int kd, const T* ab, int ldab, T* d, T* e, int threads,
                         const std::atomic<bool>* stop) {
  if (n <= 0) return;
  if (kd < 0 || ldab < kd + 1) throw std::invalid_argument("band_to_tridiagonal: bad band");
  auto at = [&](int i, int c) { return ab[static_cast<std::size_t>(c) * ldab + (i - c)]; };
  if (kd <= 1 || n <= 2) {  // already tridiagonal (or diagonal)
    for (int c = 0; c < n; ++c) d[c] = at(c, c);
    for (int c = 0; c + 1 < n; ++c) e[c] = kd >= 1 ? at(c + 1, c) : T(0);
    return;
  }
  // LAPACK's layout: the band with kd extra zero rows below it for the bulges (lda = 2·kd + 1); the
  // reflectors and their scalars in two halves of n (by the sweep's parity).
  const int lda = 2 * kd + 1;
  std::vector<T> a(static_cast<std::size_t>(lda) * n, T(0));
  for (int c = 0; c < n; ++c)
    for (int r = 0; r <= kd; ++r) a[static_cast<std::size_t>(c) * lda + r] = ab[static_cast<std::size_t>(c) * ldab + r];
  std::vector<T> v(2 * static_cast<std::size_t>(n) + 1, T(0)), tau(2 * static_cast<std::size_t>(n) + 1, T(0));

  std::vector<Task> tasks;
  schedule(n, kd, tasks);
  // Each sweep's tasks in LAPACK's order (stable sort by sweep): sweep s (1-based) is first[s] .. first[s+1].
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& x, const Task& y) { return x.sweep < y.sweep; });
  const int sweeps = tasks.empty() ? 0 : tasks.back().sweep;
  std::vector<std::size_t> first(static_cast<std::size_t>(sweeps) + 2, tasks.size());
  for (std::size_t t = tasks.size(); t-- > 0;) first[static_cast<std::size_t>(tasks[t].sweep)] = t;
  auto length = [&](int sw) { return static_cast<int>(first[static_cast<std::size_t>(sw) + 1] - first[static_cast<std::size_t>(sw)]); };

  // Sweeps are dealt to the threads in turn; task j of sweep s starts once task j + 2 of sweep s − 1 is done
  // (LAPACK's dependency), or, where sweep s − 1 is shorter, once every earlier sweep is done.
  std::vector<std::atomic<int>> progress(static_cast<std::size_t>(sweeps) + 1);  // tasks done per sweep
  for (auto& p : progress) p.store(0, std::memory_order_relaxed);
  std::vector<char> finished(static_cast<std::size_t>(sweeps) + 1, 0);
  int finished_prefix = 0;  // sweeps 1 .. finished_prefix are all done (guarded by prefix_mutex)
  std::atomic<int> prefix{0};
  std::mutex prefix_mutex;
  std::atomic<bool> abort{false};
  int team = effective_threads(threads, static_cast<std::size_t>(std::max(1, sweeps)));
  std::vector<T> work(static_cast<std::size_t>(team) * 2 * kd, T(0));
  std::atomic<int> team_size{team};
  auto member = [&](int rank) {
    T* my_work = work.data() + static_cast<std::size_t>(rank) * 2 * kd;
    const int stride = team_size.load(std::memory_order_acquire);
    std::size_t ran = 0;
    for (int sw = rank + 1; sw <= sweeps; sw += stride) {
      const int len = length(sw);
      for (int j = 1; j <= len; ++j) {
        if (++ran % 512 == 0 && stop != nullptr && stop->load(std::memory_order_relaxed))
          abort.store(true, std::memory_order_relaxed);
        if (abort.load(std::memory_order_relaxed)) return;
        if (sw > 1) {
          const bool ok = j + 2 <= length(sw - 1)
              ? wait_until([&] { return progress[sw - 1].load(std::memory_order_acquire) >= j + 2; }, abort)
              : wait_until([&] { return prefix.load(std::memory_order_acquire) >= sw - 1; }, abort);
          if (!ok) return;
        }
        run_task<T>(tasks[first[static_cast<std::size_t>(sw)] + j - 1], n, kd, a.data(), lda, v.data(), tau.data(),
                    my_work);
        progress[sw].store(j, std::memory_order_release);
      }
      std::lock_guard<std::mutex> lock(prefix_mutex);
      finished[static_cast<std::size_t>(sw)] = 1;
      while (finished_prefix < sweeps && finished[static_cast<std::size_t>(finished_prefix) + 1]) ++finished_prefix;
      prefix.store(finished_prefix, std::memory_order_release);
    }
  };
  // Helpers wait for `go` and then read the team's final size: a thread that cannot be started shrinks the
  // team (the sweeps' split changes, their arithmetic does not).
  std::atomic<int> go{0};
  std::vector<std::thread> helpers;
  try {
    for (int r = 1; r < team; ++r)
      helpers.emplace_back([&, r] {
        while (go.load(std::memory_order_acquire) == 0) std::this_thread::yield();
        member(r);
      });
  } catch (...) {  // could not start a thread: run with those that started
  }
  team_size.store(static_cast<int>(helpers.size()) + 1, std::memory_order_release);
  go.store(1, std::memory_order_release);
  member(0);
  for (auto& h : helpers) h.join();
  if (abort.load()) throw Stopped();
  for (int c = 0; c < n; ++c) d[c] = a[static_cast<std::size_t>(c) * lda];
  for (int c = 0; c + 1 < n; ++c) e[c] = a[static_cast<std::size_t>(c) * lda + 1];
}

template void band_to_tridiagonal<double>(int, int, const double*, int, double*, double*, int,
                                          const std::atomic<bool>*);
template void band_to_tridiagonal<float>(int, int, const float*, int, float*, float*, int, const std::atomic<bool>*);

}  // namespace hts
