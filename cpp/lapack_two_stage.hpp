// The BLAS/LAPACK routines of the staged symmetric eigensolver (staged_eigen.hpp), from scipy-openblas32.
// Every call runs on one OpenBLAS thread (lapack::use_single_thread): parallelism comes from fixed tiles.
#pragma once

namespace hts::lapack {

/// C(m×n) = alpha·op(A)·op(B) + beta·C, column-major.
template <class T>
void gemm_ab(char transa, char transb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
             T beta, T* c, int ldc);

/// C(m×n) = A·B + beta·C with A (m×m) symmetric, its lower triangle stored (symm, side L, uplo L).
template <class T>
void symm_lower_left(int m, int n, const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc);

/// C(n×n, lower) = alpha·(A·Bᵀ + B·Aᵀ) + C, A and B n×k (syr2k, uplo L, trans N).
template <class T>
void syr2k_lower(int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T* c, int ldc);

/// B = B·T (side 'R') or B = Tᵀ·B (side 'L', transposed), T k×k upper triangular, non-unit diagonal.
template <class T>
void trmm_upper(char side, char transt, int m, int n, const T* t, int ldt, T* b, int ldb);

/// QR of the m×n panel A (geqrf): R in the upper triangle, the reflectors below it, tau (min(m, n)).
template <class T>
void geqrf(int m, int n, T* a, int lda, T* tau);

/// The k×k upper triangular T of the block reflector H = I − V·T·Vᵀ from k forward, columnwise reflectors
/// V (m×k, unit lower trapezoidal) and tau (larft 'F', 'C').
template <class T>
void larft(int m, int k, const T* v, int ldv, const T* tau, T* t, int ldt);

/// Eigenvalues, ascending into w, of the symmetric band matrix (bandwidth kd, lower band storage ab with
/// ldab >= kd + 1, destroyed): band → tridiagonal by bulge chasing (sytrd_sb2st, values only), then sterf.
template <class T>
void band_eigenvalues(int n, int kd, T* ab, int ldab, T* w);

/// Ascending eigenvalues, into d, of the symmetric tridiagonal matrix with diagonal d (n) and subdiagonal
/// e (n − 1, destroyed): LAPACK sterf (Pal–Walker–Kahan QL/QR, values only).
template <class T>
void tridiagonal_eigenvalues(int n, T* d, T* e);

}  // namespace hts::lapack
