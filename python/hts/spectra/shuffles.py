"""Element shuffles of weight matrices and the eigenvalues of the shuffled copies (``randomize=True``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._native import _core
from .._threads import resolve_threads
from ._inputs import _PRECISIONS, ArrayLike, _kernel_array, _named_error, _positive_size, _seed
from .eigen import eigenvalues


def shuffle_elements(
    w: ArrayLike, *, seed: int, replicas: int = 1, threads: int | None = None, name: str = "<array>"
) -> np.ndarray:
    """Randomly permute the elements of each matrix (each slice of a stack), reproducibly from ``seed``.

    Slice s of replica r (output index g = r·k + s) is read in row-major order, a_0 … a_{L−1}, and permuted
    uniformly at random with the splitmix64 stream key K = stream_seed(``seed``, g); uniform integers use
    Lemire's unbiased multiply-and-reject.

    - L <= 2**15: Fisher–Yates driven by splitmix64(K): for i = L−1 … 1, swap a_i and a_j, j uniform in [0, i].
    - Larger slices (Rao–Sandelius): element i goes to bucket ℓ_i ∈ [0, 2^b), b = min(6, ⌈log2(L / 2**15)⌉),
      given by b bits of splitmix64(K)'s output ⌊i/4⌋ + 1 (a counter-based draw: four 16-bit fields per
      output); the buckets are laid out in order, each keeping its elements in increasing i, and each is then
      shuffled by Fisher–Yates with its own stream stream_seed(K, j). Given the bucket sizes n_j, each split
      of the elements into buckets has probability Π n_j!/L! and each bucket order 1/n_j!, so every
      permutation has probability 1/L!, as for plain Fisher–Yates; but each bucket is shuffled while it sits
      in cache, and the passes run on all threads (several times faster on large layers).

    The exact steps are in cpp/shuffle.hpp. The output depends only on the values, the shape and the seed: not
    on memory layout, platform or thread count. Each slice is shuffled on its own, as WeightWatcher's
    ``randomize=True`` does (``np.random.shuffle`` per matrix).

    Parameters
    ----------
    w : array_like, shape (N, M) or (k, N, M)
        Weights; float16/integers are converted as for ``eigenvalues``.
    seed : int
        In [0, 2**64).
    replicas : int
        Independent shuffles of every slice.
    threads : int, optional
        Native threads (over slices × replicas, and over the chunks and buckets of large slices).
    name : str
        Layer name used in error messages.

    Returns
    -------
    ndarray
        Shape (N, M) for a 2-D ``w`` and one replica, else (replicas·k, N, M); the input's kernel dtype.
    """
    arr = _kernel_array(w, name)
    replicas = _positive_size(replicas, "replicas")
    k = arr.shape[0] if arr.ndim == 3 else 1
    rows, cols = arr.shape[-2:]
    out = np.empty((replicas * k, rows, cols), dtype=arr.dtype)
    _core.shuffle_elements(arr, out, _seed(seed), replicas, resolve_threads(threads))
    return out[0] if arr.ndim == 2 and replicas == 1 else out


def randomized_eigenvalues(
    w: ArrayLike,
    *,
    seed: int,
    replicas: int | None = None,
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<array>",
) -> np.ndarray:
    """Eigenvalues of the element-shuffled weights, pooled over slices and replicas, ascending.

    Each slice W_s is shuffled (``shuffle_elements``) and its eigenvalues σ_i(shuffle(W_s))² are computed by
    the batched kernel of ``eigenvalues``; all of them are pooled and sorted. This is WeightWatcher's
    ``rand_evals``: with ``replicas=None`` it uses 5 replicas when the layer has fewer than 100 eigenvalues
    (k·min(N, M) < 100) and 1 otherwise. Pass the slices scaled as for the layer's own eigenvalues (e.g.
    WeightWatcher's pooled conv2d_norm multiplies eigenvalues by 1/2: scale the result, or w by √(1/2)).

    Parameters
    ----------
    w : array_like, shape (N, M) or (k, N, M)
    seed : int
        In [0, 2**64); the result is reproducible for a seed (for any thread count).
    replicas : int, optional
        Shuffles per slice (default: 5 if k·min(N, M) < 100 else 1).
    precision, threads, name
        As for ``eigenvalues``.

    Returns
    -------
    ndarray, shape (replicas·k·min(N, M),), ascending (float64, or float32 with ``precision="float32"``)
    """
    arr = _kernel_array(w, name)
    k = arr.shape[0] if arr.ndim == 3 else 1
    if replicas is None:
        replicas = 5 if k * min(arr.shape[-2:]) < 100 else 1
    shuffled = shuffle_elements(arr, seed=seed, replicas=replicas, threads=threads, name=name)
    ev = eigenvalues(shuffled, precision=precision, threads=threads, name=name)
    return np.sort(np.ravel(ev))


def randomized_eigenvalue_batch(
    arrays: Sequence[ArrayLike],
    *,
    seeds: Sequence[int],
    replicas: Sequence[int],
    precision: str = "float64",
    threads: int | None = None,
    name: str = "<batch>",
    stop: Any = None,
) -> list:
    """``eigenvalues(shuffle_elements(a, seed=s, replicas=r))`` for every (a, s, r), in one threaded call.

    Array i (2-D, or a (k, N, M) stack) gives a (r·k, min(N, M)) array: row g holds the ascending eigenvalues
    of shuffled matrix g (g = replica·k + slice), bit for bit what ``shuffle_elements`` followed by
    ``eigenvalues`` give, whatever ``threads``. The work is scheduled together: arrays in decreasing cost,
    each shuffled into a buffer of its own and solved on one thread (the shuffle of one overlapping the
    eigensolver of another, and only a few shuffled copies in memory at a time); an array costing more than
    all the others together is done first with every thread.

    ``stop`` (an ``hts._core.StopFlag``, optional) is read before each array's shuffle and at every safe point
    of its eigensolve (see ``eigenvalues``); once it is set the call raises ``hts._core.Stopped``.

    Raises
    ------
    BatchItemError
        The kernel refused array ``index`` (e.g. float64 values beyond float32's range with
        ``precision="float32"``).
    hts._core.Stopped
        ``stop`` was set while the call ran.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    items = [_kernel_array(a, f"{name}[{i}]") for i, a in enumerate(arrays)]
    seeds = [_seed(x) for x in seeds]
    replicas = [_positive_size(r, "replicas") for r in replicas]
    if not len(items) == len(seeds) == len(replicas):
        raise ValueError("randomized_eigenvalue_batch: one seed and one replica count per array")
    try:
        return _core.randomized_gram_eigenvalues(items, seeds, replicas, precision, resolve_threads(threads),
                                                 stop=stop)
    except ValueError as err:
        raise _named_error(err, name) from None
