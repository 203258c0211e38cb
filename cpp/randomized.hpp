// The randomized ESDs of a batch of layers (WeightWatcher's randomize=True): element shuffles and the
// eigenvalues of the shuffled matrices, scheduled together over the threads.
#pragma once

#include <cstdint>
#include <vector>

#include "eigen_batch.hpp"

namespace hts {

/// One layer (or one slice of it): its slices, all rows×cols, shuffled `replicas` times from `seed`.
struct ShuffleRequest {
  std::vector<MatrixView> slices;
  std::int64_t replicas = 1;
  std::uint64_t seed = 0;
};

/// For each request r: the slices shuffled as shuffle_elements(slices, replicas, seed) does, then the
/// m = min(rows, cols) ascending eigenvalues of each shuffled matrix g (g = replica·k + slice), as
/// gram_eigenvalues<T> computes them, written to out[r] + g·m.
///
/// Scheduling (speed only: each request's numbers depend on nothing but the request): the requests run on
/// opt.threads threads in decreasing estimated cost, each shuffled into a buffer of its own and solved on one
/// thread, so the shuffle of one layer overlaps the eigensolver of another and only a few shuffled copies
/// exist at a time; a request estimated to cost more than all the others together goes first, alone, with
/// every thread (its shuffle and its Gram matrix are threaded).
///
/// Throws BadMatrix whose index is the request's (for a shuffled matrix the kernel refuses, e.g. float64
/// values beyond float32's range with T = float): the first such request in the cost order, whatever the
/// threads. std::invalid_argument for slices of different shapes or dtypes within a request. Stopped once
/// opt.stop is set: it is read before each request's shuffle and at every safe point of its eigensolve.
template <class T>
void randomized_gram_eigenvalues(const std::vector<ShuffleRequest>& requests, const std::vector<T*>& out,
                                 const EigenOptions& opt);

}  // namespace hts
