// Randomized ESDs of a batch (see randomized.hpp).
#include "randomized.hpp"

#include <algorithm>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>

#include "parallel.hpp"
#include "shuffle.hpp"

namespace hts {
namespace {

/// Rough seconds-proportional cost of one request, for the order only: per shuffled matrix a shuffle
/// (~N·M), a Gram product (N·M²) and a symmetric eigensolver (M³, several times slower per flop at these
/// sizes than the Gram product: weight 7, from timings of 384-wide float32 layers).
double cost(const ShuffleRequest& r) {
  if (r.slices.empty()) return 0;
  const double n = static_cast<double>(r.slices[0].large_side()), m = static_cast<double>(r.slices[0].small_side());
  return static_cast<double>(r.replicas) * static_cast<double>(r.slices.size()) * (8 * n * m + n * m * m + 7 * m * m * m);
}

/// Shuffles request r into a buffer of its input dtype and computes the eigenvalues with `threads` threads.
template <class T, class In>
void solve_as(const ShuffleRequest& r, T* out, int threads, const EigenOptions& opt) {
  const std::int64_t rows = r.slices[0].rows, cols = r.slices[0].cols;
  const std::size_t count = static_cast<std::size_t>(r.replicas) * r.slices.size();
  const std::size_t size = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  const std::unique_ptr<In[]> buffer(new In[count * size]);  // not zero-filled: the shuffle writes every value
  shuffle_elements<In>(r.slices, r.replicas, r.seed, buffer.get(), threads);
  std::vector<MatrixView> views(count);
  std::vector<T*> outs(count);
  const std::size_t m = static_cast<std::size_t>(std::min(rows, cols));
  for (std::size_t g = 0; g < count; ++g) {
    MatrixView& v = views[g];
    v.data = buffer.get() + g * size;
    v.dtype = sizeof(In) == 8 ? DType::f64 : DType::f32;
    v.rows = rows;
    v.cols = cols;
    v.row_stride = cols;
    v.col_stride = 1;
    outs[g] = out + g * m;
  }
  EigenOptions local = opt;
  local.threads = threads;
  gram_eigenvalues<T>(views, outs, local);
}

template <class T>
void solve(const ShuffleRequest& r, std::size_t index, T* out, int threads, const EigenOptions& opt) {
  check_stop(opt);  // a safe point before each request's shuffle (gram_eigenvalues has its own after it)
  try {
    if (r.slices[0].dtype == DType::f64)
      solve_as<T, double>(r, out, threads, opt);
    else
      solve_as<T, float>(r, out, threads, opt);
  } catch (const BadMatrix& e) {
    throw BadMatrix(index, e.what());
  }
}

}  // namespace

template <class T>
void randomized_gram_eigenvalues(const std::vector<ShuffleRequest>& requests, const std::vector<T*>& out,
                                 const EigenOptions& opt) {
  if (out.size() != requests.size())
    throw std::invalid_argument("randomized_gram_eigenvalues: one output per request");
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const ShuffleRequest& r = requests[i];
    if (r.slices.empty() || r.replicas < 1)
      throw std::invalid_argument("randomized_gram_eigenvalues: request " + std::to_string(i) +
                                  " has no slices or replicas");
    for (const MatrixView& v : r.slices)
      if (v.rows != r.slices[0].rows || v.cols != r.slices[0].cols || v.dtype != r.slices[0].dtype)
        throw std::invalid_argument("randomized_gram_eigenvalues: request " + std::to_string(i) +
                                    " has slices of different shapes or dtypes");
  }
  std::vector<std::size_t> order(requests.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<double> costs(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) costs[i] = cost(requests[i]);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return costs[a] > costs[b]; });
  const double total = std::accumulate(costs.begin(), costs.end(), 0.0);
  std::size_t first = 0;
  if (!order.empty() && costs[order[0]] > total - costs[order[0]] && effective_threads(opt.threads, 2) > 1) {
    solve<T>(requests[order[0]], order[0], out[order[0]], opt.threads, opt);  // alone, every thread
    first = 1;
  }
  parallel_for(order.size() - first, opt.threads, [&](std::size_t t) {
    const std::size_t i = order[first + t];
    solve<T>(requests[i], i, out[i], 1, opt);
  });
}

template void randomized_gram_eigenvalues<float>(const std::vector<ShuffleRequest>&, const std::vector<float*>&,
                                                 const EigenOptions&);
template void randomized_gram_eigenvalues<double>(const std::vector<ShuffleRequest>&, const std::vector<double*>&,
                                                  const EigenOptions&);

}  // namespace hts
