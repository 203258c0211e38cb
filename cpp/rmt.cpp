// Marchenko–Pastur fit and Jensen–Shannon distance (see rmt.hpp).
//
// Bit-for-bit notes. WeightWatcher evaluates these formulas with numpy/scipy; to give the same doubles the
// arithmetic below keeps numpy's order of operations: np.sum is numpy's pairwise sum (pairwise_sum), a
// numpy-array square is x·x while a numpy-scalar `x**2` calls the C library's pow (libm_pow), and this file
// is compiled with floating-point contraction off (no fused multiply-add; see CMakeLists.txt).
#include "rmt.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "parallel.hpp"

namespace hts {
namespace {

constexpr double kPi = 3.141592653589793;  // numpy.pi
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMax = std::numeric_limits<double>::max();

/// pow from the C library, never folded by the compiler (pow(x, 2.0) would otherwise become x·x).
double libm_pow(double x, double y) {
  volatile double e = y;
  return std::pow(x, e);
}

/// numpy.nan_to_num: NaN -> 0, ±inf -> ±DBL_MAX.
inline double nan_to_num(double v) {
  if (std::isnan(v)) return 0.0;
  if (std::isinf(v)) return v > 0 ? kMax : -kMax;
  return v;
}

void check_eigenvalues(const double* v, std::size_t n, const char* what) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      throw std::invalid_argument(std::string(what) + ": eigenvalue " + std::to_string(i) + " is " +
                                  (std::isfinite(v[i]) ? "negative" : "NaN or infinite"));
}

// ------------------------------------------------------------------------------------------------------
// The kernel density estimate of the fitted data, on its fixed grid; computed once per fit.
struct Density {
  std::vector<double> t, f;   // kept grid points (density > floor) and their densities, t ascending
  std::size_t n_low = 0;      // grid points with density < floor: zero residuals appended after the kept ones
  double t_peak = 0, t_last = 0;

  std::size_t residual_count() const { return t.size() + n_low; }
};

/// Linear-kernel KDE f(t) = (1/(n h)) Σ_{|t − x_i| < h} (1 − |t − x_i|/h) at linspace(0, max x + 0.5, G),
/// normalised as scikit-learn does it (log Σ + log kernel norm − log n, then exp). x is sorted ascending.
Density kernel_density(const std::vector<double>& x, const MPFitOptions& opt) {
  const std::size_t G = static_cast<std::size_t>(opt.kde_points);
  const double h = opt.bandwidth;
  const double stop = x.back() + 0.5;
  const double step = stop / static_cast<double>(G - 1);
  std::vector<double> grid(G), dens(G);
  for (std::size_t j = 0; j + 1 < G; ++j) grid[j] = static_cast<double>(j) * step;
  grid[G - 1] = stop;

  const double log_unit_ball = 0.5 * std::log(kPi) - std::lgamma(1.5);  // log of the 1-ball's volume, 2
  const double log_norm = -(log_unit_ball - std::log(2.0)) - std::log(h);
  const double log_n = std::log(static_cast<double>(x.size()));
  const double inv_h = 1.0 / h;
  // Threads only pay for themselves on long spectra (each grid point sums ~n·2h/(max x) kernel terms).
  const std::size_t chunks = std::min<std::size_t>(G, 16);
  parallel_for(chunks, x.size() >= 4096 ? opt.threads : 1, [&](std::size_t c) {
    for (std::size_t j = c * G / chunks; j < (c + 1) * G / chunks; ++j) {
      const double t = grid[j];
      const double slack = 1e-9 * (std::fabs(t) + h);  // the exact |t − x| < h test below decides
      const std::size_t lo = static_cast<std::size_t>(std::lower_bound(x.begin(), x.end(), t - h - slack) - x.begin());
      const std::size_t hi = static_cast<std::size_t>(std::upper_bound(x.begin(), x.end(), t + h + slack) - x.begin());
      if (x.size() <= 80) {
        // scikit-learn's KDTree (leaf_size 40) is a single leaf up to 80 points: it sums the kernel in log
        // space, in input order. Doing the same reproduces its last bits, which decide the KDE's argmax when
        // two grid points tie exactly (seen on a 25-eigenvalue depthwise layer of EfficientNet-Lite0).
        double g = -std::numeric_limits<double>::infinity();
        for (std::size_t i = lo; i < hi; ++i) {  // terms outside [lo, hi) are -inf: logaddexp(g, -inf) == g
          const double d = std::fabs(t - x[i]);
          const double lk = d < h ? std::log(1.0 - d / h) : -std::numeric_limits<double>::infinity();
          const double m = std::fmax(g, lk);
          if (m != -std::numeric_limits<double>::infinity()) g = m + std::log(std::exp(g - m) + std::exp(lk - m));
        }
        dens[j] = std::exp((g + log_norm) - log_n);
        continue;
      }
      // Longer spectra: four interleaved partial sums (the kernel sum is latency-bound otherwise);
      // scikit-learn's tree order there is not reproduced, so its last bits may differ (~1e-15 relative).
      double acc[4] = {0.0, 0.0, 0.0, 0.0};
      std::size_t i = lo;
      for (; i + 4 <= hi; i += 4)
        for (int q = 0; q < 4; ++q) {
          const double d = std::fabs(t - x[i + q]);
          acc[q] += d < h ? 1.0 - d * inv_h : 0.0;
        }
      for (; i < hi; ++i) {
        const double d = std::fabs(t - x[i]);
        acc[0] += d < h ? 1.0 - d * inv_h : 0.0;
      }
      const double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
      dens[j] = s > 0 ? std::exp(std::log(s) + log_norm - log_n) : 0.0;
    }
  });

  Density k;
  std::size_t peak = 0;
  for (std::size_t j = 0; j < G; ++j) {
    if (dens[j] > opt.density_floor) {
      if (k.f.empty() || dens[j] > k.f[peak]) peak = k.f.size();
      k.t.push_back(grid[j]);
      k.f.push_back(dens[j]);
    } else if (dens[j] < opt.density_floor) {
      ++k.n_low;  // a density exactly at the floor is neither kept nor counted (as in WeightWatcher)
    }
  }
  if (!k.t.empty()) {
    k.t_peak = k.t[peak];
    k.t_last = k.t.back();
  }
  return k;
}

/// J(σ) = Σ (ρ_σ(t) − f(t))² over the kept KDE points, plus zeros for the dropped low-density points.
class Objective {
 public:
  Objective(const Density& k, double Q, const MPFitOptions& opt)
      : k_(k), qc_(Q == 1.0), r_(std::sqrt(1.0 / Q)), y_(1.0 / Q), penalty_(opt.penalty) {}

  /// buf: residual_count() doubles whose tail past the kept points is zero (the caller's scratch).
  double operator()(double sigma, double* buf) const {
    const std::size_t m = k_.t.size();
    const double* t = k_.t.data();
    const double* f = k_.f.data();
    if (qc_) {
      // Quarter-circle law of the singular values: ρ(ν) = √(4 − ν²)/(π σ²); its support does not move with σ.
      const double c = 1.0 / ((kPi * sigma) * sigma);
      for (std::size_t j = 0; j < m; ++j) {
        const double v = nan_to_num(c * std::sqrt(std::max(4.0 - t[j] * t[j], 0.0))) - f[j];
        buf[j] = v * v;
      }
    } else {
      const double up = sigma * (1.0 + r_), lo = sigma * (1.0 - r_);
      const double b = up * up, a = lo * lo;  // bulk edges
      if (b < k_.t_peak || b > k_.t_last || a > k_.t_peak) {
        for (std::size_t j = 0; j < m; ++j) buf[j] = penalty_ * penalty_;
      } else {
        // ρ(λ) = √((b − λ)(λ − a)) / (2π σ² λ y), y = 1/Q; 0 outside [a, b] (sqrt of a negative is NaN -> 0).
        const double c = ((2.0 * kPi) * sigma) * sigma;
        for (std::size_t j = 0; j < m; ++j) {
          const double rho = (1.0 / ((c * t[j]) * y_)) * std::sqrt(std::max((b - t[j]) * (t[j] - a), 0.0));
          const double v = nan_to_num(rho) - f[j];
          buf[j] = v * v;
        }
      }
    }
    return pairwise_sum(buf, k_.residual_count());
  }

  std::size_t scratch_size() const { return k_.residual_count(); }

 private:
  const Density& k_;
  bool qc_;
  double r_, y_, penalty_;
};

/// Evaluates J on every σ of `sigmas`, threaded over contiguous chunks (each value computed the same way).
std::vector<double> evaluate_all(const Objective& J, const double* sigmas, std::size_t count, int threads) {
  std::vector<double> out(count);
  if (count * J.scratch_size() < (1u << 20)) threads = 1;  // ~0.1 ms of work for the default grid: not worth a thread
  const std::size_t chunks = std::min<std::size_t>(count, static_cast<std::size_t>(effective_threads(threads, count)));
  parallel_for(chunks, threads, [&](std::size_t c) {
    std::vector<double> buf(J.scratch_size(), 0.0);
    for (std::size_t i = c * count / chunks; i < (c + 1) * count / chunks; ++i) out[i] = J(sigmas[i], buf.data());
  });
  return out;
}

/// numpy.argmin: the first minimum, or the first NaN if there is one.
std::size_t argmin_numpy(const std::vector<double>& v) {
  std::size_t best = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) return i;
    if (v[i] < v[best]) best = i;
  }
  return best;
}

/// Nelder–Mead in one dimension, step for step as scipy.optimize.fmin with its defaults (rho = 1, chi = 2,
/// psi = sigma = 1/2, initial vertex 1.05·x0 or 0.00025 when x0 == 0). The two vertices are re-ordered by
/// value after each step (ties keep their order, NaN goes last). An evaluation past max_fev aborts the step
/// it belongs to, as scipy's call counter does.
struct NelderMead {
  double x = 0, fx = 0;
  std::int64_t evaluations = 0;
};

template <class F>
NelderMead nelder_mead_1d(F&& fun, double x0, const MPFitOptions& opt) {
  std::int64_t calls = 0;
  auto eval = [&](double at, double& value) {
    if (calls >= opt.max_fev) return false;
    ++calls;
    value = fun(at);
    return true;
  };
  auto sort2 = [](double* sim, double* fs) {
    const bool swap = std::isnan(fs[0]) ? !std::isnan(fs[1]) : (!std::isnan(fs[1]) && fs[1] < fs[0]);
    if (swap) {
      std::swap(sim[0], sim[1]);
      std::swap(fs[0], fs[1]);
    }
  };
  double sim[2] = {x0, x0 != 0 ? (1 + 0.05) * x0 : 0.00025};
  double fs[2] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  if (eval(sim[0], fs[0])) eval(sim[1], fs[1]);
  sort2(sim, fs);
  std::int64_t iterations = 1;
  while (calls < opt.max_fev && iterations < opt.max_iter) {
    if (std::fabs(sim[1] - sim[0]) <= opt.xatol && std::fabs(fs[0] - fs[1]) <= opt.fatol) break;
    const double xbar = sim[0];  // centroid of all vertices but the worst
    do {  // one step; `break` = an evaluation over the limit
      double fxr;
      const double xr = 2 * xbar - 1 * sim[1];
      if (!eval(xr, fxr)) break;
      if (fxr < fs[0]) {
        double fxe;
        const double xe = 3 * xbar - 2 * sim[1];
        if (!eval(xe, fxe)) break;
        if (fxe < fxr) {
          sim[1] = xe, fs[1] = fxe;
        } else {
          sim[1] = xr, fs[1] = fxr;
        }
      } else if (fxr < fs[1]) {  // between the vertices: outside contraction
        double fxc;
        const double xc = 1.5 * xbar - 0.5 * sim[1];
        if (!eval(xc, fxc)) break;
        if (fxc <= fxr) {
          sim[1] = xc, fs[1] = fxc;
        } else {
          sim[1] = sim[0] + 0.5 * (sim[1] - sim[0]);
          if (!eval(sim[1], fs[1])) break;
        }
      } else {  // inside contraction
        double fxcc;
        const double xcc = 0.5 * xbar + 0.5 * sim[1];
        if (!eval(xcc, fxcc)) break;
        if (fxcc < fs[1]) {
          sim[1] = xcc, fs[1] = fxcc;
        } else {
          sim[1] = sim[0] + 0.5 * (sim[1] - sim[0]);
          if (!eval(sim[1], fs[1])) break;
        }
      }
      ++iterations;
    } while (false);
    sort2(sim, fs);
  }
  NelderMead r;
  r.x = sim[0];
  r.fx = std::isnan(fs[0]) || std::isnan(fs[1]) ? kNaN : std::min(fs[0], fs[1]);
  r.evaluations = calls;
  return r;
}

MPFit failed(std::string reason) {
  MPFit r;
  r.reason = std::move(reason);
  r.sigma_mp = r.mp_softrank = r.W_scale = r.bulk_max = r.bulk_min = r.objective = kNaN;
  return r;
}

void check_options(double Q, double M, const MPFitOptions& opt) {
  if (!(std::isfinite(Q) && Q > 0)) throw std::invalid_argument("Q = N/M must be finite and > 0");
  if (!(std::isfinite(M) && M > 0)) throw std::invalid_argument("M must be finite and > 0");
  if (!(opt.bandwidth > 0) || opt.kde_points < 2 || opt.max_fev < 0 || opt.max_iter < 0)
    throw std::invalid_argument("bad Marchenko-Pastur fit options");
}

/// The data the density is estimated on: λ' (Q != 1) or √λ' (Q == 1), ascending.
std::vector<double> fit_data(const std::vector<double>& rescaled, double Q) {
  std::vector<double> d(rescaled);
  if (Q == 1.0)
    for (double& v : d) v = std::sqrt(v);
  return d;
}

}  // namespace

double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double s = -0.0;
    for (std::size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
  }
  std::size_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

std::vector<double> marchenko_pastur_objective(const double* rescaled, std::size_t n, double Q,
                                               const double* sigmas, std::size_t count, const MPFitOptions& opt) {
  check_options(Q, 1.0, opt);
  check_eigenvalues(rescaled, n, "marchenko_pastur_objective");
  if (n == 0) throw std::invalid_argument("marchenko_pastur_objective: no eigenvalues");
  std::vector<double> x(rescaled, rescaled + n);
  if (!std::is_sorted(x.begin(), x.end())) std::sort(x.begin(), x.end());
  const Density k = kernel_density(fit_data(x, Q), opt);
  if (k.t.empty() && Q != 1.0)
    throw std::invalid_argument("marchenko_pastur_objective: no KDE point above the density floor");
  return evaluate_all(Objective(k, Q, opt), sigmas, count, opt.threads);
}

MPFit marchenko_pastur_fit(const double* evals, std::size_t n, double Q, double M, const MPFitOptions& opt) {
  check_options(Q, M, opt);
  check_eigenvalues(evals, n, "marchenko_pastur_fit");
  if (n == 0) return failed("no eigenvalues");

  // Rescale to mean 1: W_scale = √n / √Σλ (Σ in ascending order, numpy's pairwise sum).
  std::vector<double> x(evals, evals + n);
  if (!std::is_sorted(x.begin(), x.end())) std::sort(x.begin(), x.end());
  const double total = pairwise_sum(x.data(), n);
  if (!(total > 0)) return failed("all eigenvalues are zero");
  if (!std::isfinite(total)) return failed("the eigenvalues' sum overflows");
  const double w_scale = std::sqrt(static_cast<double>(n)) / std::sqrt(total);
  const double s2 = w_scale * w_scale;
  for (double& v : x) v = s2 * v;
  const double lam_max = x.back();

  const Density k = kernel_density(fit_data(x, Q), opt);
  if (k.t.empty() && Q != 1.0) return failed("no point of the density estimate is above the floor");
  const Objective J(k, Q, opt);

  // σ grid: numpy arange(0.05 s0, 2 s0, 0.01 s0), s0 = √(λ'_max / (1 + 1/√Q)²).
  const double inv_sq = 1.0 / std::sqrt(Q);
  const double s0 = std::sqrt(lam_max / ((1.0 + inv_sq) * (1.0 + inv_sq)));
  const double start = 0.05 * s0, stop = 2.0 * s0, step = 0.01 * s0;
  const double span = std::ceil((stop - start) / step);
  if (!(span >= 1 && span < 1e7)) return failed("degenerate sigma grid");
  const std::size_t count = static_cast<std::size_t>(span);
  std::vector<double> grid(count);
  const double delta = (start + step) - start;  // numpy fills arange as start + i·(second − first)
  grid[0] = start;
  if (count > 1) grid[1] = start + step;
  for (std::size_t i = 2; i < count; ++i) grid[i] = start + static_cast<double>(i) * delta;
  const std::vector<double> values = evaluate_all(J, grid.data(), count, opt.threads);
  const std::size_t best = argmin_numpy(values);

  MPFit r;
  r.quarter_circle = Q == 1.0;
  double sigma = grid[best];
  r.objective = values[best];
  r.evaluations = static_cast<std::int64_t>(count);
  if (opt.polish) {
    std::vector<double> buf(J.scratch_size(), 0.0);
    const NelderMead nm = nelder_mead_1d([&](double s) { return J(s, buf.data()); }, sigma, opt);
    sigma = nm.x;
    r.objective = nm.fx;
    r.evaluations += nm.evaluations;
  }

  // Edges on the rescaled scale; numpy-scalar squares (pow), the Tracy–Widom margin √TW.
  const double bulk_max = libm_pow(sigma * (1 + inv_sq), 2.0);
  const double bulk_min = libm_pow(sigma * (1 - inv_sq), 2.0);
  const double tw = inv_sq * libm_pow(bulk_max, 2.0 / 3.0) * libm_pow(M, -2.0 / 3.0);
  const double edge = bulk_max + std::sqrt(tw);
  r.num_spikes = static_cast<std::int64_t>(x.end() - std::upper_bound(x.begin(), x.end(), edge));
  if (std::isnan(edge)) r.num_spikes = 0;
  r.ok = true;
  r.sigma_mp = sigma;
  r.mp_softrank = bulk_max / lam_max;
  r.W_scale = w_scale;
  r.bulk_max = bulk_max / (w_scale * w_scale);
  r.bulk_min = bulk_min / (w_scale * w_scale);
  return r;
}

double jensen_shannon_distance(const double* p, const double* q, std::size_t n) {
  if (n == 0) throw std::invalid_argument("jensen_shannon_distance: empty vectors");
  check_eigenvalues(p, n, "jensen_shannon_distance (first vector)");
  check_eigenvalues(q, n, "jensen_shannon_distance (second vector)");
  std::vector<double> m(n), a(n), b(n), terms(n);
  for (std::size_t i = 0; i < n; ++i) m[i] = (p[i] + q[i]) / 2;
  const double sum_m = pairwise_sum(m.data(), n);
  for (std::size_t i = 0; i < n; ++i) b[i] = m[i] / sum_m;
  // scipy.special.rel_entr (scipy >= 1.15): x·log1p((x − y)/y) when x/y is within (1/2, 2), x·ln(x/y) when
  // x/y is a normal number, x·(ln x − ln y) otherwise; 0 for x == 0 <= y, +inf for other non-positive input.
  auto rel_entr = [](double x, double y) {
    if (std::isnan(x) || std::isnan(y)) return kNaN;
    if (x <= 0 || y <= 0) return x == 0 && y >= 0 ? 0.0 : std::numeric_limits<double>::infinity();
    const double ratio = x / y;
    if (0.5 < ratio && ratio < 2) return x * std::log1p((x - y) / y);
    if (std::numeric_limits<double>::min() < ratio && ratio < std::numeric_limits<double>::infinity())
      return x * std::log(ratio);
    return x * (std::log(x) - std::log(y));
  };
  auto kl_to_m = [&](const double* v) {
    const double s = pairwise_sum(v, n);
    for (std::size_t i = 0; i < n; ++i) a[i] = v[i] / s;
    for (std::size_t i = 0; i < n; ++i) terms[i] = rel_entr(a[i], b[i]);
    return pairwise_sum(terms.data(), n);
  };
  const double divergence = (kl_to_m(p) + kl_to_m(q)) / 2;
  return std::sqrt(divergence);  // NaN for a (rounding-)negative divergence, as numpy's sqrt
}

}  // namespace hts
