// Eigenvalues of X = WᵀW for a batch of matrices: Gram product of the smaller side + symmetric eigensolver.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace hts {

enum class DType { f32, f64 };

/// A read-only 2-D matrix in caller memory: element (i, j) is at data + i*row_stride + j*col_stride
/// (strides in elements, any sign). The kernel never writes through it and never keeps it after a call.
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::f64;
  std::int64_t rows = 0, cols = 0;
  std::int64_t row_stride = 0, col_stride = 0;

  std::int64_t small_side() const { return rows < cols ? rows : cols; }
  std::int64_t large_side() const { return rows < cols ? cols : rows; }
};

/// Tuning knobs; the defaults are what ships. They change speed only, never which numbers come out for a
/// given shape (every choice depends on the matrix shape alone, never on the thread count).
struct EigenOptions {
  int threads = 0;                 ///< worker threads, 0 = all cores
  std::int64_t eigen_solver_max = 12;  ///< Gram sides up to this use Eigen's solver, larger ones LAPACK syevd
  /// Gram sides from this on use LAPACK's two-stage syevd_2stage; -1 = measured defaults (float64: 896,
  /// float32: 2048, where the two-stage reduction starts to win on one core).
  std::int64_t two_stage_min = -1;
  /// Gram sides from this on use the staged eigensolver (staged_eigen.hpp: dense → band in fixed tiles
  /// shared by the threads, then band → tridiagonal → eigenvalues), the same path for every thread count;
  /// -1 = the measured default (staged_min_default), a side beyond every Gram = never.
  std::int64_t staged_min = -1;
  int staged_band = 64;  ///< the staged solver's bandwidth
  std::int64_t tiled_gram_min = 512;  ///< Gram sides from this on are built in fixed tiles shared by threads
  /// Tall matrices (large side ≥ 8× the small side n < tiled_gram_min) whose Gram product costs at least
  /// this many multiply-adds (n²k) are built from up to 8 slabs of the large side shared by threads, their
  /// partial Gram matrices summed in slab order (-1: never).
  double slab_min_cost = 1e8;
  std::int64_t gram_tile = 512;        ///< tile side for those
  /// float64 only: when the smallest Gram eigenvalue is within round-off of 0 (< 100·(N+M)·eps·λ_max), the
  /// Gram route cannot resolve the small singular values, so the matrix is redone with an SVD (gesdd):
  /// exact zeros and near-rank-deficient matrices then come out as an SVD gives them.
  bool refine_small = true;
  /// Large matrices whose memory BLAS cannot use as is (float32 data in float64 precision, strided views)
  /// are converted chunk by chunk when a whole converted copy would exceed this many bytes (-1: never), so
  /// the extra memory is the Gram matrix plus one chunk of chunk_bytes.
  std::int64_t chunked_convert_min = std::int64_t{256} << 20;
  std::int64_t chunk_bytes = std::int64_t{64} << 20;
  /// The caller's stop flag (or null): read at every safe point (before each tile, slab or whole-matrix
  /// task, each conversion chunk, each eigensolve and each SVD refine); once it reads true the call throws
  /// Stopped. A stop therefore lands within the longest single BLAS/LAPACK call. Never written by the kernel.
  const std::atomic<bool>* stop = nullptr;
};

/// The caller's stop flag was set: the call gave up at a safe point; its outputs are unspecified.
struct Stopped : std::runtime_error {
  Stopped() : std::runtime_error("stopped: the caller's stop flag was set") {}
};

/// Throws Stopped if the options' stop flag is set (a safe point).
inline void check_stop(const EigenOptions& opt) {
  if (opt.stop != nullptr && opt.stop->load(std::memory_order_relaxed)) throw Stopped();
}

/// Bad input in one matrix of a batch; `index` says which, so callers can name the layer and slice.
struct BadMatrix : std::invalid_argument {
  std::size_t index;
  BadMatrix(std::size_t i, const std::string& what) : std::invalid_argument(what), index(i) {}
};

/// Number of NaN/Inf entries of a matrix.
std::int64_t count_nonfinite(const MatrixView& m);

/// For each matrix m[i] (rows×cols, both > 0, all entries finite) writes the min(rows, cols) ascending
/// eigenvalues of its Gram matrix (= squared singular values, round-off negatives clamped to 0) to out[i].
/// T = double accumulates in float64 whatever the input dtype; T = float computes in float32.
/// Throws BadMatrix for an empty matrix or NaN/Inf entries (the lowest such index, whatever the threads).
template <class T>
void gram_eigenvalues(const std::vector<MatrixView>& m, const std::vector<T*>& out, const EigenOptions& opt);

}  // namespace hts
