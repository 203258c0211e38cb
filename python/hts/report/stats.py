"""Small-sample statistics for a model series, in numpy: least squares, Kendall's τ-b, Spearman's ρ.

A series has a handful of models (n of 3 to a few dozen), so the O(n²) pair count below is exact and fast.
Every function returns NaN where the statistic is undefined (fewer than two points, or a constant input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "kendall_tau", "ols", "spearman_rho"]


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
