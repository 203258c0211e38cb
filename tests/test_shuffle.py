"""The element shuffle of randomize=True (``spectra.shuffle_elements``, cpp/shuffle.cpp): its documented
algorithm restated in pure Python (both branches: one Fisher–Yates pass, and random buckets + Fisher–Yates
per bucket), reproducibility, and statistical checks that every permutation is equally likely.

The bucketed branch is forced on small slices through the kernel's ``bucket_size`` knob (the default,
2**15, only buckets slices larger than that), so that all 24 permutations of 4 values can be counted.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hts import _core, spectra

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
BUCKET_SIZE = 1 << 15  # cpp/shuffle.hpp kShuffleBucketSize
MAX_BITS = 6  # cpp/shuffle.hpp kShuffleMaxBucketBits


def mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream(seed: int, index: int) -> int:
    """stream_seed: two splitmix64 steps of seed ^ mix(index)."""
    return mix(((seed ^ mix(index)) + 2 * GAMMA) & MASK)


class Stream:
    """splitmix64 with Lemire's unbiased draws, 64-bit (``below``) and from 32-bit halves (``below32``)."""

    def __init__(self, state: int) -> None:
        self.state, self.half = state, None

    def next(self) -> int:
        self.state = (self.state + GAMMA) & MASK
        return mix(self.state)

    def below(self, bound: int) -> int:
        while True:
            product = self.next() * bound
            if product & MASK >= bound or product & MASK >= ((1 << 64) - bound) % bound:
                return product >> 64

    def next32(self) -> int:
        if self.half is not None:
            x, self.half = self.half, None
            return x
        word = self.next()
        self.half = word >> 32
        return word & 0xFFFFFFFF

    def below32(self, bound: int) -> int:
        while True:
            product = self.next32() * bound
            low = product & 0xFFFFFFFF
            if low >= bound or low >= ((1 << 32) - bound) % bound:
                return product >> 32


def fisher_yates(a: list, draw) -> list:
    a = list(a)
    for i in range(len(a) - 1, 0, -1):
        j = draw(i + 1)
        a[i], a[j] = a[j], a[i]
    return a


def bucket_bits(size: int, bucket_size: int = BUCKET_SIZE) -> int:
    b = 0
    while b < MAX_BITS and size > bucket_size << b:
        b += 1
    return b


def labels(key: int, size: int, bits: int) -> np.ndarray:
    """ℓ_i = top ``bits`` bits of 16-bit field i mod 4 of splitmix64 output ⌊i/4⌋ + 1 (numpy, wrapping uint64)."""
    q = np.arange((size + 3) // 4, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (q + np.uint64(1)) * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    fields = (z[:, None] >> (np.arange(4, dtype=np.uint64) * np.uint64(16) + np.uint64(16 - bits)))
    return (fields & np.uint64((1 << bits) - 1)).ravel()[:size].astype(np.int64)


def python_shuffle(values: list, seed: int, index: int, bucket_size: int = BUCKET_SIZE) -> list:
    """Output ``index`` of shuffle_elements for one slice read in row-major order, as documented."""
    key = stream(seed, index)
    bits = bucket_bits(len(values), bucket_size)
    if bits == 0:
        return fisher_yates(values, Stream(key).below)
    lab = labels(key, len(values), bits)
    out = []
    for j in range(1 << bits):
        bucket = [v for v, lj in zip(values, lab) if lj == j]
        out += fisher_yates(bucket, Stream(stream(key, j)).below32)
    return out


def shuffle(w, seed, replicas=1, threads=1, bucket_size=BUCKET_SIZE):
    w = np.asarray(w)
    k = w.shape[0] if w.ndim == 3 else 1
    out = np.empty((replicas * k,) + w.shape[-2:], dtype=w.dtype)
    _core.shuffle_elements(w, out, seed, replicas, threads, bucket_size)
    return out


def test_shuffle_follows_the_documented_prng():
    assert spectra.shuffle_elements(np.arange(10.0).reshape(1, 10), seed=42).ravel().tolist() == [
        0, 8, 6, 5, 1, 3, 7, 4, 2, 9]  # pinned: the same on every platform
    stack = np.arange(2 * 5 * 7, dtype=np.float64).reshape(2, 5, 7)
    out = spectra.shuffle_elements(stack, seed=2**64 - 1, replicas=3)
    for g in range(6):
        assert out[g].ravel().tolist() == python_shuffle(stack[g % 2].ravel().tolist(), 2**64 - 1, g)


def test_bucketed_shuffle_follows_the_documented_prng():
    w = np.arange(12.0).reshape(1, 3, 4)
    assert shuffle(w, seed=42, bucket_size=2).ravel().tolist() == [
        1, 2, 5, 9, 7, 10, 11, 8, 6, 0, 3, 4]  # pinned: 8 buckets, the same on every platform
    assert shuffle(w, seed=42, bucket_size=2).ravel().tolist() == python_shuffle(list(range(12)), 42, 0, 2)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 3), n=st.integers(1, 12), m=st.integers(1, 12), replicas=st.integers(1, 3),
       seed=st.integers(0, 2**64 - 1), f32=st.booleans(), bucket_size=st.sampled_from([1, 2, 3, 7, 50, BUCKET_SIZE]))
def test_shuffle_matches_the_python_restatement_hypothesis(k, n, m, replicas, seed, f32, bucket_size):
    w = np.arange(k * n * m, dtype=np.float32 if f32 else np.float64).reshape(k, n, m)
    out = shuffle(w, seed, replicas, threads=2, bucket_size=bucket_size)
    assert out.shape == (replicas * k, n, m) and out.dtype == w.dtype
    for g in range(replicas * k):
        assert out[g].ravel().tolist() == python_shuffle(w[g % k].ravel().tolist(), seed, g, bucket_size)


@pytest.mark.parametrize("shape", [(300, 200), (37, 4000)], ids=["2-buckets", "8-buckets-wide"])
def test_large_slices_match_the_python_restatement(shape):
    # Past 2**15 values the default bucket size splits the slice (and past 2**16 the count and scatter passes
    # run in several chunks); a transposed view is read in its logical row-major order.
    w = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape[::-1]).T
    out = spectra.shuffle_elements(w, seed=123, threads=2)
    assert out.ravel().tolist() == python_shuffle(w.ravel().tolist(), 123, 0)


def test_bucket_contents_in_a_chunked_slice():
    # 2**18 values: 8 buckets of the documented labels, filled by 4 chunks (a stable scatter whatever the
    # chunking), then each shuffled: the values in bucket j's range are those labelled j.
    size = 1 << 18
    w = np.arange(size, dtype=np.float64).reshape(512, 512)
    out = spectra.shuffle_elements(w, seed=9, threads=2).ravel()
    lab = labels(stream(9, 0), size, bucket_bits(size))
    start = 0
    for j in range(8):
        members = np.flatnonzero(lab == j).astype(np.float64)
        np.testing.assert_array_equal(np.sort(out[start:start + members.size]), members)
        start += members.size
    assert start == size


def test_shuffle_is_a_permutation_of_each_slice(rng):
    w = rng.standard_normal((4, 33, 17)).astype(np.float32)
    out = spectra.shuffle_elements(w, seed=7, replicas=2)
    assert out.shape == (8, 33, 17) and out.dtype == np.float32
    for g in range(8):
        np.testing.assert_array_equal(np.sort(out[g].ravel()), np.sort(w[g % 4].ravel()))
        assert not np.array_equal(out[g], w[g % 4])
    assert not np.array_equal(out[0], out[4])  # replicas differ


def test_shuffle_is_reproducible_and_seed_dependent(rng):
    for shape in [(50, 40), (400, 300)]:  # one Fisher–Yates pass; 4 buckets
        w = rng.standard_normal(shape)
        a = spectra.shuffle_elements(w, seed=123)
        assert a.shape == w.shape
        np.testing.assert_array_equal(a, spectra.shuffle_elements(w, seed=123))
        assert not np.array_equal(a, spectra.shuffle_elements(w, seed=124))
        assert not np.array_equal(a, spectra.shuffle_elements(w, seed=123 + 2**32))


@pytest.mark.parametrize("shape", [(16, 40, 30), (3, 300, 400)], ids=["small", "bucketed"])
def test_shuffle_ignores_threads_and_memory_layout(rng, shape):
    w = rng.standard_normal(shape)
    base = spectra.shuffle_elements(w, seed=5, replicas=3, threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(base, spectra.shuffle_elements(w, seed=5, replicas=3, threads=threads))
    fortran = np.asfortranarray(w)
    np.testing.assert_array_equal(base, spectra.shuffle_elements(fortran, seed=5, replicas=3))
    np.testing.assert_array_equal(base, spectra.shuffle_elements(w[:, ::-1][:, ::-1], seed=5, replicas=3))
    t = rng.standard_normal(shape[:0:-1]).T  # a transposed view is read in its logical row-major order
    np.testing.assert_array_equal(spectra.shuffle_elements(t, seed=9), spectra.shuffle_elements(t.copy(), seed=9))


@pytest.mark.parametrize("bucket_size", [BUCKET_SIZE, 2, 1], ids=["fisher-yates", "2-buckets", "4-buckets"])
def test_every_permutation_is_equally_likely(bucket_size):
    # 24 000 shuffles of 4 values: each of the 24 permutations ~1000 times (chi-square, 23 dof).
    out = shuffle(np.arange(4.0).reshape(1, 1, 4), seed=11, replicas=24_000, threads=2,
                  bucket_size=bucket_size).reshape(-1, 4)
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    counts = np.bincount([index[tuple(int(v) for v in row)] for row in out], minlength=24)
    chi2 = float(((counts - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 60  # P(chi2_23 > 60) ~ 4e-5


@pytest.mark.parametrize("bucket_size", [BUCKET_SIZE, 3], ids=["fisher-yates", "64-buckets"])
def test_each_element_lands_anywhere(bucket_size):
    # Where the first element lands in a vector of 97: uniform over the 97 positions (chi-square, 96 dof).
    out = shuffle(np.arange(97.0).reshape(1, 1, 97), seed=3, replicas=9700, threads=2, bucket_size=bucket_size)
    hist = np.bincount(np.argmin(out, axis=-1).ravel(), minlength=97)
    assert float(((hist - 100.0) ** 2 / 100.0).sum()) < 170  # P(chi2_96 > 170) ~ 4e-6


@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5])
def test_large_shuffle_leaves_no_trace_of_the_buckets(seed):
    # 2**18 values in 8 buckets, 4 chunks. A uniform permutation π of L values has
    # - ascents #{i : π(i) < π(i+1)} with mean (L − 1)/2 and variance (L + 1)/12 (a stable order kept inside a
    #   bucket would give far more);
    # - an input-block × output-block table (16 × 16 blocks of L/16) close to uniform: chi-square ~ 225 dof
    #   (values clustered by bucket in the output would inflate it).
    size = 1 << 18
    pi = spectra.shuffle_elements(np.arange(size, dtype=np.float64).reshape(1024, 256), seed=seed).ravel()
    ascents = int(np.count_nonzero(np.diff(pi) > 0))
    assert abs(ascents - (size - 1) / 2) < 5 * np.sqrt((size + 1) / 12)
    table = np.zeros((16, 16))
    np.add.at(table, (pi.astype(np.int64) // (size // 16), np.arange(size) // (size // 16)), 1)
    expected = size / 256
    chi2 = float(((table - expected) ** 2 / expected).sum())
    assert chi2 < 225 + 6 * np.sqrt(2 * 225)


@pytest.mark.parametrize(
    "kwargs, error",
    [({"seed": -1}, ValueError), ({"seed": 2**64}, ValueError), ({"seed": 1.5}, TypeError),
     ({"seed": True}, TypeError), ({"seed": 1, "replicas": 0}, ValueError)],
)
def test_shuffle_bad_arguments(kwargs, error):
    with pytest.raises(error):
        spectra.shuffle_elements(np.ones((3, 3)), **kwargs)


def test_shuffle_bad_weights():
    with pytest.raises(TypeError):
        spectra.shuffle_elements(np.ones(5), seed=1)
    with pytest.raises(ValueError):
        spectra.shuffle_elements(np.ones((0, 3)), seed=1)
    with pytest.raises(ValueError, match="bucket_size"):
        shuffle(np.ones((1, 3, 3)), seed=1, bucket_size=0)
