#include "conv_fft.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <complex>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "lapack.hpp"
#include "parallel.hpp"

namespace hts {
namespace {

using cdouble = std::complex<double>;

/// Gram sides from this on use LAPACK's two-stage Hermitian eigensolver (heevd_2stage: faster from ~384 on,
/// measured with SkylakeX OpenBLAS). A rule on the shape alone, so results never depend on the thread count.
constexpr int kTwoStageMin = 384;

/// w[j] = exp(−2πi·j/n) for j < n: exact 1, −1, ∓i at j = 0, n/2, n/4, 3n/4, and w[n−j] = conj(w[j]) bit for
/// bit, so frequencies equal to their own conjugate get an exactly real DFT.
std::vector<cdouble> twiddles(std::int64_t n) {
  const double two_pi = 6.283185307179586476925286766559;
  std::vector<cdouble> w(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; 2 * j <= n; ++j) {
    double c = 1.0, s = 0.0;
    if (2 * j == n) c = -1.0;
    else if (4 * j == n) c = 0.0, s = 1.0;
    else if (j > 0) c = std::cos(two_pi * static_cast<double>(j) / static_cast<double>(n)),
                    s = std::sin(two_pi * static_cast<double>(j) / static_cast<double>(n));
    w[static_cast<std::size_t>(j)] = {c, -s};
    if (j > 0) w[static_cast<std::size_t>(n - j)] = {c, s};
  }
  return w;
}

/// Copies the kernel into kh·kw contiguous column-major out×in float64 matrices (slice p·kw + q) and
/// returns the number of NaN/Inf entries.
template <class S>
std::int64_t gather(const KernelView& k, double* dst) {
  const S* base = static_cast<const S*>(k.data);
  std::int64_t bad = 0;
  for (std::int64_t p = 0; p < k.kh; ++p)
    for (std::int64_t q = 0; q < k.kw; ++q)
      for (std::int64_t i = 0; i < k.in; ++i) {
        const S* src = base + p * k.stride[2] + q * k.stride[3] + i * k.stride[1];
        for (std::int64_t o = 0; o < k.out; ++o) {
          const S v = src[o * k.stride[0]];
          bad += std::isfinite(v) ? 0 : 1;
          *dst++ = static_cast<double>(v);
        }
      }
  return bad;
}

/// Everything a frequency task reads; shared, never written.
struct Plan {
  std::int64_t O = 0, I = 0, kh = 0, kw = 0, n1 = 0, n2 = 0;
  int m = 0;                    ///< min(O, I): the Gram side
  std::vector<double> kernel;   ///< from gather()
  std::vector<cdouble> w1, w2;  ///< twiddles of n1 and n2
  lapack::HermitianWork heevd;  ///< complex eigensolver workspace for side m

  std::size_t slice() const { return static_cast<std::size_t>(O * I); }
  /// exp(−2πi(u·p/n1 + v·q/n2)), from the tables.
  cdouble twiddle(std::int64_t u, std::int64_t v, std::int64_t p, std::int64_t q) const {
    return w1[static_cast<std::size_t>((u * p) % n1)] * w2[static_cast<std::size_t>((v * q) % n2)];
  }
};

/// Throws Stopped once the caller's flag (if any) is set: a safe point.
void check_stop(const std::atomic<bool>* stop) {
  if (stop != nullptr && stop->load(std::memory_order_relaxed)) throw Stopped();
}

[[noreturn]] void overflow(bool single) {
  throw std::invalid_argument(std::string("squared singular values overflow ") +
                              (single ? "float32 (use precision='float64')" : "float64 (entries are too large)"));
}

template <class T>
void clamp(T* w, int n) {
  for (int i = 0; i < n; ++i) w[i] = w[i] > T(0) ? w[i] : T(0);  // round-off negatives (and -0) of a PSD matrix
}

/// A general frequency (u, v): complex A_uv, Hermitian Gram (herk), heevd.
template <class T>
void complex_frequency(const Plan& pl, std::int64_t u, std::int64_t v, T* w, const std::atomic<bool>* stop) {
  const std::size_t len = pl.slice();
  std::vector<cdouble> a(len, cdouble(0.0, 0.0));
  double* ar = reinterpret_cast<double*>(a.data());  // [re, im] pairs (guaranteed layout of std::complex)
  for (std::int64_t p = 0; p < pl.kh; ++p)
    for (std::int64_t q = 0; q < pl.kw; ++q) {
      const cdouble c = pl.twiddle(u, v, p, q);
      const double cr = c.real(), ci = c.imag();
      const double* ks = pl.kernel.data() + static_cast<std::size_t>(p * pl.kw + q) * len;
      for (std::size_t e = 0; e < len; ++e) {
        ar[2 * e] += cr * ks[e];
        ar[2 * e + 1] += ci * ks[e];
      }
    }
  using C = std::complex<T>;
  std::vector<C> converted;
  const C* op;
  if constexpr (std::is_same<T, double>::value) {
    op = a.data();
  } else {
    converted.assign(a.begin(), a.end());
    std::vector<cdouble>().swap(a);
    op = converted.data();
  }
  const int m = pl.m, O = static_cast<int>(pl.O), I = static_cast<int>(pl.I);
  std::vector<C> g(static_cast<std::size_t>(m) * static_cast<std::size_t>(m));
  if (I <= O) lapack::herk_lower<T>('C', I, O, op, O, g.data(), m);  // AᴴA, A is O×I column-major
  else lapack::herk_lower<T>('N', O, I, op, O, g.data(), m);         // AAᴴ
  for (int j = 0; j < m; ++j)
    if (!std::isfinite(g[static_cast<std::size_t>(j) * m + j].real())) overflow(std::is_same<T, float>::value);
  check_stop(stop);
  lapack::hermitian_eigenvalues<T>(m, g.data(), m, w, pl.heevd);
  clamp(w, m);
}

/// A frequency equal to its own conjugate (u ∈ {0, n1/2}, v ∈ {0, n2/2}): A_uv is real (twiddles ±1 exactly).
template <class T>
void real_frequency(const Plan& pl, std::int64_t u, std::int64_t v, T* w, const std::atomic<bool>* stop) {
  const std::size_t len = pl.slice();
  std::vector<double> a(len, 0.0);
  for (std::int64_t p = 0; p < pl.kh; ++p)
    for (std::int64_t q = 0; q < pl.kw; ++q) {
      const double c = pl.twiddle(u, v, p, q).real();  // ±1: the imaginary part is exactly 0
      const double* ks = pl.kernel.data() + static_cast<std::size_t>(p * pl.kw + q) * len;
      for (std::size_t e = 0; e < len; ++e) a[e] += c * ks[e];
    }
  std::vector<T> converted;
  const T* op;
  if constexpr (std::is_same<T, double>::value) {
    op = a.data();
  } else {
    converted.assign(a.begin(), a.end());
    std::vector<double>().swap(a);
    op = converted.data();
  }
  const int m = pl.m, O = static_cast<int>(pl.O), I = static_cast<int>(pl.I);
  std::vector<T> g(static_cast<std::size_t>(m) * static_cast<std::size_t>(m));
  if (I <= O) lapack::syrk_lower<T>('T', I, O, op, O, g.data(), m);  // AᵀA
  else lapack::syrk_lower<T>('N', O, I, op, O, g.data(), m);         // AAᵀ
  for (int j = 0; j < m; ++j)
    if (!std::isfinite(g[static_cast<std::size_t>(j) * m + j])) overflow(std::is_same<T, float>::value);
  check_stop(stop);
  lapack::symmetric_eigenvalues<T>(m, g.data(), m, w, static_cast<int>(EigenOptions{}.two_stage_min));
  clamp(w, m);
}

}  // namespace

template <class T>
void conv_operator_eigenvalues(const KernelView& k, std::int64_t n1, std::int64_t n2, int threads, T* out,
                               const std::atomic<bool>* stop) {
  lapack::use_single_thread();
  check_stop(stop);
  if (k.out <= 0 || k.in <= 0 || k.kh <= 0 || k.kw <= 0)
    throw std::invalid_argument("empty kernel (" + std::to_string(k.out) + "x" + std::to_string(k.in) + "x" +
                                std::to_string(k.kh) + "x" + std::to_string(k.kw) + ")");
  if (n1 < k.kh || n2 < k.kw)
    throw std::invalid_argument("input size " + std::to_string(n1) + "x" + std::to_string(n2) +
                                " is smaller than the kernel's " + std::to_string(k.kh) + "x" +
                                std::to_string(k.kw));
  if (k.data == nullptr || out == nullptr) throw std::invalid_argument("null buffer");
  if (k.out > INT_MAX || k.in > INT_MAX || k.out * k.in > INT_MAX / 2 || n1 > INT_MAX / n2)
    throw std::invalid_argument("kernel or input too large for 32-bit LAPACK indices");

  Plan pl;
  pl.O = k.out, pl.I = k.in, pl.kh = k.kh, pl.kw = k.kw, pl.n1 = n1, pl.n2 = n2;
  pl.m = static_cast<int>(k.small_side());
  pl.kernel.resize(pl.slice() * static_cast<std::size_t>(k.kh * k.kw));
  const std::int64_t bad = k.dtype == DType::f64 ? gather<double>(k, pl.kernel.data())
                                                 : gather<float>(k, pl.kernel.data());
  if (bad != 0)
    throw std::invalid_argument(std::to_string(bad) + " non-finite entries (NaN or Inf) out of " +
                                std::to_string(k.out * k.in * k.kh * k.kw));
  pl.w1 = twiddles(n1);
  pl.w2 = twiddles(n2);

  // One task per pair {f, conj f}: general (complex) frequencies first, the costlier kind, then the real ones.
  const std::int64_t nf = n1 * n2;
  std::vector<std::int64_t> tasks, real_tasks;
  for (std::int64_t f = 0; f < nf; ++f) {
    const std::int64_t u = f / n2, v = f % n2;
    const std::int64_t g = ((n1 - u) % n1) * n2 + (n2 - v) % n2;
    if (f < g) tasks.push_back(f);
    else if (f == g) real_tasks.push_back(f);
  }
  const std::size_t complex_count = tasks.size();
  tasks.insert(tasks.end(), real_tasks.begin(), real_tasks.end());
  if (complex_count > 0) pl.heevd = lapack::hermitian_eigenvalues_work<T>(pl.m, kTwoStageMin);

  const std::size_t m = static_cast<std::size_t>(pl.m);
  parallel_for(tasks.size(), threads, [&](std::size_t t) {
    check_stop(stop);
    const std::int64_t f = tasks[t], u = f / n2, v = f % n2;
    T* row = out + static_cast<std::size_t>(f) * m;
    if (t < complex_count) {
      complex_frequency<T>(pl, u, v, row, stop);
      const std::int64_t g = ((n1 - u) % n1) * n2 + (n2 - v) % n2;
      std::copy(row, row + m, out + static_cast<std::size_t>(g) * m);
    } else {
      real_frequency<T>(pl, u, v, row, stop);
    }
  });
}

template void conv_operator_eigenvalues<double>(const KernelView&, std::int64_t, std::int64_t, int, double*,
                                                const std::atomic<bool>*);
template void conv_operator_eigenvalues<float>(const KernelView&, std::int64_t, std::int64_t, int, float*,
                                               const std::atomic<bool>*);

}  // namespace hts
