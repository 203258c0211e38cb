// Band → tridiagonal reduction of a symmetric band matrix by bulge chasing, its independent tasks shared by
// threads: the same arithmetic as LAPACK's serial sytrd_sb2st for every thread count.
#pragma once

#include <atomic>

namespace hts {

/// Reduces the symmetric n×n band matrix of bandwidth kd (lower band storage: ab[c·ldab + (i − c)] holds
/// A(i, c) for c ≤ i ≤ c + kd, ldab ≥ kd + 1; read only) to the tridiagonal matrix with diagonal d (n) and
/// subdiagonal e (n − 1), which has the same eigenvalues.
///
/// The reduction is LAPACK's sytrd_sb2st: sweep s (s = 1 … n − 1) removes column s's entries below the
/// subdiagonal with one Householder reflector and chases the bulge it creates down the band, task by task
/// (LAPACK's sb2st_kernels: type 1 starts a sweep, type 2 applies a reflector to the block below the
/// diagonal and makes the next one, type 3 applies it to a diagonal block). Sweep s's task j needs its own
/// task j − 1 and sweep s − 1's task j + 2, so LAPACK's serial order splits into steps of tasks that touch
/// disjoint parts of the band (sweeps three tasks apart). Each step's tasks run on up to `threads` threads
/// (0 = all cores), then the next step starts: every task does the same arithmetic on the same data
/// whatever the thread count, so d and e are bit-identical to the serial reduction for any `threads`.
/// Reads `stop` (if not null) every 256 steps; throws hts::Stopped once it is set.
template <class T>
void band_to_tridiagonal(int n, int kd, const T* ab, int ldab, T* d, T* e, int threads,
                         const std::atomic<bool>* stop = nullptr);

}  // namespace hts
