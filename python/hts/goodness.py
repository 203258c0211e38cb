"""Goodness of fit of the power law: the Clauset–Shalizi–Newman semi-parametric bootstrap p-value.

Clauset, Shalizi & Newman (2009, SIAM Review 51, §4.1). Fit the n eigenvalues λ > ``evals_thresh`` as
``spectra.fit_power_law`` does (xmin by the smallest KS distance, m values in the tail, exponent alpha, distance
D). Each replicate r = 0 … R−1 draws a synthetic sample of the same size n:

- n_tail ~ Binomial(n, m/n) values from the fitted power law above xmin, by inversion:
  x = xmin · (1 − u)^(−1/(alpha − 1)), u ~ U[0, 1);
- the other n − n_tail values uniformly, with replacement, from the data below xmin;

and fits it *with the full xmin search* (the same fitter), giving D_r. The p-value is

    p = #{r : D_r >= D} / R,

the probability that data truly drawn from the fitted model look at least this far from a power law. CSN's
rule: the power law is ruled out when p <= 0.1; a large p says only that it is not ruled out. The standard
error of p is √(p(1 − p)/R) (R = 1000 gives ±0.016 at p = 0.5).

Replicate r draws from its own generator, ``numpy.random.Generator(PCG64(SeedSequence([seed, r])))``, and is
fitted by the native kernel with the GIL released, spread over ``threads`` threads: the result depends only
on the data, ``seed`` and R — bit-identical for any thread count.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import spectra
from ._threads import resolve_threads

__all__ = ["PowerLawPValue", "power_law_pvalue"]


@dataclass(frozen=True)
class PowerLawPValue:
    """The bootstrap p-value of a power-law fit (see the module docstring).

    Attributes
    ----------
    p : float
        #{D_r >= D} / R; NaN if the fit of the data failed.
    D : float
        The KS distance of the data's own fit.
    replicates : int
        R.
    fit : spectra.PowerLawFit
        The data's fit (xmin, alpha, tail, ...).
    D_replicates : ndarray
        D_r for every replicate (NaN where a synthetic sample could not be fitted; those count as not >= D).
    """

    p: float
    D: float
    replicates: int
    fit: spectra.PowerLawFit
    D_replicates: np.ndarray

    @property
    def stderr(self) -> float:
        """√(p(1 − p)/R), the binomial standard error of p."""
        return math.sqrt(self.p * (1 - self.p) / self.replicates) if self.replicates else float("nan")


def _replicate_D(x: np.ndarray, fit: spectra.PowerLawFit, seed: int, r: int, thresh: float) -> float:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, r])))
    n = x.size
    body = x[x < fit.xmin]
    n_tail = int(rng.binomial(n, fit.tail / n)) if body.size else n
    tail = fit.xmin * (1.0 - rng.random(n_tail)) ** (-1.0 / (fit.alpha - 1.0))
    sample = np.concatenate([tail, body[rng.integers(0, body.size, n - n_tail)] if body.size else tail[:0]])
    f = spectra.fit_power_law(sample, evals_thresh=thresh, threads=1)
    return f.D if f.status == "success" else float("nan")


def power_law_pvalue(
    evals, *, replicates: int = 1000, seed: int = 0, evals_thresh: float = 1e-5, threads: int | None = None
) -> PowerLawPValue:
    """The Clauset–Shalizi–Newman bootstrap p-value of the power-law hypothesis for an ESD.

    Parameters
    ----------
    evals : array_like, 1-D
        Eigenvalues, any order (those <= ``evals_thresh`` are left out, as for the fit).
    replicates : int
        R, the number of synthetic samples (CSN: ≈ 2500 for p to ±0.01; 1000 gives ±0.016).
    seed : int
        In [0, 2**64); the answer is reproducible for a seed, whatever ``threads``.
    threads : int, optional
        Threads over replicates (default: the cores this process may use).

    Raises
    ------
    ValueError
        NaN eigenvalues, ``replicates`` < 1, a seed outside [0, 2**64).
    """
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise ValueError(f"replicates must be a positive int, got {replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    arr = np.asarray(evals, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"power_law_pvalue: expected 1-D eigenvalues, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"power_law_pvalue: {int(np.isnan(arr).sum())} of {arr.size} eigenvalues are NaN")
    fit = spectra.fit_power_law(arr, evals_thresh=evals_thresh)
    R = int(replicates)
    if fit.status != "success" or not fit.alpha > 1:
        return PowerLawPValue(float("nan"), fit.D, R, fit, np.full(R, np.nan))
    x = np.sort(arr[arr > evals_thresh])
    n_threads = min(resolve_threads(threads), R)
    out = np.empty(R)

    def run(rs: range) -> None:
        for r in rs:
            out[r] = _replicate_D(x, fit, int(seed), r, evals_thresh)

    chunks = [range(k, R, n_threads) for k in range(n_threads)]
    if n_threads == 1:
        run(chunks[0])
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, chunks))
    p = float(np.count_nonzero(out >= fit.D)) / R
    return PowerLawPValue(p, fit.D, R, fit, out)
