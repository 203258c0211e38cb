// Truncated power law p(x) = x^(-alpha) e^(-Lambda x) · Lambda^(1-alpha) / Γ(1-alpha, Lambda xmin), x >= xmin:
// the maximum-likelihood fit at each xmin candidate and its KS distance, as the powerlaw 1.5 package computes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hts {

struct TplFit {
  double alpha = 0, Lambda = 0, D = 0, loglikelihood = 0;
  bool in_range = false;  ///< Lambda > 0 and alpha > 1
};

/// The fit on the values x[0..n) (ascending, all >= xmin > 0) with the given lower bound xmin (D is NaN).
TplFit tpl_fit_tail(const double* x, std::size_t n, double xmin);

/// Fits the tail x[i..n) for every candidate index i in `idx` (x ascending, positive; each x[i] the first of its
/// value). Candidates are independent and spread over `threads` threads (0 = all cores): the result does not
/// depend on the thread count. `exact`: every D exact; otherwise only the D that can be the smallest among the
/// candidates in the domain are (the others are lower bounds above it), which is what the xmin choice needs.
/// Throws std::invalid_argument for bad input.
std::vector<TplFit> tpl_scan(const double* x, std::size_t n, const std::int64_t* idx, std::size_t k, int threads,
                             bool exact = true);

}  // namespace hts
