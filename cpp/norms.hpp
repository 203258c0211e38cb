// Norms and scalar metrics of a layer from its eigenvalues λ_i (= squared singular values of W).
#pragma once

#include <cstdint>

#include "eigen_batch.hpp"

namespace hts {

struct SpectrumStats {
  std::int64_t count = 0;       ///< number of eigenvalues
  double sum = 0;               ///< Σλ = ‖W‖_F²
  double lambda_max = 0;        ///< max λ = ‖W‖₂²
  double lambda_min = 0;        ///< min λ
  double stable_rank = 0;       ///< Σλ / λ_max
  std::int64_t matrix_rank = 0; ///< #(√λ > √λ_max · N · eps64)
  std::int64_t weak_rank_loss = 0;  ///< #(λ < tolerance)
  double entropy = 0;           ///< −Σ p ln p / ln(rank + 1e-10), p = λ/Σλ + 1e-10
};

/// Statistics of n eigenvalues; N is the larger dimension of the matrix (for the rank tolerance).
/// Throws std::invalid_argument for NaN, negative values or n == 0.
SpectrumStats spectrum_stats(const double* evals, std::int64_t n, double N, double tolerance);

/// log10 Σ λ_i^alpha, computed as alpha·log10 λ_max + log10 Σ (λ_i/λ_max)^alpha so that it never overflows.
/// −inf when every λ is 0; NaN when alpha is NaN.
double log10_alpha_norm(const double* evals, std::int64_t n, double alpha);

/// ‖W‖_F² of a matrix, accumulated in float64.
double frobenius_norm_sq(const MatrixView& m);

}  // namespace hts
