#include "bulge_chasing.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
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

/// LAPACK sytrd_sb2st's serial task order (one thread group, group size 1, shift 3), cut into steps: each
/// step holds the tasks LAPACK issues for one (column i, sub-step m); they are mutually independent.
void schedule(int n, int kd, std::vector<Task>& tasks, std::vector<std::size_t>& step_end) {
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
      if (step_end.empty() || step_end.back() != tasks.size()) step_end.push_back(tasks.size());
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

/// A reusable barrier for a fixed team that spins briefly, then yields (the team may share cores).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void resize(int count) { count_ = count; }  // only while no one waits
  void wait() {
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spin = 0; generation_.load(std::memory_order_acquire) == gen; ++spin)
      if (spin > 2000) std::this_thread::yield();
  }

 private:
  int count_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
};

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
  std::vector<std::size_t> step_end;
  schedule(n, kd, tasks, step_end);

  int team = effective_threads(threads, static_cast<std::size_t>(n / (3 * kd) + 1));
  std::vector<T> work(static_cast<std::size_t>(team) * 2 * kd, T(0));
  Barrier barrier(team);
  std::atomic<bool> stopped{false};
  auto member = [&](int rank) {
    T* my_work = work.data() + static_cast<std::size_t>(rank) * 2 * kd;
    std::size_t begin = 0;
    for (std::size_t s = 0; s < step_end.size(); ++s) {
      if (s % 256 == 0) {  // every member sees the same flag value at the same step: all stop together
        if (rank == 0) stopped.store(stop != nullptr && stop->load(std::memory_order_relaxed), std::memory_order_relaxed);
        barrier.wait();
        if (stopped.load(std::memory_order_relaxed)) return;
      }
      const std::size_t end = step_end[s];
      for (std::size_t t = begin + static_cast<std::size_t>(rank); t < end; t += static_cast<std::size_t>(team))
        run_task<T>(tasks[t], n, kd, a.data(), lda, v.data(), tau.data(), my_work);
      if (team > 1) barrier.wait();
      begin = end;
    }
  };
  // Helpers wait for `go` and then for the team's final size: a thread that cannot be started shrinks
  // the team (the tasks' split changes, their arithmetic does not).
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
  team = static_cast<int>(helpers.size()) + 1;
  barrier.resize(team);
  go.store(1, std::memory_order_release);
  member(0);
  for (auto& h : helpers) h.join();
  if (stopped.load()) throw Stopped();
  for (int c = 0; c < n; ++c) d[c] = a[static_cast<std::size_t>(c) * lda];
  for (int c = 0; c + 1 < n; ++c) e[c] = a[static_cast<std::size_t>(c) * lda + 1];
}

template void band_to_tridiagonal<double>(int, int, const double*, int, double*, double*, int,
                                          const std::atomic<bool>*);
template void band_to_tridiagonal<float>(int, int, const float*, int, float*, float*, int, const std::atomic<bool>*);

}  // namespace hts
