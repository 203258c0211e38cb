// Eigenvalues of one large symmetric matrix in stages, the first of them shared by threads in fixed tiles.
#pragma once

#include <atomic>

namespace hts {

struct StagedOptions {
  int threads = 1;  ///< worker threads for stage 1 (0 = all cores); never changes the result
  int band = 64;    ///< bandwidth b of the intermediate band matrix
  int tile = 256;   ///< tile side of stage 1's shared products
  /// The caller's stop flag (or null), read before every panel, every 256 bulge-chasing steps and before
  /// stage 3; once set the call throws hts::Stopped (eigen_batch.hpp): a stop lands within one panel's
  /// products, 256 steps of stage 2, or one tridiagonal solve (sterf: ~0.2 s at n = 4096).
  const std::atomic<bool>* stop = nullptr;
};

/// Ascending eigenvalues w (n) of the symmetric n×n matrix whose lower triangle is in `a` (column-major,
/// lda ≥ n; `a` is destroyed), values only, in three stages:
///
///  1. dense → band: for each panel of b columns, the QR A₂₁ = Q·R of the part below the band
///     (Q = I − V·T·Vᵀ), and the two-sided update of the trailing matrix A₂₂ ← Qᵀ·A₂₂·Q written as
///     Y = A₂₂·V, W = Y·T, Z = W − ½·V·(Tᵀ·Vᵀ·W), A₂₂ ← A₂₂ − Z·Vᵀ − V·Zᵀ. The two products of size
///     m²·b (Y, and the rank-2b update) run as fixed tiles on the threads, each tile one single-threaded
///     BLAS call whose inputs and order of accumulation depend on n, b and the tile side only;
///  2. band → tridiagonal by bulge chasing (bulge_chasing.hpp: LAPACK sytrd_sb2st's tasks, each step's
///     independent tasks shared by the threads);
///  3. tridiagonal eigenvalues by LAPACK sterf (serial).
///
/// The same arithmetic runs for every thread count, so w is bit-identical for any `threads`.
template <class T>
void staged_symmetric_eigenvalues(int n, T* a, int lda, T* w, const StagedOptions& opt);

}  // namespace hts
