#include "norms.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace hts {

SpectrumStats spectrum_stats(const double* evals, std::int64_t n, double N, double tolerance) {
  if (n <= 0) throw std::invalid_argument("no eigenvalues");
  SpectrumStats st;
  st.count = n;
  st.lambda_min = std::numeric_limits<double>::infinity();
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = evals[i];
    if (std::isnan(v) || v < 0) throw std::invalid_argument("eigenvalues must be >= 0 and not NaN");
    st.sum += v;
    st.lambda_max = std::max(st.lambda_max, v);
    st.lambda_min = std::min(st.lambda_min, v);
    st.weak_rank_loss += v < tolerance ? 1 : 0;
  }
  st.stable_rank = st.sum / st.lambda_max;  // NaN for an all-zero spectrum, as 0/0
  const double rank_tol = std::sqrt(st.lambda_max) * N * std::numeric_limits<double>::epsilon();
  constexpr double eps = 1e-10;
  double plogp = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    st.matrix_rank += std::sqrt(evals[i]) > rank_tol ? 1 : 0;
    const double p = evals[i] / st.sum + eps;
    plogp += p * std::log(p);
  }
  st.entropy = -plogp / std::log(static_cast<double>(st.matrix_rank) + eps);
  return st;
}

double log10_alpha_norm(const double* evals, std::int64_t n, double alpha) {
  if (std::isnan(alpha)) return std::nan("");
  double lmax = 0.0;
  for (std::int64_t i = 0; i < n; ++i) lmax = std::max(lmax, evals[i]);
  if (!(lmax > 0.0)) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (std::int64_t i = 0; i < n; ++i) sum += std::pow(evals[i] / lmax, alpha);
  return alpha * std::log10(lmax) + std::log10(sum);
}

double frobenius_norm_sq(const MatrixView& m) {
  double sum = 0.0;
  auto add = [&](const auto* base) {
    for (std::int64_t i = 0; i < m.rows; ++i)
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const double v = static_cast<double>(base[i * m.row_stride + j * m.col_stride]);
        sum += v * v;
      }
  };
  if (m.dtype == DType::f64) add(static_cast<const double*>(m.data));
  else add(static_cast<const float*>(m.data));
  return sum;
}

}  // namespace hts
