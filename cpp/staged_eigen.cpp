#include "staged_eigen.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "bulge_chasing.hpp"
#include "eigen_batch.hpp"
#include "lapack_two_stage.hpp"
#include "parallel.hpp"

namespace hts {

namespace {

void check_stop(const StagedOptions& opt) {
  if (opt.stop != nullptr && opt.stop->load(std::memory_order_relaxed)) throw Stopped();
}

struct Block {
  int i0, ni, j0, nj;
};

/// Y (m×k, ldy m) = A·V for the symmetric m×m matrix A (lower triangle at a, lda) and V (m×k, ldv m): one
/// task per row block of Y, each summing its blocks A(I, J)·V(J) in increasing J.
template <class T>
void symmetric_times_panel(int m, int k, const T* a, int lda, const T* v, T* y, int tile, int threads) {
  const int blocks = (m + tile - 1) / tile;
  parallel_for(static_cast<std::size_t>(blocks), threads, [&](std::size_t bi) {
    const int i0 = static_cast<int>(bi) * tile, ni = std::min(tile, m - i0);
    T* yi = y + i0;
    for (int bj = 0; bj < blocks; ++bj) {
      const int j0 = bj * tile, nj = std::min(tile, m - j0);
      const T beta = bj == 0 ? T(0) : T(1);
      const T* vj = v + j0;
      if (j0 < i0)  // below the diagonal: stored
        lapack::gemm_ab<T>('N', 'N', ni, k, nj, T(1), a + static_cast<std::size_t>(j0) * lda + i0, lda, vj, m, beta, yi, m);
      else if (j0 == i0)
        lapack::symm_lower_left<T>(ni, k, a + static_cast<std::size_t>(i0) * lda + i0, lda, vj, m, beta, yi, m);
      else  // above: the transpose of the stored block A(J, I)
        lapack::gemm_ab<T>('T', 'N', ni, k, nj, T(1), a + static_cast<std::size_t>(i0) * lda + j0, lda, vj, m, beta, yi, m);
    }
  });
}

/// A ← A − Z·Vᵀ − V·Zᵀ on the lower triangle of the symmetric m×m matrix A, one task per tile on or below
/// the diagonal. zv = [Z V] and vz = [V Z] (m×2k each, ld m), so an off-diagonal tile is one gemm of depth 2k.
template <class T>
void symmetric_rank2k_update(int m, int k, T* a, int lda, const T* zv, const T* vz, int tile, int threads) {
  std::vector<Block> tiles;
  for (int j0 = 0; j0 < m; j0 += tile)
    for (int i0 = j0; i0 < m; i0 += tile) tiles.push_back({i0, std::min(tile, m - i0), j0, std::min(tile, m - j0)});
  parallel_for(tiles.size(), threads, [&](std::size_t t) {
    const Block& b = tiles[t];
    T* c = a + static_cast<std::size_t>(b.j0) * lda + b.i0;
    if (b.i0 == b.j0)
      lapack::syr2k_lower<T>(b.ni, k, T(-1), zv + b.i0, m, vz + b.i0, m, c, lda);
    else
      lapack::gemm_ab<T>('N', 'T', b.ni, b.nj, 2 * k, T(-1), zv + b.i0, m, vz + b.j0, m, T(1), c, lda);
  });
}

}  // namespace

template <class T>
void staged_symmetric_eigenvalues(int n, T* a, int lda, T* w, const StagedOptions& opt) {
  if (n <= 0) return;
  if (lda < n || opt.band < 1 || opt.tile < 1) throw std::invalid_argument("staged eigensolver: bad arguments");
  const int kd = std::min(opt.band, n - 1 > 0 ? n - 1 : 1);
  const std::size_t ld = static_cast<std::size_t>(lda);
  auto at = [&](int i, int j) -> T* { return a + static_cast<std::size_t>(j) * ld + i; };

  // Stage 1: dense -> band, panel by panel.
  std::vector<T> tau(static_cast<std::size_t>(kd)), t(static_cast<std::size_t>(kd) * kd), x(t.size());
  std::vector<T> zv, vz;
  for (int j = 0; j + kd < n; j += kd) {
    check_stop(opt);
    const int r0 = j + kd, m = n - r0, k = std::min(m, kd);
    lapack::geqrf<T>(m, kd, at(r0, j), lda, tau.data());
    // [Z V] and [V Z]: V explicit (unit lower trapezoidal), Z computed into the first half of zv.
    zv.assign(static_cast<std::size_t>(m) * 2 * k, T(0));
    vz.assign(zv.size(), T(0));
    T* v = zv.data() + static_cast<std::size_t>(m) * k;
    for (int c = 0; c < k; ++c) {
      v[static_cast<std::size_t>(c) * m + c] = T(1);
      for (int i = c + 1; i < m; ++i) v[static_cast<std::size_t>(c) * m + i] = *at(r0 + i, j + c);
    }
    lapack::larft<T>(m, k, v, m, tau.data(), t.data(), kd);
    T* y = zv.data();  // Y = A22·V, then W = Y·T, then Z, all in place
    symmetric_times_panel<T>(m, k, at(r0, r0), lda, v, y, opt.tile, opt.threads);
    lapack::trmm_upper<T>('R', 'N', m, k, t.data(), kd, y, m);                     // W = Y·T
    lapack::gemm_ab<T>('T', 'N', k, k, m, T(1), v, m, y, m, T(0), x.data(), kd);   // X = Vᵀ·W
    lapack::trmm_upper<T>('L', 'T', k, k, t.data(), kd, x.data(), kd);             // X = Tᵀ·X
    lapack::gemm_ab<T>('N', 'N', m, k, k, T(-0.5), v, m, x.data(), kd, T(1), y, m);  // Z = W − ½·V·X
    std::copy(v, v + static_cast<std::size_t>(m) * k, vz.data());
    std::copy(y, y + static_cast<std::size_t>(m) * k, vz.data() + static_cast<std::size_t>(m) * k);
    symmetric_rank2k_update<T>(m, k, at(r0, r0), lda, zv.data(), vz.data(), opt.tile, opt.threads);
  }
  std::vector<T>().swap(zv);
  std::vector<T>().swap(vz);

  // The band: column c holds A(c .. c + kd, c); what geqrf left below the band (the reflectors) is not read.
  const int ldab = kd + 1;
  std::vector<T> ab(static_cast<std::size_t>(ldab) * n, T(0));
  for (int c = 0; c < n; ++c)
    for (int i = c; i <= std::min(c + kd, n - 1); ++i) ab[static_cast<std::size_t>(c) * ldab + (i - c)] = *at(i, c);

  // Stage 2: bulge chasing, each step's independent tasks shared by the threads. Stage 3: sterf, serial.
  check_stop(opt);
  std::vector<T> e(static_cast<std::size_t>(n));
  band_to_tridiagonal<T>(n, kd, ab.data(), ldab, w, e.data(), opt.threads, opt.stop);
  check_stop(opt);
  lapack::tridiagonal_eigenvalues<T>(n, w, e.data());
}

template void staged_symmetric_eigenvalues<double>(int, double*, int, double*, const StagedOptions&);
template void staged_symmetric_eigenvalues<float>(int, float*, int, float*, const StagedOptions&);

}  // namespace hts
