#include "powerlaw.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "parallel.hpp"

namespace hts {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Sorted data, their logs and the suffix sums Σ_{j>=i} ln x_j (Neumaier-compensated).
struct Sample {
  std::vector<double> x, lx, suffix;

  explicit Sample(std::vector<double> sorted) : x(std::move(sorted)), lx(x.size()), suffix(x.size() + 1, 0.0) {
    for (std::size_t i = 0; i < x.size(); ++i) lx[i] = std::log(x[i]);
    double sum = 0.0, comp = 0.0;
    for (std::size_t i = x.size(); i-- > 0;) {
      const double t = sum + lx[i];
      comp += std::fabs(sum) >= std::fabs(lx[i]) ? (sum - t) + lx[i] : (lx[i] - t) + sum;
      sum = t;
      suffix[i] = sum + comp;
    }
  }
  std::size_t size() const { return x.size(); }
  /// S_i = Σ_{j>=i} ln(x_j / x_i) >= 0.
  double log_excess(std::size_t i) const {
    if (x[i] == x.back()) return 0.0;  // a tied tail: exactly 0, not rounding noise
    const double m = static_cast<double>(size() - i);
    return std::max(0.0, suffix[i] - m * lx[i]);
  }
};

/// One-sided KS distance of the tail x_i.. against the power law with exponent alpha:
/// D = max_k |1 - (x_{i+k}/x_i)^(1-alpha) - k/m|, k = 0..m-1. Stops early (returning a value > bound) once
/// the running maximum exceeds `bound`; the exact D whenever D <= bound.
double ks_distance(const Sample& s, std::size_t i, double alpha, double bound) {
  const std::size_t m = s.size() - i;
  const double inv_m = 1.0 / static_cast<double>(m);
  const double b = 1.0 - alpha;
  const double l0 = s.lx[i];
  const double* lx = s.lx.data() + i;
  auto term = [&](std::size_t k) {
    const double d = lx[k] - l0;
    // (x/xmin)^b with pow's conventions: 1^b = 1 even for an infinite exponent.
    const double cdf = 1.0 - (d == 0.0 ? 1.0 : std::exp(b * d));
    return std::fabs(cdf - static_cast<double>(k) * inv_m);
  };
  double worst = 0.0;
  // A coarse pass first: most candidates are rejected after a few evaluations.
  constexpr std::size_t stride = 16;
  if (m > 4 * stride) {
    for (std::size_t k = 0; k < m; k += stride) {
      worst = std::max(worst, term(k));
      if (worst > bound) return worst;
    }
  }
  for (std::size_t k = 0; k < m; ++k) {
    worst = std::max(worst, term(k));
    if (worst > bound) return worst;
  }
  return worst;
}

struct Candidate {
  std::size_t i;
  double alpha, D;
  bool scored;  ///< D is computed by the KS scan; otherwise D keeps its fixed value
};

/// Scores candidates (exactly, or pruned against the best so far) and returns the first index of the minimum D.
std::size_t best_candidate(const Sample& s, std::vector<Candidate>& cand, bool exact_all, int threads) {
  constexpr std::size_t chunk = 64;
  const std::size_t chunks = (cand.size() + chunk - 1) / chunk;
  std::atomic<double> best{kInf};
  auto lower_best = [&](double d) {
    double cur = best.load(std::memory_order_relaxed);
    while (d < cur && !best.compare_exchange_weak(cur, d, std::memory_order_relaxed)) {
    }
  };
  auto score = [&](Candidate& c, double bound) {
    if (!c.scored) return;
    c.D = ks_distance(s, c.i, c.alpha, bound);
    if (c.D <= bound) lower_best(c.D);
  };
  // Small work: one thread. Large: a spread-out sample first gives a tight bound for the pruned pass.
  const int workers = cand.size() * s.size() < 2000000 ? 1 : threads;
  if (exact_all) {
    parallel_for(chunks, workers, [&](std::size_t c) {
      for (std::size_t j = c * chunk; j < std::min(cand.size(), (c + 1) * chunk); ++j) score(cand[j], kInf);
    });
  } else {
    std::vector<char> done(cand.size(), 0);
    const std::size_t step = std::max<std::size_t>(1, cand.size() / 64);
    std::vector<std::size_t> probe;
    for (std::size_t j = 0; j < cand.size(); j += step) probe.push_back(j);
    parallel_for(probe.size(), workers, [&](std::size_t p) { score(cand[probe[p]], kInf); });
    for (std::size_t j : probe) done[j] = 1;
    parallel_for(chunks, workers, [&](std::size_t c) {
      for (std::size_t j = c * chunk; j < std::min(cand.size(), (c + 1) * chunk); ++j)
        if (!done[j]) score(cand[j], best.load(std::memory_order_relaxed));
    });
  }
  // D of a pruned candidate exceeds the final minimum, so the first exact minimum is the answer.
  std::size_t arg = cand.size();
  for (std::size_t j = 0; j < cand.size(); ++j)
    if (!std::isnan(cand[j].D) && (arg == cand.size() || cand[j].D < cand[arg].D)) arg = j;
  return arg;
}

}  // namespace

PowerLawFit fit_power_law(const double* evals, std::size_t n_all, const PowerLawOptions& opt) {
  if (opt.small_n_min_tail < 2 || opt.max_candidates < 0 || opt.max_candidates == 1)
    throw std::invalid_argument("bad power-law fit options");
  PowerLawFit fit;
  std::vector<double> data;
  data.reserve(n_all);
  for (std::size_t i = 0; i < n_all; ++i) {
    if (std::isnan(evals[i])) throw std::invalid_argument("eigenvalues contain NaN");
    if (evals[i] > opt.evals_thresh) data.push_back(evals[i]);
  }
  std::sort(data.begin(), data.end());
  fit.n_fit = static_cast<std::int64_t>(data.size());
  if (!data.empty() && std::isinf(data.back())) {
    fit.reason = "eigenvalues contain Inf";
    return fit;
  }
  if (data.size() < 2) {
    fit.reason = "fewer than 2 eigenvalues above " + std::to_string(opt.evals_thresh);
    return fit;
  }
  const Sample s(std::move(data));
  const std::size_t n = s.size();
  fit.xmax = s.x.back();
  fit.small_n = static_cast<std::int64_t>(n) < opt.small_n;

  std::vector<Candidate> cand;
  if (!fit.small_n) {
    // Every value but the largest is a candidate xmin; alpha = 1 + m / S_i (continuous MLE); D = 1 if alpha <= 1.
    std::size_t count = n - 1, want = count;
    if (opt.max_candidates > 0 && static_cast<std::size_t>(opt.max_candidates) < count)
      want = static_cast<std::size_t>(opt.max_candidates);
    cand.reserve(want);
    for (std::size_t j = 0; j < want; ++j) {
      const std::size_t i = want == count ? j : static_cast<std::size_t>(std::llround(
                                                    static_cast<double>(j) * (count - 1) / (want - 1)));
      const double m = static_cast<double>(n - i);
      const double alpha = 1.0 + m / s.log_excess(i);
      cand.push_back({i, alpha, 1.0, alpha > 1.0});
    }
  } else {
    // Small samples (WeightWatcher 0.7.7's small-n fitter): every value but the largest is a candidate, but
    // only tails of at least small_n_min_tail values with S_i > 1e-12 are scored, with the bias-corrected
    // alpha = 1 + (m - 1) / S_i; the others keep alpha = 0 and D = 1.
    const std::size_t kmin = static_cast<std::size_t>(opt.small_n_min_tail);
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const std::size_t m = n - i;
      const double S = s.log_excess(i);
      Candidate c{i, 0.0, 1.0, false};
      if (m >= kmin && S > 1e-12) {
        c.alpha = 1.0 + (static_cast<double>(m) - 1.0) / S;
        c.scored = c.alpha > 1.0;
      }
      cand.push_back(c);
    }
  }

  std::size_t arg = best_candidate(s, cand, opt.want_curve, opt.threads);
  if (fit.small_n && std::none_of(cand.begin(), cand.end(), [](const Candidate& c) { return c.scored; })) {
    // No tail long enough (n < small_n_min_tail) or all tied: the whole sample is the tail.
    const double S = s.log_excess(0);
    if (S > 1e-12) {
      Candidate& c = cand[0];
      c.alpha = 1.0 + (static_cast<double>(n) - 1.0) / S;
      c.D = ks_distance(s, 0, c.alpha, kInf);
      arg = 0;
    }
  }
  if (opt.want_curve) {
    for (const Candidate& c : cand) {
      fit.curve_xmin.push_back(s.x[c.i]);
      fit.curve_alpha.push_back(c.alpha);
      fit.curve_D.push_back(c.D);
    }
  }
  if (arg == cand.size() || !std::isfinite(cand[arg].D) || !(cand[arg].alpha > 1.0)) {
    fit.reason = "no xmin candidate gives a power law with alpha > 1 (are the eigenvalues tied?)";
    return fit;
  }
  const Candidate& c = cand[arg];
  const double m = static_cast<double>(n - c.i);
  fit.ok = std::isfinite(c.alpha);
  if (!fit.ok) fit.reason = "alpha is infinite: every value of the best tail is equal";
  fit.alpha = c.alpha;
  fit.xmin = s.x[c.i];
  fit.D = c.D;
  fit.sigma = (c.alpha - 1.0) / std::sqrt(m);
  fit.tail = static_cast<std::int64_t>(n - c.i);
  for (std::size_t i = 0; i < n_all; ++i) fit.num_pl_spikes += evals[i] >= fit.xmin ? 1 : 0;
  return fit;
}

}  // namespace hts
