// The few BLAS/LAPACK routines the kernel needs, from scipy's OpenBLAS build (scipy-openblas32).
#pragma once

#include <complex>
#include <vector>

namespace hts::lapack {

/// Makes this process's private OpenBLAS single-threaded: parallelism comes from hts's own per-call pool,
/// which keeps results independent of the thread count and never nests two pools. Called at import and at
/// the start of every kernel call, because tools such as threadpoolctl raise the thread count of every
/// OpenBLAS in the process, ours included (each of our workers would then start a pool of its own).
void use_single_thread();

/// OpenBLAS's configuration string (version, target CPU).
const char* openblas_config();

/// C = A·Aᵀ + beta·C (trans == 'N', A is n×k) or Aᵀ·A + beta·C (trans == 'T', A is k×n), lower triangle,
/// column-major.
template <class T>
void syrk_lower(char trans, int n, int k, const T* a, int lda, T* c, int ldc, T beta = T(0));

/// C(m×n) = op(A)·op(B) + beta·C, column-major.
template <class T>
void gemm(char transa, char transb, int m, int n, int k, const T* a, int lda, const T* b, int ldb, T* c,
          int ldc, T beta = T(0));

/// Ascending eigenvalues of the symmetric n×n matrix whose lower triangle is in `a` (column-major, lda).
/// `a` is destroyed. Uses the two-stage tridiagonal reduction (syevd_2stage) for n >= two_stage_min.
template <class T>
void symmetric_eigenvalues(int n, T* a, int lda, T* w, int two_stage_min);

/// C = Aᴴ·A (trans == 'C', A is k×n) or C = A·Aᴴ (trans == 'N', A is n×k), lower triangle, column-major.
template <class T>
void herk_lower(char trans, int n, int k, const std::complex<T>* a, int lda, std::complex<T>* c, int ldc);

/// Workspace sizes for hermitian_eigenvalues of side n (LAPACK's optimal, values only) and which routine:
/// heevd, or heevd_2stage (two-stage tridiagonal reduction) when n >= two_stage_min. Depends on n alone:
/// query once per batch.
struct HermitianWork {
  int n = 0, lwork = 1, lrwork = 1, liwork = 1;
  bool two_stage = false;
};
template <class T>
HermitianWork hermitian_eigenvalues_work(int n, int two_stage_min);

/// Ascending eigenvalues of the Hermitian n×n matrix whose lower triangle is in `a` (column-major, lda),
/// values only. `a` is destroyed; `ws` from hermitian_eigenvalues_work for the same n.
template <class T>
void hermitian_eigenvalues(int n, std::complex<T>* a, int lda, T* w, const HermitianWork& ws);

/// Descending singular values of the rows×cols column-major matrix `a` (lda), LAPACK gesdd, values only.
/// `a` is destroyed.
void singular_values(int rows, int cols, double* a, int lda, double* s);

}  // namespace hts::lapack
