"""Vuong likelihood-ratio tests: is the tail of an ESD better described by a power law or by an alternative?

For the n tail values x_i >= xmin (a fixed xmin, e.g. the power-law fit's), each candidate distribution is fitted
by maximum likelihood on [xmin, ∞) and gives pointwise log-likelihoods ℓ_i. With d_i = ℓ_i(PL) − ℓ_i(alt):

    R = Σ d_i,  σ² = (1/n) Σ (d_i − d̄)²,  normalised R_n = R / √(n σ²),  p = erfc(|R| / √(2 n σ²))

(Vuong 1989; Clauset, Shalizi & Newman 2009 §5). R_n > 0 favours the power law, R_n < 0 the alternative; p
says whether the sign is significant (p < 0.1, say). The truncated power law contains the power law (Lambda = 0),
so for it p is the nested likelihood-ratio test instead: p = 1 − χ²₁(2|R|) = erfc(√|R|) (Wilks; ``powerlaw``
treats the pair as nested because one name contains the other). Densities on [xmin, ∞):

- power law: (α − 1)/xmin · (x/xmin)^(−α), α = 1 + n / Σ ln(x_i/xmin) (closed form);
- exponential: λ e^(λ(xmin − x));
- stretched exponential: β λ (λx)^(β−1) e^((λ xmin)^β − (λx)^β);
- lognormal: (1/x) e^(−(ln x − μ)²/(2s²)) · √(2/(π s²)) / erfc((ln xmin − μ)/(√2 s));
- truncated power law: x^(−α) e^(−λx) · λ^(1−α) / Γ(1 − α, λ xmin) (``hts.tpl``; fitted natively by the same
  Nelder–Mead from (1 + n/Σ ln(x_i/xmin), 1/mean)).

The numbers are those of ``powerlaw`` 1.5's ``Fit(x, xmin=xmin).distribution_compare("power_law", alt,
normalized_ratio=True)``: the same start points (exponential 1/mean; stretched exponential (1/mean, 1);
lognormal (mean, std) of ln x), the same Nelder–Mead (scipy ``fmin``'s algorithm and defaults, transcribed:
xatol = fatol = 1e-4, 200 iterations per parameter, initial steps 5 %), the same out-of-range rule
(a parameter outside its domain gives every point the likelihood 1e-307) and the same log-likelihood floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ALTERNATIVES", "LikelihoodRatio", "compare_power_law"]

ALTERNATIVES = ("exponential", "stretched_exponential", "lognormal", "truncated_power_law")
_TINY = 10.0 ** -307  # powerlaw's 10**float_info.min_10_exp
_LOG_TINY = math.log(_TINY)


class _TooManyCalls(Exception):
    pass


def _nelder_mead(func: Callable[[np.ndarray], float], x0) -> np.ndarray:
    """scipy.optimize.fmin's Nelder–Mead with its defaults (xatol = fatol = 1e-4, maxiter = maxfun = 200·N)."""
    x0 = np.atleast_1d(np.asarray(x0, dtype=np.float64)).ravel()
    N = x0.size
    rho, chi, psi, sigma = 1.0, 2.0, 0.5, 0.5
    sim = np.empty((N + 1, N))
    sim[0] = x0
    for k in range(N):
        y = x0.copy()
        y[k] = (1 + 0.05) * y[k] if y[k] != 0 else 0.00025
        sim[k + 1] = y
    maxiter = maxfun = 200 * N
    calls = [0]

    def f(x):
        if calls[0] >= maxfun:
            raise _TooManyCalls
        calls[0] += 1
        return float(func(x))

    fsim = np.full(N + 1, np.inf)
    try:
        for k in range(N + 1):
            fsim[k] = f(sim[k])
    except _TooManyCalls:
        pass
    ind = np.argsort(fsim)
    sim, fsim = np.take(sim, ind, 0), np.take(fsim, ind, 0)
    iterations = 1
    while calls[0] < maxfun and iterations < maxiter:
        try:
            if np.max(np.abs(sim[1:] - sim[0])) <= 1e-4 and np.max(np.abs(fsim[0] - fsim[1:])) <= 1e-4:
                break
            xbar = np.add.reduce(sim[:-1], 0) / N
            xr = (1 + rho) * xbar - rho * sim[-1]
            fxr = f(xr)
            shrink = False
            if fxr < fsim[0]:
                xe = (1 + rho * chi) * xbar - rho * chi * sim[-1]
                fxe = f(xe)
                if fxe < fxr:
                    sim[-1], fsim[-1] = xe, fxe
                else:
                    sim[-1], fsim[-1] = xr, fxr
            elif fxr < fsim[-2]:
                sim[-1], fsim[-1] = xr, fxr
            else:
                if fxr < fsim[-1]:
                    xc = (1 + psi * rho) * xbar - psi * rho * sim[-1]
                    fxc = f(xc)
                    if fxc <= fxr:
                        sim[-1], fsim[-1] = xc, fxc
                    else:
                        shrink = True
                else:
                    xcc = (1 - psi) * xbar + psi * sim[-1]
                    fxcc = f(xcc)
                    if fxcc < fsim[-1]:
                        sim[-1], fsim[-1] = xcc, fxcc
                    else:
                        shrink = True
                if shrink:
                    for j in range(1, N + 1):
                        sim[j] = sim[0] + sigma * (sim[j] - sim[0])
                        fsim[j] = f(sim[j])
            iterations += 1
        except _TooManyCalls:
            pass
        ind = np.argsort(fsim)
        sim, fsim = np.take(sim, ind, 0), np.take(fsim, ind, 0)
    return sim[0]


def _ll_power_law(x: np.ndarray, xmin: float) -> np.ndarray:
    alpha = 1 + x.size / np.sum(np.log(x / xmin))
    if not alpha > 1:
        return np.full(x.size, _LOG_TINY)
    return np.log(x ** -alpha * ((alpha - 1) * xmin ** (alpha - 1)))


def _ll_exponential(p, x, xmin):
    lam = p[0]
    if not lam > 0:
        return np.full(x.size, _LOG_TINY)
    ll = np.log(lam) + lam * (xmin - x)
    ll[ll == 0] = _LOG_TINY  # powerlaw 1.5 replaces exact zeros (sic)
    return ll


def _ll_stretched_exponential(p, x, xmin):
    lam, beta = p
    if not (lam > 0 and beta > 0):
        return np.full(x.size, _LOG_TINY)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ll = np.log((x * lam) ** (beta - 1) * beta * lam) + (lam * xmin) ** beta - (lam * x) ** beta
    ll[ll == -np.inf] = _LOG_TINY
    return ll


def _log_erfc(z: float) -> float:
    """ln erfc(z) without underflow: the library erfc up to z = 20, then the asymptotic series
    erfc(z) = e^(−z²)/(z√π) · (1 − 1/(2z²) + 3/(2z²)² − 15/(2z²)³ + 105/(2z²)⁴ − 945/(2z²)⁵) (error < 1e-13)."""
    if z < 20:
        return math.log(math.erfc(z))
    t = 1 / (2 * z * z)
    series = 1 - t + 3 * t**2 - 15 * t**3 + 105 * t**4 - 945 * t**5
    return -z * z - math.log(z * math.sqrt(math.pi)) + math.log(series)


def _ll_lognormal(p, x, xmin):
    """ln of (1/x)·e^(−(ln x − μ)²/(2s²)) / C, C = erfc((ln xmin − μ)/(√2 s)) / √(2/(π s²)), in log space.

    ``powerlaw`` forms the density and C as doubles, which underflow (to subnormals, then 1e-307) when the fit
    runs to the power-law limit of the lognormal (μ ≪ 0, s ≫ 1); hts stays exact there (a documented
    difference); elsewhere the two agree to rounding."""
    mu, s = p
    if not s > 0:
        return np.full(x.size, _LOG_TINY)
    z = (math.log(xmin) - mu) / (math.sqrt(2) * s)
    lx = np.log(x)
    expo = -((lx - mu) ** 2) / (2 * s ** 2)
    if z < 20 and expo.min() > -650:  # no underflow: powerlaw's own double arithmetic, operation for operation
        C = math.erfc(z) / math.sqrt(2 / (math.pi * s ** 2))
        like = (1.0 / x) * np.exp(expo) / C
        like[like == 0] = _TINY
        return np.log(like)
    return -lx + expo - (_log_erfc(z) - 0.5 * math.log(2 / (math.pi * s ** 2)))


def _ll_truncated_power_law(p, x, xmin):
    """powerlaw's arithmetic: ln(x^(−α)·e^(−λx)·C), C = λ^(1−α)/Γ(1−α, λ xmin), a zero likelihood -> 1e-307."""
    alpha, lam = p
    if not (lam > 0 and alpha > 1):
        return np.full(x.size, _LOG_TINY)
    from .tpl import upper_gamma

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        C = lam ** (1 - alpha) / upper_gamma(1 - alpha, lam * xmin)
        like = x ** -alpha * np.exp(-lam * x) * C
        like[like == 0] = _TINY
        return np.log(like)


def _fit_truncated_power_law(x: np.ndarray, xmin: float) -> tuple[float, float]:
    from . import _core

    alpha, lam, _, _ = _core.tpl_fit_tail(np.ascontiguousarray(x, dtype=np.float64), float(xmin))
    return alpha, lam


_FITS = {
    "exponential": (_ll_exponential, lambda x: 1 / np.mean(x)),
    "stretched_exponential": (_ll_stretched_exponential, lambda x: (1 / np.mean(x), 1)),
    "lognormal": (_ll_lognormal, lambda x: (np.mean(np.log(x)), np.std(np.log(x)))),
}


@dataclass(frozen=True)
class LikelihoodRatio:
    """One Vuong test of the power law against ``alternative`` (see the module docstring).

    R is the normalised ratio (> 0 favours the power law); p the two-sided significance of its sign;
    ``params`` the alternative's fitted parameters; n the tail size.
    """

    alternative: str
    R: float
    p: float
    params: tuple
    n: int

    @property
    def verdict(self) -> str:
        """Plain words at the 0.1 level: "power law", the alternative's name, or "undecided"."""
        if not self.p < 0.1:
            return "undecided"
        return "power law" if self.R > 0 else self.alternative


def _vuong(ll1: np.ndarray, ll2: np.ndarray, nested: bool = False) -> tuple[float, float]:
    ll1 = np.where(ll1 == -np.inf, _LOG_TINY, ll1)
    ll2 = np.where(ll2 == -np.inf, _LOG_TINY, ll2)
    n = ll1.size
    R = float(np.sum(ll1 - ll2))
    mean_diff = np.mean(ll1) - np.mean(ll2)
    variance = float(np.sum(((ll1 - ll2) - mean_diff) ** 2) / n)
    if nested:  # Wilks: 2|R| ~ χ²₁, so p = 1 − χ²₁.cdf(2|R|) = erfc(√|R|)
        p = math.erfc(math.sqrt(abs(R)))
        if variance == 0:
            return (0.0 if R == 0 else math.copysign(math.inf, R)), p
        return R / math.sqrt(n * variance), p
    if variance == 0:
        return (0.0 if R == 0 else math.copysign(math.inf, R)), (1.0 if R == 0 else 0.0)
    p = math.erfc(abs(R) / math.sqrt(2 * n * variance))
    return R / math.sqrt(n * variance), p


def compare_power_law(evals, xmin: float, alternatives=ALTERNATIVES) -> dict:
    """Vuong tests of the power law against each alternative on the values of ``evals`` >= ``xmin``.

    Returns ``{alternative: LikelihoodRatio}``. Raises ValueError for fewer than 2 tail values, a non-positive
    xmin, NaN data or an unknown alternative.
    """
    x = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    if np.isnan(x).any():
        raise ValueError("compare_power_law: NaN eigenvalues")
    if not xmin > 0:
        raise ValueError(f"compare_power_law: xmin must be > 0, got {xmin!r}")
    x = x[x >= xmin]
    if x.size < 2:
        raise ValueError(f"compare_power_law: {x.size} value(s) >= xmin={xmin!r}, need 2")
    unknown = [a for a in alternatives if a not in _FITS and a != "truncated_power_law"]
    if unknown:
        raise ValueError(f"compare_power_law: unknown alternative(s) {unknown}; choose from {ALTERNATIVES}")
    ll_pl = _ll_power_law(x, float(xmin))
    out = {}
    for name in alternatives:
        if name == "truncated_power_law":
            params = _fit_truncated_power_law(x, float(xmin))
            R, p = _vuong(ll_pl, _ll_truncated_power_law(params, x, float(xmin)), nested=True)
        else:
            ll, start = _FITS[name]
            params = _nelder_mead(lambda p: -np.sum(ll(p, x, float(xmin))), start(x))
            R, p = _vuong(ll_pl, ll(params, x, float(xmin)))
        out[name] = LikelihoodRatio(name, R, p, tuple(float(v) for v in params), int(x.size))
    return out
