// Element shuffle of weight matrices (WeightWatcher's randomize=True): a uniformly random permutation of the
// entries of each slice, reproducible from a seed on every platform and for every thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "eigen_batch.hpp"

namespace hts {

/// The PRNG behind shuffle_elements: splitmix64 (Steele, Lea & Flood 2014; the constants of Vigna's public
/// domain reference). state += 0x9E3779B97F4A7C15; z = state; z = (z ^ z>>30)·0xBF58476D1CE4E5B9;
/// z = (z ^ z>>27)·0x94D049BB133111EB; return z ^ z>>31. Plain 64-bit integer arithmetic: the same stream
/// on every platform and compiler. Output n (n = 1, 2, ...) of SplitMix64(s) is mix(s + n·0x9E3779B97F4A7C15),
/// so any output can be computed directly from its index (a counter-based generator).
struct SplitMix64 {
  std::uint64_t state;
  explicit SplitMix64(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [0, bound), bound >= 1, without bias (Lemire 2019: multiply-shift with rejection).
  std::uint64_t below(std::uint64_t bound);
};

/// Seed of the independent stream number `stream` under the user's `seed`: two splitmix64 steps of
/// seed ^ mix(stream), so streams of nearby seeds and nearby indices are unrelated.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream);

/// Slices of at most this many elements are shuffled by one Fisher–Yates pass; larger ones are first split
/// into 2^b random buckets of about this size (which fit in a core's L2 cache).
constexpr std::int64_t kShuffleBucketSize = std::int64_t{1} << 15;
/// At most 2^6 buckets: the scatter writes one stream per bucket, and more streams than the L1 TLB has entries
/// (64 on current x86 cores) make it about twice as slow (measured: 64 buckets 22 ms, 128 to 512 buckets 44 ms
/// for 11.7 M float32 values on one core). Very large slices thus get buckets larger than L2.
constexpr int kShuffleMaxBucketBits = 6;

/// b for a slice of L elements: the smallest b >= 0 with L <= 2^b · bucket_size, capped at
/// kShuffleMaxBucketBits. A function of L (and the knob bucket_size >= 1) alone, never of the thread count.
int shuffle_bucket_bits(std::int64_t L, std::int64_t bucket_size = kShuffleBucketSize);

/// Shuffles the elements of each slice of `slices` (all the same shape rows×cols) `replicas` times.
/// out holds replicas·k C-contiguous rows×cols matrices: out[g], g = r·k + s, is slice s read in row-major
/// order (a[0..L−1], L = rows·cols) and permuted with the stream key K = stream_seed(seed, g):
///
/// - b = shuffle_bucket_bits(L, bucket_size) = 0: Fisher–Yates (Durstenfeld) driven by SplitMix64(K):
///   for i = L−1 … 1: swap(a[i], a[below(i + 1)]).
/// - b > 0 (Rao–Sandelius: random buckets, then Fisher–Yates in each):
///   1. element i gets the label ℓ_i = bits [16·(i mod 4) + 16 − b, 16·(i mod 4) + 16) of
///      x_q = mix(K + (q + 1)·0x9E3779B97F4A7C15), q = ⌊i/4⌋ (output q + 1 of SplitMix64(K): four 16-bit
///      fields per output, the top b bits of each);
///   2. the buckets j = 0 … 2^b − 1 are laid out one after the other, bucket j holding the elements with
///      ℓ_i = j in increasing i (a stable scatter);
///   3. each bucket, of n_j elements, is shuffled by Fisher–Yates with SplitMix64(stream_seed(K, j)), its
///      uniform integers drawn by Lemire's method from 32-bit halves of the outputs (low half first; a bucket
///      of more than 2^32 elements uses below() as the b = 0 branch does).
///
/// The output depends only on the values, the seed and the shape, never on strides or on the thread count
/// (the count and scatter passes are split into chunks, which a stable scatter does not see). T must match
/// the slices' dtype. See shuffle.cpp for why both branches give every permutation probability 1/L!.
/// bucket_size is a knob for tests (small values force the bucketed branch on small slices); what ships is
/// the default.
template <class T>
void shuffle_elements(const std::vector<MatrixView>& slices, std::int64_t replicas, std::uint64_t seed, T* out,
                      int threads, std::int64_t bucket_size = kShuffleBucketSize);

}  // namespace hts
