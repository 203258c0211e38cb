#include "incgamma.hpp"

#include <cmath>
#include <limits>

namespace hts {
namespace {

constexpr double kEulerGamma = 0.57721566490153286061;

/// ζ(k) for k = 2..32 (rounded from 30-digit values).
constexpr double kZeta[31] = {
    1.6449340668482264,
    1.2020569031595942,
    1.0823232337111381,
    1.03692775514337,
    1.0173430619844492,
    1.008349277381923,
    1.0040773561979444,
    1.0020083928260821,
    1.000994575127818,
    1.0004941886041194,
    1.000246086553308,
    1.0001227133475785,
    1.0000612481350588,
    1.000030588236307,
    1.0000152822594086,
    1.0000076371976379,
    1.000003817293265,
    1.0000019082127165,
    1.0000009539620338,
    1.0000004769329869,
    1.0000002384505027,
    1.000000119219926,
    1.000000059608189,
    1.0000000298035034,
    1.0000000149015549,
    1.0000000074507118,
    1.000000003725334,
    1.0000000018626598,
    1.0000000009313275,
    1.0000000004656628,
    1.000000000232831};

/// expm1(t)/t, 1 at t = 0.
double expm1_over(double t) { return t == 0.0 ? 1.0 : std::expm1(t) / t; }

/// log1p(u)/u, 1 at u = 0.
double log1p_over(double u) { return u == 0.0 ? 1.0 : std::log1p(u) / u; }

/// (Γ(1+ε)/Π_{j=1..n}(1 − ε/j) − 1)/ε for |ε| <= 1/2, smooth through ε = 0.
double pole_part(double eps, int n) {
  double L_over;  // ln(Γ(1+ε)/P(ε)) / ε
  if (std::fabs(eps) <= 0.25) {
    // ln Γ(1+ε)/ε = −γ + Σ_{k>=2} (−1)^k ζ(k) ε^(k−1)/k (|ε| <= 1/4: 0.25^30 < 1e-18)
    double s = -kEulerGamma, p = 1.0;
    for (int k = 2; k <= 32; ++k) {
      p *= eps;
      s += (k % 2 == 0 ? 1.0 : -1.0) * kZeta[k - 2] * p / k;
    }
    L_over = s;
  } else {
    L_over = std::lgamma(1.0 + eps) / eps;
  }
  for (int j = 1; j <= n; ++j) L_over += log1p_over(-eps / j) / j;  // − ln(1 − ε/j)/ε = (1/j)·log1p(u)/u
  return L_over * expm1_over(L_over * eps);
}

/// The series for z < 1: Γ(a, z) = z^a·T, a = ε − n (n = round(−a) >= 0, |ε| <= 1/2),
/// T = z^(−a)(−1)^n/n!·[pole_part(ε) − ln z·(z^ε − 1)/(ε ln z)] − Σ_{k>=0, k≠n} (−1)^k z^k/(k!(a+k)).
double log_gamma_series(double a, double z) {
  const int n = static_cast<int>(std::lround(-a));
  const double eps = a + n;
  const double lz = std::log(z);
  double nfact = 1.0;
  for (int j = 2; j <= n; ++j) nfact *= j;
  const double sing = (pole_part(eps, n) - lz * expm1_over(eps * lz)) / nfact * (n % 2 == 0 ? 1.0 : -1.0);
  double T = std::exp(-a * lz) * sing;
  double term = 1.0;  // (−1)^k z^k / k!
  for (int k = 0; k < 400; ++k) {
    if (k > 0) term *= -z / k;
    if (k == n) continue;
    const double t = term / (a + k);
    T -= t;
    if (k > n && std::fabs(t) <= 1e-17 * std::fabs(T)) break;
  }
  return a * lz + std::log(T);
}

/// Legendre's continued fraction for z >= 1 (modified Lentz): Γ(a, z) = e^(−z) z^a / (z+1−a − 1(1−a)/(z+3−a − …)).
double log_gamma_cf(double a, double z) {
  constexpr double tiny = 1e-300;
  double b = z + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) < 1e-15) break;
  }
  return -z + a * std::log(z) + std::log(h);
}

}  // namespace

double log_upper_gamma(double a, double z) {
  if (!(z > 0.0) || !(a < 0.5) || std::isnan(a)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(z)) return -std::numeric_limits<double>::infinity();
  return z < 1.0 ? log_gamma_series(a, z) : log_gamma_cf(a, z);
}

}  // namespace hts
