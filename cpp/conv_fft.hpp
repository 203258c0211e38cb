// Exact spectrum of a Conv2D layer's (circular) convolution operator, per 2-D frequency
// (Sedghi, Gupta & Long 2019, "The singular values of convolutional layers").
#pragma once

#include <atomic>
#include <cstdint>

#include "eigen_batch.hpp"  // DType

namespace hts {

/// A read-only 4-D conv kernel in caller memory, torch layout (out, in, kh, kw): element (o, i, p, q) is at
/// data + o*stride[0] + i*stride[1] + p*stride[2] + q*stride[3] (strides in elements, any sign).
struct KernelView {
  const void* data = nullptr;
  DType dtype = DType::f64;
  std::int64_t out = 0, in = 0, kh = 0, kw = 0;
  std::int64_t stride[4] = {0, 0, 0, 0};

  std::int64_t small_side() const { return out < in ? out : in; }
};

/// Squared singular values of the convolution operator of kernel `k` on an n1×n2 input with periodic
/// boundary (n1 >= kh, n2 >= kw), grouped by frequency.
///
/// For each frequency (u, v), u < n1, v < n2, A_uv[o, i] = Σ_{p,q} K[o,i,p,q]·exp(−2πi(up/n1 + vq/n2)) is the
/// out×in complex matrix of the zero-padded kernel's 2-D DFT; row f = u·n2 + v of `out` (row-major,
/// n1·n2 rows of min(out, in)) receives the ascending eigenvalues of the smaller Gram matrix of A_uv
/// (herk + heevd, values only; round-off negatives clamped to 0). Their union is the operator's spectrum.
/// A_{−u,−v} = conj(A_uv) has the same eigenvalues, so only one of each such pair is computed (and copied);
/// frequencies equal to their own conjugate have a real A_uv and use the real solver.
///
/// T = double accumulates the DFT and the Gram matrix in float64 whatever the input dtype; T = float forms
/// the DFT in float64 and rounds it to float32 for the Gram matrix and eigensolver. Threads run over
/// frequencies; every frequency is computed the same way whatever the thread count (bit-identical output).
/// Throws std::invalid_argument for empty kernels, bad sizes, NaN/Inf entries (with their count) and squares
/// that overflow T.
///
/// `stop` (or null): the caller's stop flag, read before each frequency task and before each eigensolve; once
/// it reads true the call throws Stopped (eigen_batch.hpp), so a stop lands within one frequency's Gram product
/// or eigensolve. `out` is then partly written. Never written by the kernel.
template <class T>
void conv_operator_eigenvalues(const KernelView& k, std::int64_t n1, std::int64_t n2, int threads, T* out,
                               const std::atomic<bool>* stop = nullptr);

}  // namespace hts
