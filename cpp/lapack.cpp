#include "lapack.hpp"

#include <algorithm>
#include <complex>
#include <cstddef>
#include <stdexcept>
#include <algorithm>
#include <string>

extern "C" {
void scipy_openblas_set_num_threads(int);
int scipy_openblas_get_num_threads(void);
char* scipy_openblas_get_config(void);
void scipy_dsyrk_(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                  const double*, double*, const int*);
void scipy_ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*, const int*,
                  const float*, float*, const int*);
void scipy_dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                  const int*, const double*, const int*, const double*, double*, const int*);
void scipy_sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                  const int*, const float*, const int*, const float*, float*, const int*);
void scipy_dgesdd_(const char*, const int*, const int*, double*, const int*, double*, double*, const int*,
                   double*, const int*, double*, const int*, int*, int*, std::size_t);
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
void scipy_zheevd_2stage_(const char*, const char*, const int*, std::complex<double>*, const int*, double*,
                          std::complex<double>*, const int*, double*, const int*, int*, const int*, int*,
                          std::size_t, std::size_t);
void scipy_cheevd_2stage_(const char*, const char*, const int*, std::complex<float>*, const int*, float*,
                          std::complex<float>*, const int*, float*, const int*, int*, const int*, int*,
                          std::size_t, std::size_t);
}

namespace hts::lapack {

void use_single_thread() {
  if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

const char* openblas_config() { return scipy_openblas_get_config(); }

template <>
void syrk_lower<double>(char trans, int n, int k, const double* a, int lda, double* c, int ldc, double beta) {
  const char uplo = 'L';
  const double one = 1.0;
  scipy_dsyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &beta, c, &ldc);
}

template <>
void syrk_lower<float>(char trans, int n, int k, const float* a, int lda, float* c, int ldc, float beta) {
  const char uplo = 'L';
  const float one = 1.0f;
  scipy_ssyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &beta, c, &ldc);
}

template <>
void gemm<double>(char ta, char tb, int m, int n, int k, const double* a, int lda, const double* b, int ldb,
                  double* c, int ldc, double beta) {
  const double one = 1.0;
  scipy_dgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}

template <>
void gemm<float>(char ta, char tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                 float* c, int ldc, float beta) {
  const float one = 1.0f;
  scipy_sgemm_(&ta, &tb, &m, &n, &k, &one, a, &lda, b, &ldb, &beta, c, &ldc);
}

namespace {

template <class T, class Fn>
void run_syevd(Fn routine, int n, T* a, int lda, T* w) {
  const char jobz = 'N', uplo = 'L';
  int info = 0;
  // Ask for the optimal workspace: with only the documented minimum (2n+1) syevd's tridiagonal reduction
  // falls back to its unblocked BLAS-2 code, measured 1.4x slower at n = 1000.
  T work_query = 0;
  int iwork_query = 0, query = -1;
  routine(&jobz, &uplo, &n, a, &lda, w, &work_query, &query, &iwork_query, &query, &info, 1, 1);
  if (info != 0) throw std::runtime_error("LAPACK syevd workspace query failed (info=" + std::to_string(info) + ")");
  int lwork = static_cast<int>(work_query) + 1;
  int liwork = iwork_query > 1 ? iwork_query : 1;
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
  if (n >= two_stage_min) run_syevd<double>(scipy_dsyevd_2stage_, n, a, lda, w);
  else run_syevd<double>(scipy_dsyevd_, n, a, lda, w);
}

template <>
void symmetric_eigenvalues<float>(int n, float* a, int lda, float* w, int two_stage_min) {
  if (n >= two_stage_min) run_syevd<float>(scipy_ssyevd_2stage_, n, a, lda, w);
  else run_syevd<float>(scipy_ssyevd_, n, a, lda, w);
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

template <class T>
using Heevd = void (*)(const char*, const char*, const int*, std::complex<T>*, const int*, T*, std::complex<T>*,
                       const int*, T*, const int*, int*, const int*, int*, std::size_t, std::size_t);

/// heevd(_2stage) workspace query, values only; never below the documented minimum (JOBZ = 'N', n > 1:
/// lwork >= n+1, lrwork >= n, liwork >= 1; all 1 for n <= 1).
template <class T>
HermitianWork heevd_work(Heevd<T> routine, int n, bool two_stage) {
  const char jobz = 'N', uplo = 'L';
  const int lda = std::max(n, 1), query = -1;
  int info = 0, iwork = 0;
  std::complex<T> work = 0;
  T rwork = 0;
  routine(&jobz, &uplo, &n, nullptr, &lda, nullptr, &work, &query, &rwork, &query, &iwork, &query, &info, 1, 1);
  if (info != 0) throw std::runtime_error("LAPACK heevd workspace query failed (info=" + std::to_string(info) + ")");
  HermitianWork ws;
  ws.n = n;
  ws.two_stage = two_stage;
  ws.lwork = std::max(n > 1 ? n + 1 : 1, static_cast<int>(work.real()));
  ws.lrwork = std::max(n > 1 ? n : 1, static_cast<int>(rwork));
  ws.liwork = std::max(1, iwork);
  return ws;
}

template <class T>
void heevd(Heevd<T> routine, int n, std::complex<T>* a, int lda, T* w, const HermitianWork& ws) {
  if (ws.n != n) throw std::invalid_argument("hermitian_eigenvalues: workspace is for another size");
  const char jobz = 'N', uplo = 'L';
  int info = 0;
  std::vector<std::complex<T>> work(static_cast<std::size_t>(ws.lwork));
  std::vector<T> rwork(static_cast<std::size_t>(ws.lrwork));
  std::vector<int> iwork(static_cast<std::size_t>(ws.liwork));
  routine(&jobz, &uplo, &n, a, &lda, w, work.data(), &ws.lwork, rwork.data(), &ws.lrwork, iwork.data(), &ws.liwork,
          &info, 1, 1);
  if (info < 0) throw std::invalid_argument("LAPACK heevd: bad argument " + std::to_string(-info));
  if (info > 0)
    throw std::runtime_error("LAPACK heevd did not converge (" + std::to_string(info) +
                             " off-diagonal elements left)");
}

}  // namespace

template <>
HermitianWork hermitian_eigenvalues_work<double>(int n, int two_stage_min) {
  return n >= two_stage_min ? heevd_work<double>(scipy_zheevd_2stage_, n, true)
                            : heevd_work<double>(scipy_zheevd_, n, false);
}

template <>
HermitianWork hermitian_eigenvalues_work<float>(int n, int two_stage_min) {
  return n >= two_stage_min ? heevd_work<float>(scipy_cheevd_2stage_, n, true)
                            : heevd_work<float>(scipy_cheevd_, n, false);
}

template <>
void hermitian_eigenvalues<double>(int n, std::complex<double>* a, int lda, double* w, const HermitianWork& ws) {
  heevd<double>(ws.two_stage ? scipy_zheevd_2stage_ : scipy_zheevd_, n, a, lda, w, ws);
}

template <>
void hermitian_eigenvalues<float>(int n, std::complex<float>* a, int lda, float* w, const HermitianWork& ws) {
  heevd<float>(ws.two_stage ? scipy_cheevd_2stage_ : scipy_cheevd_, n, a, lda, w, ws);
}

void singular_values(int rows, int cols, double* a, int lda, double* s) {
  const char jobz = 'N';
  const int one = 1;
  int info = 0, query = -1;
  double dummy = 0.0, work_query = 0.0;
  std::vector<int> iwork(8 * static_cast<std::size_t>(std::min(rows, cols)));
  scipy_dgesdd_(&jobz, &rows, &cols, a, &lda, s, &dummy, &one, &dummy, &one, &work_query, &query, iwork.data(),
                &info, 1);
  if (info != 0) throw std::runtime_error("LAPACK gesdd workspace query failed (info=" + std::to_string(info) + ")");
  int lwork = static_cast<int>(work_query) + 1;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  scipy_dgesdd_(&jobz, &rows, &cols, a, &lda, s, &dummy, &one, &dummy, &one, work.data(), &lwork, iwork.data(),
                &info, 1);
  if (info < 0) throw std::invalid_argument("LAPACK gesdd: bad argument " + std::to_string(-info));
  if (info > 0) throw std::runtime_error("LAPACK gesdd did not converge");
}

}  // namespace hts::lapack
