// Element shuffle (see shuffle.hpp).
//
// Why the bucketed branch is a uniform random permutation (Rao 1961, Sandelius 1962). Take the labels
// ℓ_0 … ℓ_{L−1} to be independent and uniform on the B = 2^b buckets (the generator's outputs are taken as
// ideal; a b-bit field of a uniform 64-bit word is exactly uniform because B divides 2^16). Fix the bucket
// sizes n_0 … n_{B−1}. Every assignment of the L elements to buckets with those sizes has the same probability
// B^−L, so conditioned on the sizes each of the L!/Π n_j! assignments is equally likely. A target permutation
// π (with these sizes) fixes which elements must land in bucket j and in what order; the first happens with
// probability Π n_j!/L!, and Fisher–Yates then produces the required order of bucket j with probability 1/n_j!,
// independently (each bucket has its own stream). So P(π | sizes) = (Π n_j!/L!)·Π 1/n_j! = 1/L! for every size
// vector, and P(π) = 1/L!. The stable scatter only fixes the order each bucket starts from, which Fisher–Yates
// does not care about.
//
// Speed: a plain Fisher–Yates over a matrix larger than the caches waits on a cache miss per swap. Here the
// scatter writes 2^b sequential streams, and each bucket (~kShuffleBucketSize elements) is shuffled while it
// sits in cache; the count, scatter and bucket passes run on all threads.
#include "shuffle.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "parallel.hpp"

namespace hts {
namespace {

constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// High and low 64 bits of the 128-bit product a·b, in portable integer arithmetic.
inline void mul_64x64(std::uint64_t a, std::uint64_t b, std::uint64_t& hi, std::uint64_t& lo) {
  const std::uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
  const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const std::uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
  hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
}

/// Uniform integers below bounds < 2^32 from the 32-bit halves of a SplitMix64 stream (low half first),
/// by Lemire's multiply-shift with rejection: m = x·bound; reject while m mod 2^32 < 2^32 mod bound.
class Draw32 {
 public:
  explicit Draw32(std::uint64_t seed) : g_(seed) {}
  std::uint32_t below(std::uint32_t bound) {
    std::uint64_t m = std::uint64_t{next()} * bound;
    if (static_cast<std::uint32_t>(m) < bound) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-bound) % bound;  // 2^32 mod bound
      while (static_cast<std::uint32_t>(m) < threshold) m = std::uint64_t{next()} * bound;
    }
    return static_cast<std::uint32_t>(m >> 32);
  }

 private:
  std::uint32_t next() {
    if (have_) {
      have_ = false;
      return static_cast<std::uint32_t>(word_ >> 32);
    }
    word_ = g_.next();
    have_ = true;
    return static_cast<std::uint32_t>(word_);
  }
  SplitMix64 g_;
  std::uint64_t word_ = 0;
  bool have_ = false;
};

/// Calls f(i, value) for the logical (row-major) elements i in [begin, end) of v.
template <class T, class F>
void for_elements(const MatrixView& v, std::size_t begin, std::size_t end, F&& f) {
  const T* src = static_cast<const T*>(v.data);
  const std::size_t cols = static_cast<std::size_t>(v.cols);
  if (v.col_stride == 1 && v.row_stride == v.cols) {
    for (std::size_t i = begin; i < end; ++i) f(i, src[i]);
    return;
  }
  std::size_t i = begin;
  for (std::size_t r = begin / cols; i < end; ++r) {
    const T* row = src + static_cast<std::int64_t>(r) * v.row_stride;
    for (std::size_t c = i - r * cols; c < cols && i < end; ++c, ++i) f(i, row[static_cast<std::int64_t>(c) * v.col_stride]);
  }
}

/// The bucket labels of one slice: ℓ_i = top b bits of 16-bit field i mod 4 of output ⌊i/4⌋ + 1 of
/// SplitMix64(key). label(i) must be called with increasing i (each output is computed once per 4 labels).
class Labels {
 public:
  Labels(std::uint64_t key, int bits) : key_(key), shift_(16 - bits), mask_((1u << bits) - 1) {}
  /// Calls f(i, ℓ_i) for i in [begin, end).
  template <class F>
  void each(std::size_t begin, std::size_t end, F&& f) const {
    for (std::size_t i = begin; i < end;) {
      const std::uint64_t w = mix64(key_ + (static_cast<std::uint64_t>(i >> 2) + 1) * kGamma);
      for (std::size_t u = i & 3; u < 4 && i < end; ++u, ++i)
        f(i, static_cast<unsigned>(w >> (16 * u + shift_)) & mask_);
    }
  }
  unsigned operator()(std::size_t i) {
    if ((i & 3) == 0 || !valid_) {
      word_ = mix64(key_ + (static_cast<std::uint64_t>(i >> 2) + 1) * kGamma);
      valid_ = true;
    }
    return static_cast<unsigned>(word_ >> (16 * (i & 3) + shift_)) & mask_;
  }

 private:
  std::uint64_t key_, word_ = 0;
  int shift_;
  unsigned mask_;
  bool valid_ = false;
};

template <class T>
void shuffle_one(const MatrixView& v, std::uint64_t stream_key, T* out) {
  std::size_t o = 0;
  for_elements<T>(v, 0, static_cast<std::size_t>(v.rows * v.cols), [&](std::size_t, T x) { out[o++] = x; });
  SplitMix64 g(stream_key);
  for (std::size_t i = o; i-- > 1;) std::swap(out[i], out[g.below(static_cast<std::uint64_t>(i) + 1)]);
}

/// The bucketed branch for `tasks` output slices of L elements each, with 2^bits buckets.
template <class T>
void shuffle_bucketed(const std::vector<MatrixView>& slices, std::size_t tasks, std::uint64_t seed, int bits,
                      std::size_t L, T* out, int threads) {
  const std::size_t k = slices.size(), B = std::size_t{1} << bits;
  // Chunks of the count and scatter passes: any split gives the same output (the scatter is stable).
  const std::size_t C = std::clamp<std::size_t>(L >> 16, 1, 64);
  const std::size_t chunk = (L + C - 1) / C;
  std::vector<std::uint64_t> keys(tasks);
  for (std::size_t g = 0; g < tasks; ++g) keys[g] = stream_seed(seed, g);
  // counts[(g·C + c)·B + j]: elements of chunk c of slice g with label j; then their first output position.
  std::vector<std::size_t> pos(tasks * C * B, 0);
  auto chunk_range = [&](std::size_t c) { return std::make_pair(c * chunk, std::min(L, (c + 1) * chunk)); };

  parallel_for(tasks * C, threads, [&](std::size_t t) {
    const std::size_t g = t / C, c = t % C;
    const auto [begin, end] = chunk_range(c);
    Labels label(keys[g], bits);
    std::size_t* count = pos.data() + t * B;
    label.each(begin, end, [&](std::size_t, unsigned j) { ++count[j]; });
  });
  // Exclusive prefix sums in (bucket, chunk) order: bucket j of slice g starts at start[g·B + j].
  std::vector<std::size_t> start(tasks * B + 1);
  for (std::size_t g = 0; g < tasks; ++g) {
    std::size_t run = 0;
    for (std::size_t j = 0; j < B; ++j) {
      start[g * B + j] = run;
      for (std::size_t c = 0; c < C; ++c) {
        std::size_t& p = pos[(g * C + c) * B + j];
        const std::size_t n = p;
        p = run;
        run += n;
      }
    }
  }
  parallel_for(tasks * C, threads, [&](std::size_t t) {
    const std::size_t g = t / C, c = t % C;
    const auto [begin, end] = chunk_range(c);
    Labels label(keys[g], bits);
    std::size_t* next = pos.data() + t * B;
    T* dst = out + g * L;
    for_elements<T>(slices[g % k], begin, end, [&](std::size_t i, T x) { dst[next[label(i)]++] = x; });
  });
  parallel_for(tasks * B, threads, [&](std::size_t t) {
    const std::size_t g = t / B, j = t % B;
    const std::size_t first = start[t], n = (j + 1 < B ? start[t + 1] : L) - first;
    T* a = out + g * L + first;
    if (n > 0xFFFFFFFFu) {  // beyond 32-bit draws (never met by real layers): 64-bit ones, as for b = 0
      SplitMix64 g64(stream_seed(keys[g], j));
      for (std::size_t i = n; i-- > 1;) std::swap(a[i], a[g64.below(static_cast<std::uint64_t>(i) + 1)]);
      return;
    }
    Draw32 draw(stream_seed(keys[g], j));
    for (std::size_t i = n; i-- > 1;) std::swap(a[i], a[draw.below(static_cast<std::uint32_t>(i + 1))]);
  });
}

}  // namespace

std::uint64_t SplitMix64::below(std::uint64_t bound) {
  std::uint64_t hi, lo;
  mul_64x64(next(), bound, hi, lo);
  if (lo < bound) {
    const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (lo < threshold) mul_64x64(next(), bound, hi, lo);
  }
  return hi;
}

std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream) {
  SplitMix64 g(seed ^ mix64(stream));
  g.next();
  return g.next();
}

int shuffle_bucket_bits(std::int64_t L, std::int64_t bucket_size) {
  if (bucket_size < 1) throw std::invalid_argument("shuffle_elements: bucket_size must be >= 1");
  int b = 0;
  while (b < kShuffleMaxBucketBits && L > (bucket_size << b)) ++b;
  return b;
}

template <class T>
void shuffle_elements(const std::vector<MatrixView>& slices, std::int64_t replicas, std::uint64_t seed, T* out,
                      int threads, std::int64_t bucket_size) {
  const DType want = sizeof(T) == 8 ? DType::f64 : DType::f32;
  if (replicas < 1) throw std::invalid_argument("shuffle_elements: replicas must be >= 1");
  if (slices.empty()) return;
  const std::int64_t rows = slices[0].rows, cols = slices[0].cols;
  if (rows <= 0 || cols <= 0) throw std::invalid_argument("shuffle_elements: empty matrix");
  for (const MatrixView& v : slices) {
    if (v.rows != rows || v.cols != cols) throw std::invalid_argument("shuffle_elements: slices differ in shape");
    if (v.dtype != want) throw std::invalid_argument("shuffle_elements: output dtype differs from the input's");
  }
  const std::size_t k = slices.size();
  const std::size_t size = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  const std::size_t tasks = static_cast<std::size_t>(replicas) * k;
  const int bits = shuffle_bucket_bits(static_cast<std::int64_t>(size), bucket_size);
  if (bits > 0) {
    shuffle_bucketed<T>(slices, tasks, seed, bits, size, out, threads);
    return;
  }
  parallel_for(tasks, threads, [&](std::size_t g) {
    shuffle_one<T>(slices[g % k], stream_seed(seed, g), out + g * size);
  });
}

template void shuffle_elements<float>(const std::vector<MatrixView>&, std::int64_t, std::uint64_t, float*, int,
                                      std::int64_t);
template void shuffle_elements<double>(const std::vector<MatrixView>&, std::int64_t, std::uint64_t, double*, int,
                                       std::int64_t);

}  // namespace hts
