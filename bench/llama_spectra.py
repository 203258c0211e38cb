"""Generated LLaMA-7B-shaped weights with realistic spectra: the recipe used by ``bench/llama_7b.py``.

Every 2-D weight is W = U·Σ·Vᵀ with prescribed singular values σ_i and cheap random orthogonal factors, so its
ESD is known by construction (up to the BF16 rounding of the stored entries):

* **Orthogonal factors** (no dense QR): an orthogonal transform of length n is Q = P₂·C·D₂·P₁·C·D₁, with C
  the orthonormal DCT-II (``scipy.fft.dct(norm="ortho")``), Dᵢ random ±1 diagonals and Pᵢ random permutations:
  two rounds of a randomised fast transform for V, one round for U (the long side; generation time), O(n² log n)
  per matrix instead of O(n³). For W (N×M, N ≥ M),
  Vᵀ is applied to the rows of diag(σ) and U to the columns of [diag(σ)Vᵀ; 0].
* **Singular values** of an N×M layer (n = min(N, M)), λ = σ² (the ESD of WᵀW):
  - *bulk*: the quantiles of the Marchenko–Pastur law with aspect ratio q = n / max(N, M) (λ in
    [(1-√q)², (1+√q)²]·scale), taken at the midpoints (i + ½)/n, i.e. the spectrum a random matrix would have;
  - *heavy tail*: the top 5 % of λ are replaced by a Pareto tail λ_i = λ_edge·(t / i)^(1/(α-1)) for
    i = 1 … t (t = 5 % of n), with the tail exponent α drawn per layer from U(2.5, 5) for attention v/o and MLP
    layers and U(2, 3.5) for q/k, embeddings and lm_head (trained LLMs show α ≈ 2–6, smaller for q/k);
  - *near-low-rank q/k*: the q and k projections' bulk decays as λ_i ∝ (i + 1)^(-2) below the tail, with a
    floor at 10⁻⁶ (LLaMA's q/k have a few dominant directions and a long small end); in decoder block 0 the
    smallest 1/32 of λ are set to 10⁻¹⁴ — a near rank-deficient layer, as LLaMA's first-block q/k are — so
    the Gram route's resolution check (the gesdd refine) is exercised (measured after BF16 rounding:
    λ_min/λ_max = 9.4e-14 on block 0's q_proj, below the 1.8e-10 test, so the refine fires there);
  - the whole spectrum is scaled so the entries' RMS is 0.02 (LLaMA's init scale).
* Stored as BF16 (round to nearest even); the BF16 rounding adds noise of relative size ~2⁻⁹ per entry.

The seed of each layer is derived from its name, so any subset of layers (``--quick``) has the same weights as
the full model.
"""

from __future__ import annotations

import hashlib

import numpy as np


def layer_rng(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"))


def _transform(x: np.ndarray, axis: int, rng: np.random.Generator, rounds: int) -> np.ndarray:
    """Applies a random orthogonal transform of length x.shape[axis] along ``axis`` (``rounds`` DCT rounds)."""
    from scipy.fft import dct

    n = x.shape[axis]
    shape = [1, 1]
    shape[axis] = n
    for _ in range(rounds):
        x = x * rng.choice(np.array([-1.0, 1.0], x.dtype), size=n).reshape(shape)
        x = dct(x, type=2, axis=axis, norm="ortho", overwrite_x=True, workers=-1)
        x = np.take(x, rng.permutation(n), axis=axis)
    return x


def singular_values(name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Descending σ for the layer ``name`` of ``shape`` (see the module docstring for the recipe)."""
    n_rows, n_cols = shape
    n, big = min(shape), max(shape)
    q = n / big
    u = (np.arange(n) + 0.5) / n
    # Marchenko–Pastur quantiles (unit scale), by inverting the CDF numerically on a fine grid.
    lo, hi = (1 - np.sqrt(q)) ** 2, (1 + np.sqrt(q)) ** 2
    grid = np.linspace(lo, hi, 20001)
    dens = np.sqrt(np.maximum((hi - grid) * (grid - lo), 0)) / (2 * np.pi * q * np.maximum(grid, 1e-300))
    cdf = np.concatenate([[0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
    cdf /= cdf[-1]
    lam = np.interp(u, cdf, grid)[::-1].copy()  # descending
    qk = ".q_proj." in name or ".k_proj." in name
    if qk:
        lam = np.maximum((np.arange(n) + 1.0) ** -2.0, 1e-6)
        if ".layers.0." in name:
            lam[n - n // 32:] = 1e-14
    low_alpha = qk or "embed" in name or "lm_head" in name
    alpha = rng.uniform(2.0, 3.5) if low_alpha else rng.uniform(2.5, 5.0)
    t = max(2, n // 20)
    edge = lam[t]
    lam[:t] = edge * (t / np.arange(1, t + 1)) ** (1.0 / (alpha - 1.0))
    lam = np.sort(lam)[::-1]
    lam *= (0.02 ** 2) * n_rows * n_cols / lam.sum()  # Σλ = ‖W‖_F² = N·M·rms²
    return np.sqrt(lam)


def weight(name: str, shape: tuple) -> np.ndarray:
    """The float32 weight of layer ``name``: U·diag(σ)·Vᵀ with fast random orthogonal U, V."""
    rng = layer_rng(name)
    s = singular_values(name, shape, rng)
    n_rows, n_cols = shape
    n = min(shape)
    # Build the tall form T (big × n) = U[:, :n]·diag(σ)·Vᵀ, then transpose for wide layers.
    core = _transform(np.diag(s).astype(np.float32), 1, rng, 2)  # diag(σ)·Vᵀ (rows transformed)
    big = max(shape)
    tall = np.zeros((big, n), np.float32)
    tall[:n] = core
    del core
    tall = _transform(tall, 0, rng, 1)
    w = tall if n_rows >= n_cols else tall.T
    return np.ascontiguousarray(w, dtype=np.float32)
