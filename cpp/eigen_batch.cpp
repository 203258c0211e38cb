#include "eigen_batch.hpp"
#include "staged_eigen.hpp"

#include <Eigen/Eigenvalues>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "lapack.hpp"
#include "parallel.hpp"

namespace hts {
namespace {

template <class T>
using ColMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

template <class S, class Fn>
void for_each_element(const MatrixView& m, Fn&& fn) {
  const S* base = static_cast<const S*>(m.data);
  for (std::int64_t i = 0; i < m.rows; ++i) {
    const S* row = base + i * m.row_stride;
    for (std::int64_t j = 0; j < m.cols; ++j) fn(i, j, row[j * m.col_stride]);
  }
}

/// NaN/Inf entries of n contiguous values: all exponent bits set, tested on the bit pattern so the loop
/// vectorises (the check reads every weight once, before any arithmetic).
template <class S>
std::int64_t count_nonfinite_contiguous(const S* p, std::int64_t n) {
  using Bits = typename std::conditional<sizeof(S) == 8, std::uint64_t, std::uint32_t>::type;
  const Bits exponent = sizeof(S) == 8 ? Bits(0x7ff0000000000000ULL) : Bits(0x7f800000U);
  std::int64_t bad = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    bad += (b & exponent) == exponent;
  }
  return bad;
}

template <class S>
std::int64_t count_nonfinite_as(const MatrixView& m) {
  const S* base = static_cast<const S*>(m.data);
  if (m.col_stride == 1 || m.row_stride == 1) {  // contiguous rows (or columns): one fast pass per line
    const bool rows = m.col_stride == 1;
    const std::int64_t lines = rows ? m.rows : m.cols, length = rows ? m.cols : m.rows;
    const std::int64_t step = rows ? m.row_stride : m.col_stride;
    std::int64_t bad = 0;
    for (std::int64_t l = 0; l < lines; ++l) bad += count_nonfinite_contiguous<S>(base + l * step, length);
    return bad;
  }
  std::int64_t bad = 0;
  for_each_element<S>(m, [&](std::int64_t, std::int64_t, S v) { bad += std::isfinite(v) ? 0 : 1; });
  return bad;
}

/// The operand handed to BLAS: a column-major matrix A with leading dimension lda such that the Gram
/// matrix of the smaller side is A·Aᵀ (trans 'N', A is n×k) or Aᵀ·A (trans 'T', A is k×n).
template <class T>
struct GramOperand {
  const T* a = nullptr;
  int lda = 0;
  char trans = 'N';
  int n = 0, k = 0;
  std::vector<T> storage;  // owns a converted/contiguous copy when the caller's memory cannot be used as is
};

/// Refuses a Gram matrix larger than this machine's memory (better a clear error than the OOM killer).
template <class T>
void check_gram_fits(std::int64_t n) {
  const double bytes = static_cast<double>(n) * static_cast<double>(n) * sizeof(T);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const double ram = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
  if (ram > 0 && bytes > 0.8 * ram)
    throw std::length_error("the Gram matrix of side " + std::to_string(n) + " needs " +
                            std::to_string(static_cast<long long>(bytes / 1e9)) + " GB, more than this machine has");
}

template <class T>
GramOperand<T> gram_operand(const MatrixView& m) {
  GramOperand<T> op;
  const std::int64_t n = m.small_side(), k = m.large_side();
  if (k > INT_MAX || std::abs(m.row_stride) > INT_MAX || std::abs(m.col_stride) > INT_MAX)
    throw std::invalid_argument("matrix too large for 32-bit LAPACK indices");
  op.n = static_cast<int>(n);
  op.k = static_cast<int>(k);
  const bool same_type = (m.dtype == DType::f64) == std::is_same<T, double>::value;
  const bool wide = m.cols > m.rows;
  // Row-major rows (col_stride 1): the memory is the column-major matrix Wᵀ (cols × rows).
  if (same_type && m.col_stride == 1 && m.row_stride >= std::max<std::int64_t>(m.cols, 1)) {
    op.a = static_cast<const T*>(m.data);
    op.lda = static_cast<int>(std::max<std::int64_t>(m.row_stride, 1));
    op.trans = wide ? 'T' : 'N';  // WᵀW = B·Bᵀ with B = Wᵀ; W·Wᵀ = Bᵀ·B
    return op;
  }
  // Column-major (row_stride 1): the memory is W itself, column-major rows × cols.
  if (same_type && m.row_stride == 1 && m.col_stride >= std::max<std::int64_t>(m.rows, 1)) {
    op.a = static_cast<const T*>(m.data);
    op.lda = static_cast<int>(std::max<std::int64_t>(m.col_stride, 1));
    op.trans = wide ? 'N' : 'T';
    return op;
  }
  // Anything else (other dtype, gaps, negative or zero strides): one contiguous row-major copy.
  op.storage.resize(static_cast<std::size_t>(m.rows * m.cols));
  T* dst = op.storage.data();
  auto copy = [&](std::int64_t i, std::int64_t j, auto v) { dst[i * m.cols + j] = static_cast<T>(v); };
  if (m.dtype == DType::f64) for_each_element<double>(m, copy);
  else for_each_element<float>(m, copy);
  op.a = dst;
  op.lda = static_cast<int>(m.cols);
  op.trans = wide ? 'T' : 'N';
  return op;
}

/// Lower triangle of the Gram block (I, J) with I >= J, rows [i0, i0+ni) × cols [j0, j0+nj) of G (ld n).
template <class T>
void gram_block(const GramOperand<T>& op, int i0, int ni, int j0, int nj, T* g, T beta = T(0)) {
  const int n = op.n;
  T* c = g + static_cast<std::size_t>(j0) * n + i0;
  if (op.trans == 'N') {  // G = A·Aᵀ, A is n×k: rows i of A
    const T* ai = op.a + i0;
    const T* aj = op.a + j0;
    if (i0 == j0) lapack::syrk_lower<T>('N', ni, op.k, ai, op.lda, c, n, beta);
    else lapack::gemm<T>('N', 'T', ni, nj, op.k, ai, op.lda, aj, op.lda, c, n, beta);
  } else {  // G = Aᵀ·A, A is k×n: columns i of A
    const T* ai = op.a + static_cast<std::size_t>(i0) * op.lda;
    const T* aj = op.a + static_cast<std::size_t>(j0) * op.lda;
    if (i0 == j0) lapack::syrk_lower<T>('T', ni, op.k, ai, op.lda, c, n, beta);
    else lapack::gemm<T>('T', 'N', ni, nj, op.k, ai, op.lda, aj, op.lda, c, n, beta);
  }
}

/// Ascending eigenvalues of the Gram matrix whose lower triangle is in g (n×n, column-major); g is destroyed.
/// `index` names the matrix in errors.
template <class T>
BadMatrix overflow_error(std::size_t index) {
  return BadMatrix(index, std::string("squared singular values overflow ") +
                              (std::is_same<T, float>::value ? "float32 (use precision='float64')"
                                                             : "float64 (entries are too large)"));
}

/// Throws when an eigenvalue is not finite: a finite Gram diagonal bounds each entry,
/// but λ_max can still reach n times the largest diagonal entry (up to the trace) and overflow.
template <class T>
void check_finite_eigenvalues(std::size_t index, const T* ev, int n) {
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(ev[i])) throw overflow_error<T>(index);
}

/// Gram sides from which the staged solver is faster than LAPACK's serial syevd_2stage on one thread
/// (bench/results/parallel_eigensolver.md), so it can serve every thread count.
template <class T>
std::int64_t staged_min_default() {
  return std::is_same<T, double>::value ? 2560 : 1536;
}

template <class T>
void gram_to_eigenvalues(std::size_t index, int n, T* g, T* out, const EigenOptions& opt) {
  // |G_ij| <= sqrt(G_ii·G_jj), so a finite diagonal means a finite Gram matrix.
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(g[static_cast<std::size_t>(i) * n + i])) throw overflow_error<T>(index);
  if (n <= opt.eigen_solver_max) {
    Eigen::Map<ColMatrix<T>> gm(g, n, n);
    Eigen::SelfAdjointEigenSolver<ColMatrix<T>> solver(gm, Eigen::EigenvaluesOnly);
    if (solver.info() != Eigen::Success) throw std::runtime_error("Eigen's symmetric eigensolver did not converge");
    std::copy(solver.eigenvalues().data(), solver.eigenvalues().data() + n, out);
  } else if (n >= (opt.staged_min >= 0 ? opt.staged_min : staged_min_default<T>())) {
    StagedOptions staged;
    staged.threads = opt.threads;
    staged.band = opt.staged_band;
    staged.stop = opt.stop;
    staged_symmetric_eigenvalues<T>(n, g, n, out, staged);
  } else {
    const std::int64_t two_stage = opt.two_stage_min >= 0 ? opt.two_stage_min
                                                          : (std::is_same<T, double>::value ? 896 : 2048);
    lapack::symmetric_eigenvalues<T>(n, g, n, out, static_cast<int>(std::min<std::int64_t>(two_stage, INT_MAX)));
  }
  check_finite_eigenvalues<T>(index, out, n);
  for (int i = 0; i < n; ++i) out[i] = out[i] > T(0) ? out[i] : T(0);  // round-off negatives (and -0) of a PSD matrix
}

/// Whether the smallest of n ascending Gram eigenvalues is within the Gram route's round-off of 0.
template <class T>
bool below_gram_resolution(const T* ev, int n, int k) {
  const double lam_max = static_cast<double>(ev[n - 1]);
  return lam_max > 0 && static_cast<double>(ev[0]) <
                            100.0 * (n + k) * std::numeric_limits<double>::epsilon() * lam_max;
}

/// Squared singular values by SVD (float64), ascending, into out: for matrices the Gram route cannot resolve.
template <class T>
void svd_eigenvalues(const GramOperand<T>& op, T* out) {
  // The operand is op(A) with A column-major; its singular values are W's. Copy A (gesdd destroys it).
  const int rows = op.trans == 'N' ? op.n : op.k, cols = op.trans == 'N' ? op.k : op.n;
  std::vector<double> a(static_cast<std::size_t>(rows) * cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i)
      a[static_cast<std::size_t>(j) * rows + i] = static_cast<double>(op.a[static_cast<std::size_t>(j) * op.lda + i]);
  std::vector<double> s(static_cast<std::size_t>(op.n));
  lapack::singular_values(rows, cols, a.data(), rows, s.data());
  for (int i = 0; i < op.n; ++i) out[i] = static_cast<T>(s[op.n - 1 - i] * s[op.n - 1 - i]);
}

template <class T>
void maybe_refine(const GramOperand<T>& op, T* out, const EigenOptions& opt) {
  if (std::is_same<T, double>::value && opt.refine_small && op.n > 1 && below_gram_resolution(out, op.n, op.k))
    svd_eigenvalues<T>(op, out);
}

template <class T>
void one_matrix(std::size_t index, const MatrixView& m, T* out, const EigenOptions& opt) {
  GramOperand<T> op = gram_operand<T>(m);
  std::vector<T> g(static_cast<std::size_t>(op.n) * op.n);
  gram_block<T>(op, 0, op.n, 0, op.n, g.data());
  check_stop(opt);
  gram_to_eigenvalues<T>(index, op.n, g.data(), out, opt);
  check_stop(opt);
  maybe_refine<T>(op, out, opt);
}

struct Tile {
  std::size_t matrix;
  int i0, ni, j0, nj;
};

/// Whether a large matrix's Gram is built from converted chunks rather than one converted copy: when its
/// memory cannot be handed to BLAS as is (another dtype, or strides) and the copy would exceed
/// opt.chunked_convert_min bytes. Depends on the shape, dtype and layout only (never on the thread count).
template <class T>
bool needs_chunked_conversion(const MatrixView& m, const EigenOptions& opt) {
  const bool same_type = (m.dtype == DType::f64) == std::is_same<T, double>::value;
  const bool direct = same_type && ((m.col_stride == 1 && m.row_stride >= std::max<std::int64_t>(m.cols, 1)) ||
                                    (m.row_stride == 1 && m.col_stride >= std::max<std::int64_t>(m.rows, 1)));
  const double bytes = static_cast<double>(m.rows) * static_cast<double>(m.cols) * sizeof(T);
  return !direct && opt.chunked_convert_min >= 0 && bytes > static_cast<double>(opt.chunked_convert_min);
}

/// Converts chunk [c0, c0 + kc) of the large side of m into a column-major n×kc block A (lda n), so that the
/// Gram matrix of the small side is the sum over chunks of A·Aᵀ.
template <class T, class S>
void convert_chunk(const MatrixView& m, std::int64_t c0, std::int64_t kc, T* dst) {
  const S* base = static_cast<const S*>(m.data);
  const bool tall = m.rows >= m.cols;
  const std::int64_t n = m.small_side();
  for (std::int64_t t = 0; t < kc; ++t)
    for (std::int64_t s = 0; s < n; ++s) {
      const std::int64_t i = tall ? c0 + t : s, j = tall ? s : c0 + t;
      dst[t * n + s] = static_cast<T>(base[i * m.row_stride + j * m.col_stride]);
    }
}

/// One large matrix whose conversion goes chunk by chunk: peak extra memory is the Gram matrix plus one
/// chunk of opt.chunk_bytes, not a converted copy of the whole matrix. The chunks' tiles are shared by all
/// threads; the chunk order and tiling are fixed, so the result does not depend on the thread count.
template <class T>
void chunked_matrix(std::size_t index, const MatrixView& m, T* out, const EigenOptions& opt) {
  const std::int64_t n = m.small_side(), k = m.large_side();
  if (k > INT_MAX) throw std::invalid_argument("matrix too large for 32-bit LAPACK indices");
  const std::int64_t kc = std::max<std::int64_t>(1, std::min<std::int64_t>(k, opt.chunk_bytes / (n * sizeof(T))));
  std::vector<T> g(static_cast<std::size_t>(n) * n), chunk(static_cast<std::size_t>(n * kc));
  std::vector<Tile> tiles;
  const int t = static_cast<int>(opt.gram_tile), ni = static_cast<int>(n);
  for (int j0 = 0; j0 < ni; j0 += t)
    for (int i0 = j0; i0 < ni; i0 += t) tiles.push_back({0, i0, std::min(t, ni - i0), j0, std::min(t, ni - j0)});
  GramOperand<T> op;
  op.a = chunk.data();
  op.lda = ni;
  op.trans = 'N';
  op.n = ni;
  for (std::int64_t c0 = 0; c0 < k; c0 += kc) {
    check_stop(opt);
    const std::int64_t len = std::min(kc, k - c0);
    const std::int64_t rows_per_task = std::max<std::int64_t>(1, (len + 63) / 64);
    const std::size_t tasks = static_cast<std::size_t>((len + rows_per_task - 1) / rows_per_task);
    parallel_for(tasks, opt.threads, [&](std::size_t p) {
      const std::int64_t s0 = static_cast<std::int64_t>(p) * rows_per_task;
      const std::int64_t sl = std::min(rows_per_task, len - s0);
      T* dst = chunk.data() + s0 * n;
      if (m.dtype == DType::f64) convert_chunk<T, double>(m, c0 + s0, sl, dst);
      else convert_chunk<T, float>(m, c0 + s0, sl, dst);
    });
    op.k = static_cast<int>(len);
    const T beta = c0 == 0 ? T(0) : T(1);
    parallel_for(tiles.size(), opt.threads, [&](std::size_t i) {
      check_stop(opt);
      const Tile& tl = tiles[i];
      gram_block<T>(op, tl.i0, tl.ni, tl.j0, tl.nj, g.data(), beta);
    });
  }
  std::vector<T>().swap(chunk);
  check_stop(opt);
  gram_to_eigenvalues<T>(index, ni, g.data(), out, opt);
  std::vector<T>().swap(g);
  if (std::is_same<T, double>::value && opt.refine_small && n > 1 && below_gram_resolution(out, ni, static_cast<int>(k))) {
    check_stop(opt);
    svd_eigenvalues<T>(gram_operand<T>(m), out);
  }  // rare (rank-deficient): needs the whole converted matrix
}

/// How one matrix's Gram matrix is built. Chosen from the shape, dtype and layout alone (never the thread
/// count), so every thread count runs the same arithmetic and gets the same bits.
enum class GramSplit {
  whole,  ///< one syrk, then the eigensolve: one task
  tiles,  ///< fixed output tiles (gemm/syrk over the whole large side), shared by threads
  slabs,  ///< tall matrices: fixed slabs of the large side, each summed into its own partial Gram matrix
};

/// Slabs of the large side used for a tall matrix's Gram matrix: at least 4n rows each, at most 8 slabs,
/// and only when the product is worth splitting (n²k ≥ opt.slab_min_cost multiply-adds).
inline std::int64_t slab_count(std::int64_t n, std::int64_t k, const EigenOptions& opt) {
  if (opt.slab_min_cost < 0 || static_cast<double>(n) * n * k < opt.slab_min_cost) return 1;
  return std::min<std::int64_t>(8, k / (4 * n));
}

/// The split of one matrix's Gram product: tiles from side tiled_gram_min on, else slabs when tall enough.
inline GramSplit gram_split(const MatrixView& m, const EigenOptions& opt) {
  if (m.small_side() >= opt.tiled_gram_min) return GramSplit::tiles;
  return slab_count(m.small_side(), m.large_side(), opt) >= 2 ? GramSplit::slabs : GramSplit::whole;
}

/// One matrix of a batch, as scheduled: `parts` tasks build its Gram matrix; the thread that finishes the
/// last of them runs the eigensolve at once, while the other threads go on with the next tasks.
template <class T>
struct GramJob {
  std::size_t index = 0;
  GramSplit split = GramSplit::whole;
  std::int64_t n = 0, k = 0;
  double cost = 0;
  std::vector<Tile> tiles;   // GramSplit::tiles
  std::int64_t slabs = 1;    // GramSplit::slabs
  std::once_flag prepared;   // the first part to run allocates the Gram matrix (and converts the operand)
  GramOperand<T> op;
  std::vector<T> gram;
  std::vector<std::vector<T>> partial;  // one per slab
  std::atomic<std::int64_t> remaining{0};

  std::int64_t parts() const {
    return split == GramSplit::tiles ? static_cast<std::int64_t>(tiles.size()) : split == GramSplit::slabs ? slabs : 1;
  }
};

/// Adds slab s's share of the large side to its partial Gram matrix (lower triangle, n×n). Memory BLAS can
/// use as is is read in place; anything else is converted in pieces of about 512 KB (cache-resident),
/// accumulated with beta = 1. The piece boundaries depend on the shape only.
template <class T>
void slab_gram(const MatrixView& m, const GramJob<T>& job, std::int64_t s, T* g) {
  const std::int64_t n = job.n, k = job.k;
  const std::int64_t c0 = k * s / job.slabs, c1 = k * (s + 1) / job.slabs;
  const bool same_type = (m.dtype == DType::f64) == std::is_same<T, double>::value;
  const bool direct = same_type && ((m.col_stride == 1 && m.row_stride >= std::max<std::int64_t>(m.cols, 1)) ||
                                    (m.row_stride == 1 && m.col_stride >= std::max<std::int64_t>(m.rows, 1)));
  if (direct) {
    GramOperand<T> whole = gram_operand<T>(m);  // no copy: direct memory
    GramOperand<T> op;
    op.n = whole.n;
    op.lda = whole.lda;
    op.trans = whole.trans;
    op.k = static_cast<int>(c1 - c0);
    // 'N': A is n×k (large side along columns); 'T': A is k×n (large side along rows).
    op.a = whole.trans == 'N' ? whole.a + static_cast<std::size_t>(c0) * whole.lda : whole.a + c0;
    gram_block<T>(op, 0, op.n, 0, op.n, g);
    return;
  }
  const std::int64_t piece = std::max<std::int64_t>(16, (std::int64_t{1} << 16) / n);
  std::vector<T> buffer(static_cast<std::size_t>(n * std::min(piece, c1 - c0)));
  GramOperand<T> op;
  op.a = buffer.data();
  op.lda = static_cast<int>(n);
  op.trans = 'N';
  op.n = static_cast<int>(n);
  for (std::int64_t p0 = c0; p0 < c1; p0 += piece) {
    const std::int64_t len = std::min(piece, c1 - p0);
    if (m.dtype == DType::f64) convert_chunk<T, double>(m, p0, len, buffer.data());
    else convert_chunk<T, float>(m, p0, len, buffer.data());
    op.k = static_cast<int>(len);
    gram_block<T>(op, 0, op.n, 0, op.n, g, p0 == c0 ? T(0) : T(1));
  }
}

template <class T>
void prepare_job(const MatrixView& m, GramJob<T>& job) {
  const std::size_t nn = static_cast<std::size_t>(job.n) * static_cast<std::size_t>(job.n);
  if (job.split == GramSplit::tiles) {
    job.op = gram_operand<T>(m);  // may convert or copy once; the tiles then share it
    job.gram.resize(nn);
  } else {
    job.partial.resize(static_cast<std::size_t>(job.slabs));
    for (auto& p : job.partial) p.resize(nn);
  }
}

template <class T>
void run_part(const MatrixView& m, GramJob<T>& job, std::int64_t part) {
  if (job.split == GramSplit::tiles) {
    const Tile& tl = job.tiles[static_cast<std::size_t>(part)];
    gram_block<T>(job.op, tl.i0, tl.ni, tl.j0, tl.nj, job.gram.data());
  } else {
    slab_gram<T>(m, job, part, job.partial[static_cast<std::size_t>(part)].data());
  }
}

/// After the last part: the slabs' partial Gram matrices are summed in slab order, then the eigensolve.
template <class T>
void finish_job(const MatrixView& m, GramJob<T>& job, T* out, const EigenOptions& opt) {
  if (job.split == GramSplit::slabs) {
    job.gram = std::move(job.partial[0]);
    for (std::size_t s = 1; s < job.partial.size(); ++s) {
      const T* p = job.partial[s].data();
      T* g = job.gram.data();
      for (std::size_t i = 0; i < job.gram.size(); ++i) g[i] += p[i];
      std::vector<T>().swap(job.partial[s]);
    }
  }
  const int n = static_cast<int>(job.n);
  check_stop(opt);
  gram_to_eigenvalues<T>(job.index, n, job.gram.data(), out, opt);
  std::vector<T>().swap(job.gram);
  if (std::is_same<T, double>::value && opt.refine_small && n > 1 && below_gram_resolution(out, n, static_cast<int>(job.k))) {
    check_stop(opt);
    if (job.split == GramSplit::tiles) svd_eigenvalues<T>(job.op, out);
    else svd_eigenvalues<T>(gram_operand<T>(m), out);
  }
  std::vector<T>().swap(job.op.storage);
}

/// Every matrix that is not converted chunk by chunk, in one pool: jobs costliest first (n²(k + n)), each
/// job's parts in a row. A thread takes the next part; whoever completes a job's last part runs its
/// eigensolve, so a large eigensolve overlaps the Gram products and eigensolves of the smaller matrices.
/// At most threads + 1 jobs hold Gram memory at once (parts are handed out in order).
template <class T>
void scheduled_matrices(const std::vector<MatrixView>& m, const std::vector<T*>& out,
                        const std::vector<std::size_t>& which, const EigenOptions& opt) {
  std::vector<std::unique_ptr<GramJob<T>>> jobs;
  for (std::size_t i : which) {
    auto job = std::make_unique<GramJob<T>>();
    job->index = i;
    job->n = m[i].small_side();
    job->k = m[i].large_side();
    const double n = static_cast<double>(job->n), k = static_cast<double>(job->k);
    job->cost = n * n * (k + n);
    job->split = gram_split(m[i], opt);
    if (job->split == GramSplit::tiles) {
      const int t = static_cast<int>(opt.gram_tile), ni = static_cast<int>(job->n);
      for (int j0 = 0; j0 < ni; j0 += t)
        for (int i0 = j0; i0 < ni; i0 += t) job->tiles.push_back({i, i0, std::min(t, ni - i0), j0, std::min(t, ni - j0)});
    } else if (job->split == GramSplit::slabs) {
      job->slabs = slab_count(job->n, job->k, opt);
    }
    job->remaining = job->parts();
    jobs.push_back(std::move(job));
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) { return a->cost > b->cost; });
  std::vector<std::pair<std::size_t, std::int64_t>> tasks;  // (job, part)
  double total_cost = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    total_cost += jobs[j]->cost;
    for (std::int64_t p = 0; p < jobs[j]->parts(); ++p) tasks.emplace_back(j, p);
  }
  // Starting threads (and OpenBLAS's per-thread buffers in them) costs ~0.1 ms: not worth it for tiny batches.
  const int threads = total_cost < 3e6 ? 1 : opt.threads;
  parallel_for(tasks.size(), threads, [&](std::size_t t) {
    check_stop(opt);
    GramJob<T>& job = *jobs[tasks[t].first];
    const MatrixView& view = m[job.index];
    if (job.split == GramSplit::whole) {
      one_matrix<T>(job.index, view, out[job.index], opt);
      return;
    }
    std::call_once(job.prepared, [&] { prepare_job<T>(view, job); });
    run_part<T>(view, job, tasks[t].second);
    if (job.remaining.fetch_sub(1) == 1) finish_job<T>(view, job, out[job.index], opt);
  });
}

}  // namespace

std::int64_t count_nonfinite(const MatrixView& m) {
  return m.dtype == DType::f64 ? count_nonfinite_as<double>(m) : count_nonfinite_as<float>(m);
}

template <class T>
void gram_eigenvalues(const std::vector<MatrixView>& m, const std::vector<T*>& out, const EigenOptions& opt) {
  if (out.size() != m.size()) throw std::invalid_argument("one output buffer per matrix is required");
  if (opt.gram_tile < 1 || opt.eigen_solver_max < 0) throw std::invalid_argument("bad kernel tuning options");
  lapack::use_single_thread();
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i].rows <= 0 || m[i].cols <= 0)
      throw BadMatrix(i, "empty matrix (" + std::to_string(m[i].rows) + "x" + std::to_string(m[i].cols) + ")");
    if (m[i].data == nullptr || out[i] == nullptr) throw std::invalid_argument("null buffer");
    check_gram_fits<T>(m[i].small_side());
  }
  std::int64_t elements = 0;
  for (const MatrixView& v : m) elements += v.rows * v.cols;
  const int check_threads = elements < (std::int64_t{1} << 20) ? 1 : opt.threads;  // not worth a thread start
  parallel_for(m.size(), check_threads, [&](std::size_t i) {
    check_stop(opt);
    const std::int64_t bad = count_nonfinite(m[i]);
    if (bad != 0)
      throw BadMatrix(i, std::to_string(bad) + " non-finite entries (NaN or Inf) out of " +
                             std::to_string(m[i].rows * m[i].cols));
  });

  // Matrices whose conversion would need a large extra copy go chunk by chunk (all threads on each, one
  // at a time); all others share one pool of tasks.
  std::vector<std::size_t> chunked, pooled;
  for (std::size_t i = 0; i < m.size(); ++i) {
    const bool slabs = gram_split(m[i], opt) == GramSplit::slabs;  // slabs convert piece by piece already
    (needs_chunked_conversion<T>(m[i], opt) && !slabs ? chunked : pooled).push_back(i);
  }
  for (std::size_t i : chunked) chunked_matrix<T>(i, m[i], out[i], opt);
  scheduled_matrices<T>(m, out, pooled, opt);
}

template void gram_eigenvalues<double>(const std::vector<MatrixView>&, const std::vector<double*>&,
                                       const EigenOptions&);
template void gram_eigenvalues<float>(const std::vector<MatrixView>&, const std::vector<float*>&,
                                      const EigenOptions&);

}  // namespace hts
