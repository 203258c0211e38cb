"""Random-matrix-theory metrics: WeightWatcher 0.7.7's ``mp_fit=True`` and ``randomize=True`` columns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._native import _core
from .._threads import resolve_threads
from ._inputs import ArrayLike, _checked_spectrum, _positive_size


@dataclass(frozen=True)
class MarchenkoPasturFit:
    """A Marchenko–Pastur fit of a layer's bulk (WeightWatcher 0.7.7's ``mp_fit=True`` columns).

    The eigenvalues are first rescaled to mean 1: λ'_i = W_scale²·λ_i. ``sigma_mp``, ``mp_softrank`` and the
    spike count refer to that scale; ``bulk_max`` and ``bulk_min`` are returned on the original scale.

    Attributes
    ----------
    num_spikes : int
        #{i : λ'_i > bulk_max' + √TW}, TW = Q^(−1/2)·bulk_max'^(2/3)·M^(−2/3) (a Tracy–Widom margin), where
        bulk_max' = W_scale²·bulk_max. 0 if the fit failed.
    sigma_mp : float
        The fitted MP scale σ of the rescaled spectrum (NaN if failed).
    mp_softrank : float
        bulk_max' / max λ'.
    W_scale : float
        √n / √(Σλ_i), n = the number of eigenvalues.
    bulk_max, bulk_min : float
        The MP bulk edges (σ(1 ± 1/√Q))², divided by W_scale² (original scale).
    Q : float
        N / M.
    quarter_circle : bool
        True when Q == 1: the quarter-circle law of the singular values was fitted instead.
    status : str
        ``"success"`` or ``"failed"`` (WeightWatcher reports −1 in every column where this is ``"failed"``).
    reason : str
        Why the fit failed; empty on success.
    objective : float
        The squared residual J(σ) at the fitted σ.
    evaluations : int
        How many times J was evaluated (σ grid + Nelder–Mead).
    """

    num_spikes: int
    sigma_mp: float
    mp_softrank: float
    W_scale: float
    bulk_max: float
    bulk_min: float
    Q: float
    quarter_circle: bool
    status: str
    reason: str = ""
    objective: float = float("nan")
    evaluations: int = 0

    def to_dict(self) -> dict:
        """Plain values; NaN and ±inf become None so that strict JSON parsers accept them."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def marchenko_pastur_fit(
    evals: ArrayLike, *, N: int, M: int, polish: bool = True, threads: int | None = None
) -> MarchenkoPasturFit:
    """Fit the Marchenko–Pastur law to the bulk of an ESD, as WeightWatcher 0.7.7's ``mp_fit=True``.

    With Q = N/M and the n eigenvalues rescaled to mean 1, λ' = W_scale²·λ, W_scale = √n / √(Σλ):

    1. Data x = λ' (Q ≠ 1), or x = √λ' when Q == 1 (quarter-circle law of the singular values).
    2. Density: the linear-kernel KDE f(t) = (1/(n h)) Σ_i max(0, 1 − |t − x_i|/h), h = 0.1, on
       t_j = linspace(0, max x + 0.5, 1000); points with f(t_j) <= 0.01 are left out.
    3. Objective J(σ) = Σ_j (ρ_σ(t_j) − f(t_j))² over the kept points, with
       ρ_σ(λ) = √((b − λ)(λ − a)) · Q / (2π σ² λ) on [a, b], 0 elsewhere, a, b = (σ(1 ∓ 1/√Q))², and
       J = 1000² · (kept points) when b < t_peak, b > max kept t_j or a > t_peak (t_peak = argmax f);
       for Q == 1, ρ_σ(ν) = √(4 − ν²) / (π σ²) and no penalty.
    4. σ = the first minimiser of J over σ = s0·(0.05, 0.06, …, 1.99), s0 = √(max λ') / (1 + 1/√Q), then
       polished by a one-dimensional Nelder–Mead (scipy ``fmin`` defaults: xatol = fatol = 1e-4) — exactly
       ``scipy.optimize.brute(..., finish=fmin)`` as WeightWatcher calls it, but with the KDE computed once
       instead of once per σ.
    5. bulk_max' = (σ(1 + 1/√Q))², bulk_min' = (σ(1 − 1/√Q))², TW = Q^(−1/2)·bulk_max'^(2/3)·M^(−2/3);
       num_spikes = #(λ' > bulk_max' + √TW); mp_softrank = bulk_max' / max λ'; bulk_max = bulk_max'/W_scale²,
       bulk_min = bulk_min'/W_scale².

    The numbers equal WeightWatcher's bit for bit whenever the KDE values do; WeightWatcher's KDE
    (scikit-learn's tree, summed in log space) differs from this one by ~1e-14 relative, which can move σ
    only when two values of J tie to that precision.

    Parameters
    ----------
    evals : array_like, 1-D
        The layer's eigenvalues λ_i >= 0 (pooled over slices for a conv layer, scaled as for the other
        metrics), any order.
    N, M : int
        The layer's larger and smaller dimension (N < M is accepted, giving Q < 1). M enters only TW.
    polish : bool
        Run the Nelder–Mead step after the σ grid (WeightWatcher does).
    threads : int, optional
        Native threads for long spectra; the result does not depend on it.

    Returns
    -------
    MarchenkoPasturFit
        ``status == "failed"`` (NaN values, ``num_spikes`` 0) for spectra WeightWatcher cannot fit either: no
        eigenvalues, all zero, or no KDE point above 0.01.

    Raises
    ------
    ValueError
        NaN, infinite or negative eigenvalues; N or M not a positive integer.
    """
    arr = _checked_spectrum(evals, "marchenko_pastur_fit")
    n_, m_ = _positive_size(N, "N"), _positive_size(M, "M")
    Q = n_ / m_
    raw = _core.marchenko_pastur_fit(arr, Q=Q, M=float(m_), threads=resolve_threads(threads), polish=bool(polish))
    nan = float("nan")
    ok = raw["ok"]
    return MarchenkoPasturFit(
        num_spikes=raw["num_spikes"] if ok else 0,
        sigma_mp=raw["sigma_mp"] if ok else nan,
        mp_softrank=raw["mp_softrank"] if ok else nan,
        W_scale=raw["W_scale"] if ok else nan,
        bulk_max=raw["bulk_max"] if ok else nan,
        bulk_min=raw["bulk_min"] if ok else nan,
        Q=Q,
        quarter_circle=raw["quarter_circle"],
        status="success" if ok else "failed",
        reason=raw["reason"],
        objective=raw["objective"],
        evaluations=raw["evaluations"],
    )


def jensen_shannon_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon distance between two non-negative vectors, position by position (natural log).

    m = (p + q)/2; JSD = (KL(p̂ ‖ m̂) + KL(q̂ ‖ m̂)) / 2 with x̂ = x / Σx and KL(a ‖ b) = Σ_i a_i ln(a_i / b_i)
    (terms with a_i = 0 are 0); the distance is √JSD, in [0, √ln 2]. This is WeightWatcher's
    ``jensen_shannon_distance`` (scipy ``entropy`` of the unnormalised mean, scipy >= 1.15 ``rel_entr``),
    bit for bit. NaN when a vector sums to 0 (or the divergence rounds below 0).

    Raises
    ------
    ValueError
        Different lengths, empty vectors, NaN/inf or negative entries.
    """
    a = _checked_spectrum(p, "jensen_shannon_distance")
    b = _checked_spectrum(q, "jensen_shannon_distance")
    if a.size == 0:
        raise ValueError("jensen_shannon_distance: empty vectors")
    return _core.jensen_shannon_distance(a, b)


def randomization_metrics(
    evals: ArrayLike,
    rand_evals: ArrayLike,
    *,
    N: int,
    M: int,
    single_rand_evals: ArrayLike | None = None,
    threads: int | None = None,
) -> dict:
    """WeightWatcher 0.7.7's ``randomize=True`` columns from a layer's ESD and its randomized ESD.

    With λ = ``evals`` and ρ = one replica of the randomized eigenvalues (``single_rand_evals``, or
    ``rand_evals`` itself when omitted), both sorted ascending:

    - ``rand_distance`` = ``jensen_shannon_distance(λ, ρ)`` — over sorted index positions, not histograms;
    - ``ww_softrank`` = max ρ / max λ;  ``ww_maxdist`` = max λ − max ρ;
    - ``max_rand_eval`` = max of ``rand_evals`` (all replicas);
    - ``rand_num_spikes`` (also ``num_traps``: correlation traps), ``rand_sigma_mp``, ``rand_mp_softrank``,
      ``rand_W_scale``, ``rand_bulk_max``, ``rand_bulk_min`` = ``marchenko_pastur_fit(rand_evals, N, M)``
      (all replicas pooled); ``rand_mp_status`` is that fit's status.

    WeightWatcher computes ``rand_evals`` with ``randomized_eigenvalues`` semantics (5 replicas below 100
    eigenvalues) and draws a *fresh* single replica for the distance, soft rank and max distance; pass that
    one as ``single_rand_evals`` (it must have as many values as ``evals``).

    Parameters
    ----------
    evals, rand_evals, single_rand_evals : array_like, 1-D, non-negative
    N, M : int
        The layer's dimensions (for the MP fit).
    threads : int, optional
        For the MP fit.

    Returns
    -------
    dict
        The columns above (floats; NaN where the MP fit failed).
    """
    lam = np.sort(_checked_spectrum(evals, "randomization_metrics (evals)"))
    rand = np.sort(_checked_spectrum(rand_evals, "randomization_metrics (rand_evals)"))
    one = rand if single_rand_evals is None else np.sort(
        _checked_spectrum(single_rand_evals, "randomization_metrics (single_rand_evals)"))
    if lam.size == 0 or rand.size == 0:
        raise ValueError("randomization_metrics: no eigenvalues")
    if one.size != lam.size:
        raise ValueError(
            f"randomization_metrics: the distance needs one replica with as many values as evals ({lam.size}), "
            f"got {one.size}; pass single_rand_evals")
    fit = marchenko_pastur_fit(rand, N=N, M=M, threads=threads)
    lam_max, one_max = float(lam[-1]), float(one[-1])
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero layer: inf or NaN, as WeightWatcher
        softrank = float(np.float64(one_max) / np.float64(lam_max))
    return {
        "rand_distance": _core.jensen_shannon_distance(lam, one),
        "ww_softrank": softrank,
        "ww_maxdist": lam_max - one_max,
        "max_rand_eval": float(rand[-1]),
        "rand_num_spikes": fit.num_spikes,
        "num_traps": fit.num_spikes,
        "rand_sigma_mp": fit.sigma_mp,
        "rand_mp_softrank": fit.mp_softrank,
        "rand_W_scale": fit.W_scale,
        "rand_bulk_max": fit.bulk_max,
        "rand_bulk_min": fit.bulk_min,
        "rand_mp_status": fit.status,
    }
