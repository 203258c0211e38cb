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
/// (LAPACK's own sb2st_kernels: type 1 starts a sweep, type 2 applies a reflector to the block below the
/// diagonal and makes the next one, type 3 applies it to a diagonal block). Task j of sweep s needs task
/// j − 1 of its sweep and task j + 2 of sweep s − 1 (LAPACK's task dependencies), so the sweeps run as a
/// pipeline: they are dealt to up to `threads` threads (0 = all cores) in turn, and each task waits for the
/// one it needs in the previous sweep (or, where that sweep is shorter, for every earlier sweep to end). Every
/// task does the same arithmetic on the same data whatever the thread count, so d and e are bit-identical to
/// LAPACK's serial reduction for any `threads`. Reads `stop` (if not null) every 512 tasks of a thread;
/// throws hts::Stopped once it is set.
template <class T>
void band_to_tridiagonal(int n, int kd, const T* ab, int ldab, T* d, T* e, int threads,
                         const std::atomic<bool>* stop = nullptr);

}  // namespace hts
