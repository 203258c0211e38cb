// Random-matrix-theory layer metrics (WeightWatcher 0.7.7's mp_fit=True and randomize=True):
// the Marchenko–Pastur bulk fit, an element shuffle with a documented seeded PRNG, and the
// Jensen–Shannon distance between two spectra.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eigen_batch.hpp"

namespace hts {

/// numpy's pairwise summation (what np.sum does on a contiguous float64 array), bit for bit: blocks of at
/// most 128 values are summed with 8 interleaved accumulators, longer runs are halved (at a multiple of 8).
double pairwise_sum(const double* a, std::size_t n);

/// Knobs of the Marchenko–Pastur fit. The defaults are WeightWatcher 0.7.7's; `threads` changes speed only.
struct MPFitOptions {
  double bandwidth = 0.1;        ///< linear-kernel KDE bandwidth h
  std::int64_t kde_points = 1000;  ///< KDE grid linspace(0, max + 0.5, kde_points)
  double density_floor = 0.01;   ///< KDE points with density below this are dropped (scored as 0)
  double penalty = 1000.0;       ///< residual per point when the MP edges are implausible
  bool polish = true;            ///< Nelder–Mead after the σ grid (scipy.optimize.brute's finish=fmin)
  double xatol = 1e-4, fatol = 1e-4;      ///< Nelder–Mead stopping tolerances (scipy fmin defaults)
  std::int64_t max_iter = 200, max_fev = 200;  ///< Nelder–Mead limits (scipy fmin defaults for 1 variable)
  int threads = 1;               ///< threads for the KDE and the σ grid, 0 = all cores
};

/// Result of marchenko_pastur_fit. On failure ok = false, reason says why, and the doubles are NaN.
struct MPFit {
  bool ok = false;
  std::string reason;
  bool quarter_circle = false;   ///< Q == 1: fitted the quarter-circle law of the singular values
  std::int64_t num_spikes = 0;   ///< #(λ' > bulk_max' + √TW) on the rescaled eigenvalues λ'
  double sigma_mp = 0;           ///< fitted σ (of the rescaled spectrum, mean λ' = 1)
  double mp_softrank = 0;        ///< bulk_max' / max λ'
  double W_scale = 0;            ///< √n / √Σλ
  double bulk_max = 0;           ///< (σ(1 + 1/√Q))² / W_scale²   (original scale)
  double bulk_min = 0;           ///< (σ(1 − 1/√Q))² / W_scale²   (original scale)
  double objective = 0;          ///< the squared residual at σ
  std::int64_t evaluations = 0;  ///< objective evaluations (grid + Nelder–Mead)
};

/// Fits the Marchenko–Pastur law (quarter-circle law when Q == 1) to n eigenvalues λ (any order; they are
/// sorted ascending first, as WeightWatcher's are) of a layer with aspect ratio Q = N/M; M is only used in
/// the Tracy–Widom margin. Throws std::invalid_argument for NaN/Inf/negative eigenvalues or a bad Q/M;
/// degenerate spectra (none, all zero, no KDE point above the floor) come back with ok = false.
/// The result does not depend on opt.threads.
MPFit marchenko_pastur_fit(const double* evals, std::size_t n, double Q, double M, const MPFitOptions& opt);

/// The squared-residual objective J(σ) of the fit for eigenvalues already rescaled to mean 1 (exposed for
/// tests and plots): evaluates J at each of `count` values of σ.
std::vector<double> marchenko_pastur_objective(const double* rescaled, std::size_t n, double Q,
                                               const double* sigmas, std::size_t count, const MPFitOptions& opt);

/// Jensen–Shannon distance as WeightWatcher computes it (scipy.stats.entropy, natural log), elementwise over
/// positions: m = (p + q)/2, D = (KL(p/Σp ‖ m/Σm) + KL(q/Σq ‖ m/Σm))/2, distance = √D (NaN if D < 0 by
/// rounding or a vector sums to 0). Throws std::invalid_argument for n == 0, NaN/Inf or negative entries.
double jensen_shannon_distance(const double* p, const double* q, std::size_t n);

/// The PRNG behind shuffle_elements: splitmix64 (Steele, Lea & Flood 2014; the constants of Vigna's public
/// domain reference). state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
/// z = (z ^ z>>27)·0x94D049BB133111EB; return z ^ z>>31. Plain 64-bit integer arithmetic: the same stream
/// on every platform and compiler.
struct SplitMix64 {
  std::uint64_t state;
  explicit SplitMix64(std::uint64_t seed) : state(seed) {}
  std::uint64_t next();
  /// Uniform integer in [0, bound), bound >= 1, without bias (Lemire 2019: multiply-shift with rejection).
  std::uint64_t below(std::uint64_t bound);
};

/// Seed of the independent stream number `stream` under the user's `seed`: two splitmix64 steps of
/// seed ^ mix(stream), so streams of nearby seeds and nearby indices are unrelated.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream);

/// Shuffles the elements of each slice of `slices` (all the same shape rows×cols) `replicas` times.
/// out holds replicas·k C-contiguous rows×cols matrices: out[r·k + s] is slice s read in row-major order,
/// then permuted by a Fisher–Yates (Durstenfeld) shuffle driven by SplitMix64(stream_seed(seed, r·k + s)):
/// for i = L−1 … 1: swap(a[i], a[below(i + 1)]). The output depends only on the values, the seed and the
/// shape, never on strides or on the thread count. T must match the slices' dtype.
template <class T>
void shuffle_elements(const std::vector<MatrixView>& slices, std::int64_t replicas, std::uint64_t seed, T* out,
                      int threads);

}  // namespace hts
