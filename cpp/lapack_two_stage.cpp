#include "lapack_two_stage.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

// LAPACK is Fortran: each character argument has a hidden length argument at the end.
extern "C" {
void scipy_dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                  const int*, const double*, const int*, const double*, double*, const int*);
void scipy_sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                  const int*, const float*, const int*, const float*, float*, const int*);
void scipy_dsymm_(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                  const double*, const int*, const double*, double*, const int*);
void scipy_ssymm_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
                  const float*, const int*, const float*, float*, const int*);
void scipy_dsyr2k_(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                   const double*, const int*, const double*, double*, const int*);
void scipy_ssyr2k_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
                   const float*, const int*, const float*, float*, const int*);
void scipy_dtrmm_(const char*, const char*, const char*, const char*, const int*, const int*, const double*,
                  const double*, const int*, double*, const int*);
void scipy_strmm_(const char*, const char*, const char*, const char*, const int*, const int*, const float*,
                  const float*, const int*, float*, const int*);
void scipy_dgeqrf_(const int*, const int*, double*, const int*, double*, double*, const int*, int*);
void scipy_sgeqrf_(const int*, const int*, float*, const int*, float*, float*, const int*, int*);
void scipy_dlarft_(const char*, const char*, const int*, const int*, const double*, const int*, const double*,
                   double*, const int*, std::size_t, std::size_t);
void scipy_slarft_(const char*, const char*, const int*, const int*, const float*, const int*, const float*,
                   float*, const int*, std::size_t, std::size_t);
void scipy_dsytrd_sb2st_(const char*, const char*, const char*, const int*, const int*, double*, const int*,
                         double*, double*, double*, const int*, double*, const int*, int*, std::size_t,
                         std::size_t, std::size_t);
void scipy_ssytrd_sb2st_(const char*, const char*, const char*, const int*, const int*, float*, const int*,
                         float*, float*, float*, const int*, float*, const int*, int*, std::size_t, std::size_t,
                         std::size_t);
void scipy_dsterf_(const int*, double*, double*, int*);
void scipy_ssterf_(const int*, float*, float*, int*);
}

namespace hts::lapack {

namespace {

/// One routine per element type, so the templates below are written once.
struct D {
  static constexpr auto gemm = scipy_dgemm_;
  static constexpr auto symm = scipy_dsymm_;
  static constexpr auto syr2k = scipy_dsyr2k_;
  static constexpr auto trmm = scipy_dtrmm_;
  static constexpr auto geqrf = scipy_dgeqrf_;
  static constexpr auto larft = scipy_dlarft_;
  static constexpr auto sb2st = scipy_dsytrd_sb2st_;
  static constexpr auto sterf = scipy_dsterf_;
};
struct S {
  static constexpr auto gemm = scipy_sgemm_;
  static constexpr auto symm = scipy_ssymm_;
  static constexpr auto syr2k = scipy_ssyr2k_;
  static constexpr auto trmm = scipy_strmm_;
  static constexpr auto geqrf = scipy_sgeqrf_;
  static constexpr auto larft = scipy_slarft_;
  static constexpr auto sb2st = scipy_ssytrd_sb2st_;
  static constexpr auto sterf = scipy_ssterf_;
};
template <class T>
using R = typename std::conditional<std::is_same<T, double>::value, D, S>::type;

void check_info(int info, const char* routine) {
  if (info < 0) throw std::invalid_argument(std::string("LAPACK ") + routine + ": bad argument " + std::to_string(-info));
  if (info > 0) throw std::runtime_error(std::string("LAPACK ") + routine + " did not converge (info=" + std::to_string(info) + ")");
}

}  // namespace

template <class T>
void gemm_ab(char transa, char transb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
             T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  R<T>::gemm(&transa, &transb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

template <class T>
void symm_lower_left(int m, int n, const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  const char side = 'L', uplo = 'L';
  const T one = 1;
  R<T>::symm(&side, &uplo, &m, &n, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}

template <class T>
void syr2k_lower(int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T* c, int ldc) {
  if (n <= 0 || k <= 0) return;
  const char uplo = 'L', trans = 'N';
  const T one = 1;
  R<T>::syr2k(&uplo, &trans, &n, &k, &alpha, a, &lda, b, &ldb, &one, c, &ldc);
}

template <class T>
void trmm_upper(char side, char transt, int m, int n, const T* t, int ldt, T* b, int ldb) {
  if (m <= 0 || n <= 0) return;
  const char uplo = 'U', diag = 'N';
  const T one = 1;
  R<T>::trmm(&side, &uplo, &transt, &diag, &m, &n, &one, t, &ldt, b, &ldb);
}

template <class T>
void geqrf(int m, int n, T* a, int lda, T* tau) {
  if (m <= 0 || n <= 0) return;
  int info = 0, query = -1;
  T work_query = 0;
  R<T>::geqrf(&m, &n, a, &lda, tau, &work_query, &query, &info);
  check_info(info, "geqrf");
  int lwork = std::max(n, static_cast<int>(work_query));
  std::vector<T> work(static_cast<std::size_t>(lwork));
  R<T>::geqrf(&m, &n, a, &lda, tau, work.data(), &lwork, &info);
  check_info(info, "geqrf");
}

template <class T>
void larft(int m, int k, const T* v, int ldv, const T* tau, T* t, int ldt) {
  if (m <= 0 || k <= 0) return;
  const char direct = 'F', storev = 'C';
  R<T>::larft(&direct, &storev, &m, &k, v, &ldv, tau, t, &ldt, 1, 1);
}

template <class T>
void band_eigenvalues(int n, int kd, T* ab, int ldab, T* w) {
  if (n <= 0) return;
  if (n == 1) {
    w[0] = ab[0];
    return;
  }
  const char stage1 = 'N', vect = 'N', uplo = 'L';
  int info = 0, query = -1;
  T hous_query = 0, work_query = 0;
  std::vector<T> e(static_cast<std::size_t>(n));
  R<T>::sb2st(&stage1, &vect, &uplo, &n, &kd, ab, &ldab, w, e.data(), &hous_query, &query, &work_query, &query,
              &info, 1, 1, 1);
  check_info(info, "sytrd_sb2st workspace query");
  int lhous = std::max(1, static_cast<int>(hous_query)), lwork = std::max(1, static_cast<int>(work_query));
  std::vector<T> hous(static_cast<std::size_t>(lhous)), work(static_cast<std::size_t>(lwork));
  R<T>::sb2st(&stage1, &vect, &uplo, &n, &kd, ab, &ldab, w, e.data(), hous.data(), &lhous, work.data(), &lwork,
              &info, 1, 1, 1);
  check_info(info, "sytrd_sb2st");
  R<T>::sterf(&n, w, e.data(), &info);
  check_info(info, "sterf");
}

template <class T>
void tridiagonal_eigenvalues(int n, T* d, T* e) {
  if (n <= 0) return;
  int info = 0;
  R<T>::sterf(&n, d, e, &info);
  check_info(info, "sterf");
}

#define HTS_TWO_STAGE_INSTANTIATE(T)                                                                            \
  template void gemm_ab<T>(char, char, int, int, int, T, const T*, int, const T*, int, T, T*, int);            \
  template void symm_lower_left<T>(int, int, const T*, int, const T*, int, T, T*, int);                        \
  template void syr2k_lower<T>(int, int, T, const T*, int, const T*, int, T*, int);                            \
  template void trmm_upper<T>(char, char, int, int, const T*, int, T*, int);                                   \
  template void geqrf<T>(int, int, T*, int, T*);                                                               \
  template void larft<T>(int, int, const T*, int, const T*, T*, int);                                          \
  template void band_eigenvalues<T>(int, int, T*, int, T*);                                                    \
  template void tridiagonal_eigenvalues<T>(int, T*, T*);
HTS_TWO_STAGE_INSTANTIATE(double)
HTS_TWO_STAGE_INSTANTIATE(float)
#undef HTS_TWO_STAGE_INSTANTIATE

}  // namespace hts::lapack
