"""Small-sample statistics for a model series, in numpy: least squares with its slope's p-value, Kendall's τ-b
with its exact p-value, Spearman's ρ.

A series has a handful of models (n of 3 to a few dozen), so the O(n²) pair count below is exact and fast.
Every function returns NaN where the statistic is undefined (fewer than two points, or a constant input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "kendall_p", "kendall_tau", "ols", "slope_p", "spearman_rho", "student_t_sf2"]

#: Largest n for which ``kendall_p`` computes the exact null distribution (O(n³) work; n = 200 takes ~0.1 s).
KENDALL_EXACT_MAX_N = 200


@dataclass(frozen=True)
class LineFit:
    """Ordinary least squares y ≈ intercept + slope·x on n points.

    Attributes
    ----------
    slope, intercept : float
        Minimisers of Σ (y_i − intercept − slope·x_i)².
    rmse : float
        √(Σ r_i² / n), r_i = the residuals on the fitted points (no degrees-of-freedom correction).
    r2 : float
        1 − Σ r_i² / Σ (y_i − ȳ)².
    n : int
        The number of points.
    """

    slope: float
    intercept: float
    rmse: float
    r2: float
    n: int


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def ols(x, y) -> LineFit:
    """Least-squares line of y on x over the pairs where both are finite (see ``LineFit``).

    slope = Σ (x_i − x̄)(y_i − ȳ) / Σ (x_i − x̄)², intercept = ȳ − slope·x̄.
    """
    x, y = _pair(x, y)
    n = x.size
    nan = float("nan")
    if n < 2:
        return LineFit(nan, nan, nan, nan, n)
    dx, dy = x - x.mean(), y - y.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        return LineFit(nan, nan, nan, nan, n)
    slope = float(dx @ dy) / sxx
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    sse = float(resid @ resid)
    syy = float(dy @ dy)
    return LineFit(slope, intercept, float(np.sqrt(sse / n)), 1.0 - sse / syy if syy > 0 else nan, n)


def kendall_tau(x, y) -> float:
    """Kendall's τ-b (ties in either variable corrected), over the pairs where both are finite.

    τ_b = (C − D) / √((P − T_x)(P − T_y)), with C and D the concordant and discordant pairs, P = n(n−1)/2,
    T_x and T_y the pairs tied in x and in y.
    """
    x, y = _pair(x, y)
    if x.size < 2:
        return float("nan")
    i, j = np.triu_indices(x.size, k=1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    s = float(np.sum(sx * sy))
    untied_x, untied_y = float(np.count_nonzero(sx)), float(np.count_nonzero(sy))
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return s / np.sqrt(untied_x * untied_y)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.arange(1, v.size + 1)
    values, inverse = np.unique(v, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse] if values.size < v.size else ranks


def spearman_rho(x, y) -> float:
    """Spearman's ρ: the Pearson correlation of the (average-tie) ranks, over pairs where both are finite."""
    x, y = _pair(x, y)
    if x.size < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = float(np.sqrt((rx @ rx) * (ry @ ry)))
    return float(rx @ ry) / den if den > 0 else float("nan")


def _tie_groups(v: np.ndarray) -> np.ndarray:
    """Sizes of the groups of equal values (only groups of two or more)."""
    counts = np.unique(v, return_counts=True)[1]
    return counts[counts > 1].astype(np.float64)


def _mahonian_cdf(n: int, c: int) -> float:
    """P(D ≤ c) for D the number of inversions of a uniformly random permutation of n items (the number of
    discordant pairs under independence, no ties). The distribution of D over n items is that over n − 1 items
    convolved with the uniform distribution on {0, …, n − 1}: p_n(k) = (1/n) Σ_{j=0}^{n−1} p_{n−1}(k − j)."""
    p = np.ones(1)
    for m in range(2, n + 1):
        cum = np.concatenate(([0.0], np.cumsum(p)))
        size = p.size + m - 1
        k = np.arange(size)
        hi = np.minimum(k, p.size - 1) + 1
        lo = np.maximum(k - (m - 1), 0)
        p = (cum[hi] - cum[lo]) / m
        p = p[: c + 1] if c + 1 < p.size else p  # only the left tail up to c is needed
    return float(min(1.0, p[: c + 1].sum()))


def kendall_p(x, y) -> tuple[float, str]:
    """Two-sided p-value of Kendall's τ under independence, and how it was computed.

    Without ties and n ≤ ``KENDALL_EXACT_MAX_N``: "exact", from the exact null distribution of the number of
    discordant pairs D (all n! orderings equally likely; ``_mahonian_cdf``): p = min(1, 2·P(D ≤ min(D_obs,
    P − D_obs))), P = n(n−1)/2. Otherwise "normal": S = C − D against N(0, Var S) with Kendall's
    tie-corrected variance Var S = (v₀ − v_t − v_u)/18 + v₁ + v₂, v₀ = n(n−1)(2n+5), v_t = Σ t(t−1)(2t+5) over
    the tie groups t of x (v_u the same over y), v₁ = Σ t(t−1)·Σ u(u−1) / (2n(n−1)),
    v₂ = Σ t(t−1)(t−2)·Σ u(u−1)(u−2) / (9n(n−1)(n−2)); p = erfc(|S| / √(2 Var S)).
    NaN (method "") for fewer than three pairs, or a constant x or y.
    """
    import math

    x, y = _pair(x, y)
    n = x.size
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan"), ""
    i, j = np.triu_indices(n, k=1)
    prod = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    concordant, discordant = int(np.sum(prod > 0)), int(np.sum(prod < 0))
    tx, ty = _tie_groups(x), _tie_groups(y)
    pairs = n * (n - 1) // 2
    if tx.size == 0 and ty.size == 0 and n <= KENDALL_EXACT_MAX_N:
        return min(1.0, 2.0 * _mahonian_cdf(n, min(discordant, pairs - discordant))), "exact"
    v0 = n * (n - 1) * (2 * n + 5)
    vt = float(np.sum(tx * (tx - 1) * (2 * tx + 5)))
    vu = float(np.sum(ty * (ty - 1) * (2 * ty + 5)))
    v1 = float(np.sum(tx * (tx - 1))) * float(np.sum(ty * (ty - 1))) / (2.0 * n * (n - 1))
    v2 = float(np.sum(tx * (tx - 1) * (tx - 2))) * float(np.sum(ty * (ty - 1) * (ty - 2))) / (
        9.0 * n * (n - 1) * (n - 2))
    var = (v0 - vt - vu) / 18.0 + v1 + v2
    s = concordant - discordant
    return float(math.erfc(abs(s) / math.sqrt(2.0 * var))), "normal"


def student_t_sf2(t: float, dof: int) -> float:
    """Two-sided tail P(|T| ≥ |t|) of Student's t with an integer number of degrees of freedom ν ≥ 1, in closed
    form (Abramowitz & Stegun 26.7.3-4): with θ = atan(|t|/√ν), A = P(|T| < |t|) is
    (2/π)(θ + sin θ Σ_{k=0}^{(ν−3)/2} a_k cos^{2k+1} θ), a_0 = 1, a_k = a_{k−1}·2k/(2k+1), for odd ν, and
    sin θ Σ_{k=0}^{(ν−2)/2} b_k cos^{2k} θ, b_0 = 1, b_k = b_{k−1}·(2k−1)/(2k), for even ν; the result is 1 − A."""
    import math

    if dof < 1:
        return float("nan")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(dof))
    s, c = math.sin(theta), math.cos(theta)
    total, term = 0.0, 1.0
    if dof % 2:
        for k in range((dof - 1) // 2):
            if k:
                term *= 2 * k / (2 * k + 1)
            total += term * c ** (2 * k + 1)
        a = 2.0 / math.pi * (theta + s * total)
    else:
        for k in range(dof // 2):
            if k:
                term *= (2 * k - 1) / (2 * k)
            total += term * c ** (2 * k)
        a = s * total
    return float(min(1.0, max(0.0, 1.0 - a)))


def slope_p(x, y) -> float:
    """Two-sided p-value of the OLS slope (H₀: slope = 0) over the pairs where both are finite:
    t = slope / SE, SE = √(SSE / (n − 2) / Σ (x_i − x̄)²), against Student's t with n − 2 degrees of freedom
    (``student_t_sf2``). NaN for fewer than three points or a constant x; 0 for a perfect fit."""
    x, y = _pair(x, y)
    n = x.size
    fit = ols(x, y)
    if n < 3 or np.isnan(fit.slope):
        return float("nan")
    dx = x - x.mean()
    sse = float(n * fit.rmse ** 2)
    if sse == 0.0:
        return 0.0 if fit.slope != 0.0 else float("nan")
    se = np.sqrt(sse / (n - 2) / float(dx @ dx))
    return student_t_sf2(fit.slope / se, n - 2)
