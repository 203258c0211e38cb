// Random-matrix-theory layer metrics (WeightWatcher 0.7.7's mp_fit=True and randomize=True):
// the Marchenko–Pastur bulk fit and the Jensen–Shannon distance between two spectra (the element shuffle
// lives in shuffle.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eigen_batch.hpp"
#include "shuffle.hpp"  // the element shuffle of randomize=True

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

}  // namespace hts
