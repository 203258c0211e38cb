// Continuous power-law fit p(x) ~ x^(-alpha) for x >= xmin, xmin chosen by the smallest KS distance.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hts {

struct PowerLawOptions {
  double evals_thresh = 1e-5;           ///< only eigenvalues > this are fitted (absolute, as WeightWatcher)
  int threads = 1;                      ///< threads for the KS scan, 0 = all cores
  std::int64_t small_n = 20;            ///< fewer fitted values than this: the small-sample fitter
  std::int64_t small_n_min_tail = 8;    ///< the small-sample fitter's shortest tail
  std::int64_t max_candidates = 0;      ///< 0 = every candidate (exact); else that many, evenly spaced
  bool want_curve = false;              ///< also return alpha and D for every candidate (no pruning)
};

struct PowerLawFit {
  bool ok = false;
  std::string reason;            ///< why the fit failed, empty on success
  double alpha = 0, xmin = 0, xmax = 0, D = 0, sigma = 0;
  std::int64_t num_pl_spikes = 0;  ///< eigenvalues >= xmin (of all those given)
  std::int64_t n_fit = 0;          ///< eigenvalues > evals_thresh
  std::int64_t tail = 0;           ///< m, fitted values >= xmin
  bool small_n = false;
  std::vector<double> curve_xmin, curve_alpha, curve_D;  ///< per candidate, when want_curve
};

/// Fits eigenvalues `evals` (any order, n values). Never throws for data reasons: a fit that cannot be made
/// comes back with ok = false and a reason. Throws std::invalid_argument for NaN input or bad options.
PowerLawFit fit_power_law(const double* evals, std::size_t n, const PowerLawOptions& opt);

}  // namespace hts
