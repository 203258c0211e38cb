// Compiled with -ffp-contract=off: the Nelder–Mead steps reproduce scipy's (numpy's) rounding operation for
// operation, so that hts and powerlaw 1.5 take the same path through the simplex.
#include "tpl.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "incgamma.hpp"
#include "parallel.hpp"

namespace hts {
namespace {

constexpr double kTiny = 1e-307;  // powerlaw's 10**float_info.min_10_exp
const double kLogTiny = std::log(kTiny);
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Neumaier-compensated suffix sums of v: out[i] = Σ_{j>=i} v[j].
std::vector<double> suffix_sums(const std::vector<double>& v) {
  std::vector<double> out(v.size() + 1, 0.0);
  double sum = 0.0, comp = 0.0;
  for (std::size_t i = v.size(); i-- > 0;) {
    const double t = sum + v[i];
    comp += std::fabs(sum) >= std::fabs(v[i]) ? (sum - t) + v[i] : (v[i] - t) + sum;
    sum = t;
    out[i] = sum + comp;
  }
  return out;
}

struct Data {
  const double* x;
  std::size_t n;
  std::vector<double> lx, sum_lx, sum_x, first;  // first[j]: index of the first value equal to x[j]
};

/// Γ(1 − alpha, Lambda·x) as a double (what float(mpmath.gammainc(...)) gives: inf / 0 beyond the range).
double upper_gamma(double a, double z) { return std::exp(log_upper_gamma(a, z)); }

/// −Σ ln p(x_j) over the tail x[i..n) (all >= xmin), powerlaw's objective (out-of-range parameters: every
/// p = 1e-307).
double neg_loglik(const Data& d, std::size_t i, double xmin, double alpha, double Lambda) {
  const double m = static_cast<double>(d.n - i);
  if (!(Lambda > 0 && alpha > 1)) return -(m * kLogTiny);
  const double a = 1.0 - alpha;
  const double lg = log_upper_gamma(a, Lambda * xmin);
  const double pw = std::pow(Lambda, a);
  const double logC = a * std::log(Lambda) - lg;
  // ln p is decreasing in x: its extremes are at the ends of the tail.
  const double top = -alpha * d.lx[i] - Lambda * d.x[i] + logC;
  const double bottom = -alpha * d.lx[d.n - 1] - Lambda * d.x[d.n - 1] + logC;
  if (std::isfinite(pw) && pw > 1e-300 && std::fabs(lg) < 700 && top < 700 && bottom > -700)
    return -(-alpha * d.sum_lx[i] - Lambda * d.sum_x[i] + m * logC);
  // Near under/overflow: powerlaw's double arithmetic point by point.
  const double C = pw / std::exp(lg);
  double s = 0.0;
  for (std::size_t j = i; j < d.n; ++j) {
    double l = std::pow(d.x[j], -alpha) * std::exp(-Lambda * d.x[j]) * C;
    if (l == 0.0) l = kTiny;
    s += std::log(l);
  }
  return -s;
}

bool nan_last_less(double a, double b) { return a < b || (!std::isnan(a) && std::isnan(b)); }

/// scipy.optimize.fmin (Nelder–Mead, defaults: xatol = fatol = 1e-4, 400 iterations and calls for 2 variables),
/// step for step as hts.likelihood_ratio._nelder_mead.
template <class F>
std::array<double, 2> nelder_mead_2d(F&& func, std::array<double, 2> x0) {
  using P = std::array<double, 2>;
  constexpr int N = 2, maxfun = 400, maxiter = 400;
  constexpr double rho = 1.0, chi = 2.0, psi = 0.5, sigma = 0.5;
  std::array<P, 3> sim{};
  std::array<double, 3> fsim{};
  sim[0] = x0;
  for (int k = 0; k < N; ++k) {
    P y = x0;
    y[k] = y[k] != 0 ? (1 + 0.05) * y[k] : 0.00025;
    sim[k + 1] = y;
  }
  int calls = 0;
  auto f = [&](const P& p, double& out) {
    if (calls >= maxfun) return false;
    ++calls;
    out = func(p[0], p[1]);
    return true;
  };
  auto sort = [&]() {  // numpy's argsort of 3 values: stable, NaN last
    for (int a = 1; a < 3; ++a)
      for (int b = a; b > 0 && nan_last_less(fsim[b], fsim[b - 1]); --b) {
        std::swap(fsim[b], fsim[b - 1]);
        std::swap(sim[b], sim[b - 1]);
      }
  };
  fsim.fill(std::numeric_limits<double>::infinity());
  for (int k = 0; k < N + 1; ++k)
    if (!f(sim[k], fsim[k])) break;
  sort();
  auto nan_max = [](double acc, double v) { return std::isnan(acc) || std::isnan(v) ? kNaN : std::max(acc, v); };
  int iterations = 1;
  while (calls < maxfun && iterations < maxiter) {
    [&] {
      double dx = 0.0, df = 0.0;
      for (int j = 1; j <= N; ++j) {
        for (int k = 0; k < N; ++k) dx = nan_max(dx, std::fabs(sim[j][k] - sim[0][k]));
        df = nan_max(df, std::fabs(fsim[0] - fsim[j]));
      }
      if (dx <= 1e-4 && df <= 1e-4) {
        iterations = maxiter;  // converged: leave the loop (after the sort, which changes nothing)
        return;
      }
      P xbar, xr;
      for (int k = 0; k < N; ++k) xbar[k] = (sim[0][k] + sim[1][k]) / N;
      for (int k = 0; k < N; ++k) xr[k] = (1 + rho) * xbar[k] - rho * sim[2][k];
      double fxr;
      if (!f(xr, fxr)) return;
      bool shrink = false;
      if (fxr < fsim[0]) {
        P xe;
        for (int k = 0; k < N; ++k) xe[k] = (1 + rho * chi) * xbar[k] - rho * chi * sim[2][k];
        double fxe;
        if (!f(xe, fxe)) return;
        if (fxe < fxr) {
          sim[2] = xe, fsim[2] = fxe;
        } else {
          sim[2] = xr, fsim[2] = fxr;
        }
      } else if (fxr < fsim[1]) {
        sim[2] = xr, fsim[2] = fxr;
      } else {
        if (fxr < fsim[2]) {
          P xc;
          for (int k = 0; k < N; ++k) xc[k] = (1 + psi * rho) * xbar[k] - psi * rho * sim[2][k];
          double fxc;
          if (!f(xc, fxc)) return;
          if (fxc <= fxr) {
            sim[2] = xc, fsim[2] = fxc;
          } else {
            shrink = true;
          }
        } else {
          P xcc;
          for (int k = 0; k < N; ++k) xcc[k] = (1 - psi) * xbar[k] + psi * sim[2][k];
          double fxcc;
          if (!f(xcc, fxcc)) return;
          if (fxcc < fsim[2]) {
            sim[2] = xcc, fsim[2] = fxcc;
          } else {
            shrink = true;
          }
        }
        if (shrink) {
          for (int j = 1; j <= N; ++j) {
            for (int k = 0; k < N; ++k) sim[j][k] = sim[0][k] + sigma * (sim[j][k] - sim[0][k]);
            if (!f(sim[j], fsim[j])) return;
          }
        }
      }
      ++iterations;
    }();
    sort();
  }
  return sim[0];
}

/// powerlaw's KS distance of the fitted law on the tail x[i..n) (Distribution.KS with a parent Fit).
/// With a finite `bound` the scan stops as soon as the running maximum exceeds it (a coarse pass over every 16th
/// point first) and returns that partial maximum (> bound): the exact D whenever D <= bound.
double ks_distance(const Data& d, std::size_t i, double alpha, double Lambda, bool in_range,
                   double bound = std::numeric_limits<double>::infinity()) {
  const double n = static_cast<double>(d.n);
  const double dropped = static_cast<double>(i) / n;
  const double a = 1.0 - alpha;
  double cdf_xmin = 0.0, pw = 0.0;
  if (in_range) {
    pw = std::pow(Lambda, a);
    cdf_xmin = 1.0 - upper_gamma(a, Lambda * d.x[i]) / pw;
  }
  double dplus = -std::numeric_limits<double>::infinity(), dminus = dplus;
  bool nan = false;
  // |diff| at point j: a tied value's bin is that of its first occurrence (first[j]), so any j may be probed.
  auto diff_at = [&](std::size_t j) {
    const double actual = (d.first[j] / n - dropped) / (1 - dropped);
    double theory;
    if (!in_range) {
      theory = kTiny;
    } else if (cdf_xmin == 1.0) {
      theory = 1.0;
    } else {
      const double base = 1.0 - upper_gamma(a, Lambda * d.x[j]) / pw;
      theory = (base - cdf_xmin) / (1.0 - cdf_xmin);
    }
    return theory - actual;
  };
  if (std::isfinite(bound)) {  // (a scan that never exceeds the bound, e.g. through a NaN, is redone exactly)
    constexpr std::size_t stride = 16;
    for (std::size_t j = i; j < d.n; j += stride) {
      const double e = std::fabs(diff_at(j));
      if (e > bound) return e;
    }
    for (std::size_t j = i; j < d.n; ++j) {
      const double e = std::fabs(diff_at(j));
      if (e > bound) return e;
    }
  }
  for (std::size_t j = i; j < d.n; ++j) {
    if (j > i && d.x[j] == d.x[j - 1]) continue;  // one bin per distinct value
    const double diff = diff_at(j);
    if (std::isnan(diff)) nan = true;
    dplus = std::max(dplus, diff);
    dminus = std::max(dminus, -diff);
  }
  return nan ? kNaN : std::max(dplus, dminus);
}


Data make_data(const double* x, std::size_t n) {
  Data d{x, n, std::vector<double>(n), {}, {}, std::vector<double>(n)};
  for (std::size_t j = 0; j < n; ++j) {
    if (!(x[j] > 0) || !std::isfinite(x[j])) throw std::invalid_argument("tpl: values must be finite and > 0");
    if (j > 0 && x[j] < x[j - 1]) throw std::invalid_argument("tpl: values must be ascending");
    d.lx[j] = std::log(x[j]);
    d.first[j] = j > 0 && x[j] == x[j - 1] ? d.first[j - 1] : static_cast<double>(j);
  }
  d.sum_lx = suffix_sums(d.lx);
  d.sum_x = suffix_sums(std::vector<double>(x, x + n));
  return d;
}

/// powerlaw's Nelder–Mead fit on x[i..n) with lower bound xmin, from (1 + m/Σ ln(x/xmin), 1/mean x).
TplFit fit_tail(const Data& d, std::size_t i, double xmin) {
  const double m = static_cast<double>(d.n - i);
  const double S = d.sum_lx[i] - m * std::log(xmin);
  const double alpha0 = 1 + m / S, Lambda0 = 1 / (d.sum_x[i] / m);
  const auto p = nelder_mead_2d([&](double al, double la) { return neg_loglik(d, i, xmin, al, la); },
                                {alpha0, Lambda0});
  TplFit r;
  r.alpha = p[0];
  r.Lambda = p[1];
  r.in_range = r.Lambda > 0 && r.alpha > 1;
  r.loglikelihood = -neg_loglik(d, i, xmin, r.alpha, r.Lambda);
  r.D = kNaN;
  return r;
}

}  // namespace

TplFit tpl_fit_tail(const double* x, std::size_t n, double xmin) {
  if (n < 1) throw std::invalid_argument("tpl_fit_tail: no values");
  if (!(xmin > 0) || !(xmin <= x[0])) throw std::invalid_argument("tpl_fit_tail: need 0 < xmin <= the smallest value");
  const Data d = make_data(x, n);
  return fit_tail(d, 0, xmin);
}

std::vector<TplFit> tpl_scan(const double* x, std::size_t n, const std::int64_t* idx, std::size_t k, int threads,
                             bool exact) {
  const Data d = make_data(x, n);
  for (std::size_t c = 0; c < k; ++c) {
    if (idx[c] < 0 || static_cast<std::size_t>(idx[c]) + 1 >= n)
      throw std::invalid_argument("tpl_scan: candidate index out of range (a tail needs 2 values)");
    if (idx[c] > 0 && x[idx[c]] == x[idx[c] - 1])
      throw std::invalid_argument("tpl_scan: a candidate must be the first of its value");
  }
  std::vector<TplFit> out(k);
  parallel_for(k, threads, [&](std::size_t c) {
    const std::size_t i = static_cast<std::size_t>(idx[c]);
    out[c] = fit_tail(d, i, x[i]);
  });
  auto score = [&](std::size_t c, double bound) {
    const TplFit& r = out[c];
    out[c].D = ks_distance(d, static_cast<std::size_t>(idx[c]), r.alpha, r.Lambda, r.in_range, r.in_range ? bound
                                                                                                   : kInf);
  };
  if (exact) {
    parallel_for(k, threads, [&](std::size_t c) { score(c, kInf); });
    return out;
  }
  // Pruned: the exact D of ~64 evenly spread candidates gives a bound B (the smallest D among those in the
  // domain); every other candidate's scan stops once it exceeds B. B depends only on the data, so the result
  // does not depend on the threads; the minimum (over candidates in the domain) is exact, as it is <= B.
  const std::size_t step = std::max<std::size_t>(1, k / 64);
  std::vector<std::size_t> probes;
  for (std::size_t c = 0; c < k; c += step) probes.push_back(c);
  parallel_for(probes.size(), threads, [&](std::size_t p) { score(probes[p], kInf); });
  double bound = kInf;
  for (std::size_t c : probes)
    if (out[c].in_range && out[c].D < bound) bound = out[c].D;
  std::vector<char> done(k, 0);
  for (std::size_t c : probes) done[c] = 1;
  parallel_for(k, threads, [&](std::size_t c) {
    if (!done[c]) score(c, bound);
  });
  return out;
}

}  // namespace hts
