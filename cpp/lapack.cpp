#include "lapack.hpp"

#include <algorithm>
#include <complex>
#include <cstddef>
#include <stdexcept>
#include <string>

extern "C" {
void scipy_openblas_set_num_threads(int);
char* scipy_openblas_get_config(void);
void scipy_dsyrk_(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                  const double*, double*, const int*);
void scipy_ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
                  const float*, float*, const int*);
void scipy_dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                  const int*, const double*, const int*, const double*, double*, const int*);
void scipy_sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                  const int*, const float*, const int*, const float*, float*, const int*);
// LAPACK is Fortran: each character argument has a hidden length argument at the end.
void scipy_dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*, const int*,
                   int*, const int*, int*, std::size_t, std::size_t);
void scipy_ssyevd_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*, int*,
                   const int*, int*, std::size_t, std::size_t);
void scipy_dsyevd_2stage_(const char*, const char*, const int*, double*, const int*, double*, double*,
                          const int*, int*, const int*, int*, std::size_t, std::size_t);
void scipy_ssyevd_2stage_(const char*, const char*, const int*, float*, const int*, float*, float*, const int*,
                          int*, const int*, int*, std::size_t, std::size_t);
// Complex (Fortran COMPLEX*16 / COMPLEX = std::complex layout). herk's alpha and beta are real.
void scipy_zherk_(const char*, const char*, const int*, const int*, const double*, const std::complex<double>*,
                  const int*, const double*, std::complex<double>*, const int*, std::size_t, std::size_t);
void scipy_cherk_(const char*, const char*, const int*, const int*, const float*, const std::complex<float>*,
                  const int*, const float*, std::complex<float>*, const int*, std::size_t, std::size_t);
void scipy_zheevd_(const char*, const char*, const int*, std::complex<double>*, const int*, double*,
                   std::complex<double>*, const int*, double*, const int*, int*, const int*, int*, std::size_t,
                   std::size_t);
void scipy_cheevd_(const char*, const char*, const int*, std::complex<float>*, const int*, float*,
                   std::complex<float>*, const int*, float*, const int*, int*, const int*, int*, std::size_t,
                   std::size_t);
}

namespace hts::lapack {

void use_single_thread() { scipy_openblas_set_num_threads(1); }

const char* openblas_config() { return scipy_openblas_get_config(); }

template <>
void syrk_lower<double>(char trans, int n, int k, const double* a, int lda, double* c, int ldc) {
  const char uplo = 'L';
  const double one = 1.0, zero = 0.0;
  scipy_dsyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &zero, c, &ldc);
}

template <>
void syrk_lower<float>(char trans, int n, int k, const float* a, int lda, float* c, int ldc) {
  const char uplo = 'L';
  const float one = 1.0f, zero = 0.0f;
  scipy_ssyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &zero, c, &ldc);
}

template <>
void gemm<double>(char ta, char tb, int m, int n, int k, const double* a, int lda, const double* b, int ldb,
                  double* c, int ldc) {
  const double one = 1.0, zero = 0.0;
  scipy_dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &zero, c, &ldc);
}

template <>
void gemm<float>(char ta, char tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                 float* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  scipy_sgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &zero, c, &ldc);
}

namespace {

template <class T, class Fn>
void run_syevd(Fn routine, bool two_stage, int n, T* a, int lda, T* w) {
  const char jobz = 'N', uplo = 'L';
  int info = 0;
  // Values only: one-stage syevd needs lwork = 2n+1, liwork = 1 (LAPACK's documented minimum); the two-stage
  // routine's workspace depends on its block sizes, so ask.
  int lwork = n > 1 ? 2 * n + 1 : 1, liwork = 1;
  if (two_stage) {
    T work_query = 0;
    int iwork_query = 0, query = -1;
    routine(&jobz, &uplo, &n, a, &lda, w, &work_query, &query, &iwork_query, &query, &info, 1, 1);
    if (info != 0) throw std::runtime_error("LAPACK syevd_2stage workspace query failed (info=" + std::to_string(info) + ")");
    lwork = static_cast<int>(work_query) + 1;
    liwork = iwork_query > 1 ? iwork_query : 1;
  }
  std::vector<T> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  routine(&jobz, &uplo, &n, a, &lda, w, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  if (info < 0) throw std::invalid_argument("LAPACK syevd: bad argument " + std::to_string(-info));
  if (info > 0)
    throw std::runtime_error("LAPACK syevd did not converge (" + std::to_string(info) +
                             " off-diagonal elements left)");
}

}  // namespace

template <>
void symmetric_eigenvalues<double>(int n, double* a, int lda, double* w, int two_stage_min) {
  if (n >= two_stage_min) run_syevd<double>(scipy_dsyevd_2stage_, true, n, a, lda, w);
  else run_syevd<double>(scipy_dsyevd_, false, n, a, lda, w);
}

template <>
void symmetric_eigenvalues<float>(int n, float* a, int lda, float* w, int two_stage_min) {
  if (n >= two_stage_min) run_syevd<float>(scipy_ssyevd_2stage_, true, n, a, lda, w);
  else run_syevd<float>(scipy_ssyevd_, false, n, a, lda, w);
}

template <>
void herk_lower<double>(char trans, int n, int k, const std::complex<double>* a, int lda, std::complex<double>* c,
                        int ldc) {
  const char uplo = 'L';
  const double one = 1.0, zero = 0.0;
  scipy_zherk_(&uplo, &trans, &n, &k, &one, a, &lda, &zero, c, &ldc, 1, 1);
}

template <>
void herk_lower<float>(char trans, int n, int k, const std::complex<float>* a, int lda, std::complex<float>* c,
                       int ldc) {
  const char uplo = 'L';
  const float one = 1.0f, zero = 0.0f;
  scipy_cherk_(&uplo, &trans, &n, &k, &one, a, &lda, &zero, c, &ldc, 1, 1);
}

namespace {

/// heevd, values only. Minimum workspace (LAPACK's documentation, JOBZ = 'N'): lwork >= n+1, lrwork >= n,
/// liwork >= 1 (all 1 for n <= 1); lwork = -1 asks for the optimal complex workspace instead.
template <class T, class Fn>
int run_heevd(Fn routine, int n, std::complex<T>* a, int lda, T* w, int lwork) {
  const char jobz = 'N', uplo = 'L';
  int info = 0;
  const int min_lwork = n > 1 ? n + 1 : 1, lrwork = n > 1 ? n : 1, liwork = 1;
  if (lwork == -1) {
    std::complex<T> work_query = 0;
    T rwork_query = 0;
    int iwork_query = 0, query = -1;
    routine(&jobz, &uplo, &n, a, &lda, w, &work_query, &query, &rwork_query, &query, &iwork_query, &query, &info,
            1, 1);
    if (info != 0) throw std::runtime_error("LAPACK heevd workspace query failed (info=" + std::to_string(info) + ")");
    return std::max(min_lwork, static_cast<int>(work_query.real()));
  }
  lwork = std::max(lwork, min_lwork);
  std::vector<std::complex<T>> work(static_cast<std::size_t>(lwork));
  std::vector<T> rwork(static_cast<std::size_t>(lrwork));
  int iwork = 0;
  routine(&jobz, &uplo, &n, a, &lda, w, work.data(), &lwork, rwork.data(), &lrwork, &iwork, &liwork, &info, 1, 1);
  if (info < 0) throw std::invalid_argument("LAPACK heevd: bad argument " + std::to_string(-info));
  if (info > 0)
    throw std::runtime_error("LAPACK heevd did not converge (" + std::to_string(info) +
                             " off-diagonal elements left)");
  return lwork;
}

}  // namespace

template <>
int hermitian_eigenvalues_lwork<double>(int n) {
  return run_heevd<double>(scipy_zheevd_, n, nullptr, std::max(n, 1), nullptr, -1);
}

template <>
int hermitian_eigenvalues_lwork<float>(int n) {
  return run_heevd<float>(scipy_cheevd_, n, nullptr, std::max(n, 1), nullptr, -1);
}

template <>
void hermitian_eigenvalues<double>(int n, std::complex<double>* a, int lda, double* w, int lwork) {
  run_heevd<double>(scipy_zheevd_, n, a, lda, w, lwork);
}

template <>
void hermitian_eigenvalues<float>(int n, std::complex<float>* a, int lda, float* w, int lwork) {
  run_heevd<float>(scipy_cheevd_, n, a, lda, w, lwork);
}

}  // namespace hts::lapack
