"""Small-sample statistics for a model series, in numpy: least squares (with the slope's p-value), Kendall's
τ-b (with its exact p-value), Spearman's ρ.

A series has a handful of models (n of 3 to a few dozen), so the O(n²) pair count below is exact and fast.
Every function returns NaN where the statistic is undefined (fewer than two points, or a constant input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "kendall_p", "kendall_tau", "ols", "slope_p", "spearman_rho", "student_t_sf"]


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


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz, to 1e-15)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    from math import exp, lgamma, log

    front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| ≥ |t|) of Student's t with ``df`` degrees of freedom:
    I_{df/(df+t²)}(df/2, 1/2)."""
    if not np.isfinite(t):
        return 0.0 if not np.isnan(t) else float("nan")
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def slope_p(x, y) -> float:
    """p-value of the OLS slope (H0: slope = 0): t = slope / SE, SE = √(SSE/(n−2) / Σ(x−x̄)²), two-sided Student
    t with n − 2 degrees of freedom; NaN below 3 points or for a constant x."""
    x, y = _pair(x, y)
    n = x.size
    if n < 3:
        return float("nan")
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        return float("nan")
    slope = float(dx @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * dx
    sse = float(resid @ resid)
    if sse == 0.0:
        return 0.0
    return student_t_sf(slope / np.sqrt(sse / (n - 2) / sxx), n - 2)


def _inversion_counts(n: int) -> np.ndarray:
    """How many permutations of n items have k inversions, k = 0..n(n−1)/2 (Mahonian numbers), as float."""
    counts = np.ones(1)
    for m in range(2, n + 1):
        nxt = np.zeros(counts.size + m - 1)
        for shift in range(m):  # inserting the m-th item adds 0..m−1 inversions
            nxt[shift:shift + counts.size] += counts
        counts = nxt
    return counts


def kendall_p(x, y) -> float:
    """Two-sided p-value of Kendall's τ (H0: independence), over the pairs where both are finite.

    Without ties it is exact: under H0 every ordering is equally likely, the number of discordant pairs D has
    the distribution of inversions of a random permutation of n (the Mahonian numbers), and
    p = P(|C − D| ≥ |C_obs − D_obs|), computed for n ≤ 60. With ties, or larger n, the normal approximation of
    τ-b's numerator S = C − D with the tie-corrected variance
    Var S = [v0 − Σt(t−1)(2t+5) − Σu(u−1)(2u+5)]/18 + Σt(t−1)·Σu(u−1)/(2n(n−1))
    + Σt(t−1)(t−2)·Σu(u−1)(u−2)/(9n(n−1)(n−2)), v0 = n(n−1)(2n+5), t and u the tie-group sizes.
    NaN below 3 points or when either variable is constant.
    """
    x, y = _pair(x, y)
    n = x.size
    if n < 3:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    if not sx.any() or not sy.any():
        return float("nan")
    s = int(np.sum(sx * sy))
    ties = np.count_nonzero(sx == 0) + np.count_nonzero(sy == 0)
    if ties == 0 and n <= 60:
        counts = _inversion_counts(n)
        total = n * (n - 1) // 2
        k = np.arange(counts.size)
        stat = np.abs(total - 2 * k)  # |C − D| when D = k
        return float(min(1.0, counts[stat >= abs(s)].sum() / counts.sum()))
    from math import erfc, sqrt

    def groups(v):
        _, c = np.unique(v, return_counts=True)
        return c.astype(np.float64)

    t, u = groups(x), groups(y)
    var = (n * (n - 1) * (2 * n + 5) - np.sum(t * (t - 1) * (2 * t + 5)) - np.sum(u * (u - 1) * (2 * u + 5))) / 18
    var += np.sum(t * (t - 1)) * np.sum(u * (u - 1)) / (2 * n * (n - 1))
    var += np.sum(t * (t - 1) * (t - 2)) * np.sum(u * (u - 1) * (u - 2)) / (9 * n * (n - 1) * (n - 2))
    if var <= 0:
        return float("nan")
    return float(erfc(abs(s) / sqrt(2 * var)))
