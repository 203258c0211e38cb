"""Independent, deliberately simple numpy reference for the RMT layer metrics of WeightWatcher 0.7.7.

It re-states, from the formulas (see /tmp/rmt_facts.md, summarised below), what WeightWatcher computes with
``mp_fit=True`` and ``randomize=True``, so that the native kernel (``hts.spectra.marchenko_pastur_fit``,
``jensen_shannon_distance``, ``randomization_metrics``) can be checked against it. It favours clarity over
speed: the kernel density estimate is a dense (grid × eigenvalue) sum.

Marchenko–Pastur fit (``ww_mp_fit``), for eigenvalues λ (n of them) of an N×M layer, Q = N/M:

1. Rescale to mean 1: W_scale = √n / √(Σλ), λ' = W_scale²·λ.
2. Fit data x = λ' (Q ≠ 1) or x = √λ' (Q == 1, quarter-circle law of the singular values).
3. Density: a linear-kernel KDE with bandwidth h = 0.1, f(t) = (1/(n h)) Σ_i max(0, 1 − |t − x_i|/h), on the
   1000 points t_j = linspace(0, max x + 0.5, 1000); points with f ≤ 0.01 are dropped (f < 0.01 count as
   zero residuals, f == 0.01 are neither).
4. Objective J(σ) = Σ_j (ρ_σ(t_j) − f(t_j))² over the kept points, where
   - Q ≠ 1: ρ_σ(t) = √((b − t)(t − a)) / (2π σ² t / Q) on [a, b], 0 elsewhere, a, b = (σ(1 ∓ √(1/Q)))²;
     J = 1000²·(kept points) when b < t_peak, b > max kept t, or a > t_peak (t_peak = argmax f);
   - Q == 1: ρ_σ(t) = √(4 − t²) / (π σ²) on t ≤ 2 (its support does not move with σ), no penalty.
5. σ: the first minimiser of J over the grid s0·(0.05, 0.06, …, < 2) (numpy ``arange`` semantics), with
   s0 = √(max λ' / (1 + 1/√Q)²); then polished by Nelder–Mead in one dimension started there (scipy
   ``fmin`` defaults: second vertex 1.05·σ, xatol = fatol = 1e-4, at most 200 iterations / evaluations).
6. bulk_max = (σ(1 + 1/√Q))², bulk_min = (σ(1 − 1/√Q))², TW = Q^(−1/2)·bulk_max^(2/3)·M^(−2/3);
   num_spikes = #(λ' > bulk_max + √TW); mp_softrank = bulk_max / max λ'; bulk_max and bulk_min are returned
   divided by W_scale² (the original scale), sigma_mp on the rescaled one.

Randomization (``ww_randomization_metrics``): JS distance (natural log) between the ascending ``evals`` and
one ascending replica of the shuffled-W eigenvalues, over index positions: m = (p + q)/2 (unnormalised),
D = (KL(p̂‖m̂) + KL(q̂‖m̂))/2 with each vector normalised to sum 1, distance √D; ww_softrank = max q / max p;
ww_maxdist = max p − max q; max_rand_eval and the rand_* MP columns come from the (replica-pooled) rand ESD.

The arithmetic follows WeightWatcher's order of operations (numpy's pairwise ``np.sum``; scalar squares via
``pow``), so that the result equals WeightWatcher's whenever the KDE values agree; those differ from
scikit-learn's tree-based KDE by ~1e-14 relative (summation in log space), which can move σ only when two
objective values tie to that precision.

Only numpy and math are used.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "KDE_BANDWIDTH",
    "KDE_GRID",
    "KDE_THRESH",
    "PENALTY",
    "js_distance",
    "kde_linear",
    "mp_objective",
    "nelder_mead_1d",
    "sigma_grid",
    "ww_mp_fit",
    "ww_randomization_metrics",
]

KDE_BANDWIDTH = 0.1
KDE_GRID = 1000
KDE_THRESH = 0.01
PENALTY = 1000.0


def kde_linear(data: np.ndarray, at: np.ndarray, h: float = KDE_BANDWIDTH) -> np.ndarray:
    """Linear-kernel density (1/(n h)) Σ max(0, 1 − |t − x_i|/h) at the points ``at``.

    Normalised the way scikit-learn's ``KernelDensity(kernel='linear')`` does (in log space: log Σ + log of
    the kernel norm − log n), which is closest to its numbers.
    """
    n = data.size
    out = np.empty(at.size)
    for lo in range(0, at.size, 100):
        d = np.abs(at[lo:lo + 100, None] - data[None, :])
        out[lo:lo + 100] = np.where(d < h, 1.0 - d / h, 0.0).sum(axis=1)
    log_vn = 0.5 * math.log(math.pi) - math.lgamma(1.5)  # log volume of the unit 1-ball
    log_norm = -(log_vn - math.log(2.0)) - math.log(h)
    with np.errstate(divide="ignore"):
        return np.exp(np.log(out) + log_norm - math.log(n))


def sigma_grid(s0: float) -> np.ndarray:
    """numpy ``arange(0.05 s0, 2 s0, 0.01 s0)``: ceil((stop − start)/step) points start + i·((start + step) − start)."""
    start, stop, step = 0.05 * s0, 2.0 * s0, 0.01 * s0
    count = math.ceil((stop - start) / step)
    delta = (start + step) - start
    return np.array([start] + [start + i * delta for i in range(1, count)])


class _Objective:
    """J(σ) on a fixed KDE (the expensive part, computed once)."""

    def __init__(self, fit_data: np.ndarray, Q: float):
        self.Q = Q
        t = np.linspace(0.0, np.max(fit_data) + 0.5, KDE_GRID)
        f = kde_linear(fit_data, t)
        good = f > KDE_THRESH
        self.n_bad = int(np.sum(f < KDE_THRESH))
        self.t, self.f = t[good], f[good]
        if self.t.size:
            self.t_peak = self.t[int(np.argmax(self.f))]
            self.t_last = self.t[-1]

    def __call__(self, sigma: float) -> float:
        Q, t, f = self.Q, self.t, self.f
        if Q == 1:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                rho = np.nan_to_num((1 / (np.pi * sigma * sigma)) * np.sqrt(4 - t * t))
            resid = rho - f
        else:
            r = math.sqrt(1 / Q)
            b = (sigma * (1 + r)) * (sigma * (1 + r))
            a = (sigma * (1 - r)) * (sigma * (1 - r))
            if t.size == 0:
                raise ValueError("no KDE point above the density threshold")
            if b < self.t_peak or b > self.t_last or a > self.t_peak:
                resid = np.full(t.size, PENALTY)
            else:
                with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                    rho = np.nan_to_num(
                        (1 / (2 * np.pi * sigma * sigma * t * (1 / Q))) * np.sqrt((b - t) * (t - a)))
                resid = rho - f
        return float(np.sum(np.concatenate([resid * resid, np.zeros(self.n_bad)])))


def mp_objective(evals: np.ndarray, Q: float, sigma: float) -> float:
    """J(σ) for eigenvalues already rescaled to mean 1 (``sqrt`` is taken here when Q == 1)."""
    x = np.sqrt(evals) if Q == 1 else np.asarray(evals, dtype=float)
    return _Objective(x, Q)(sigma)


def nelder_mead_1d(fun, x0: float, xatol: float = 1e-4, fatol: float = 1e-4, max_iter: int = 200,
                   max_fev: int = 200) -> float:
    """Downhill simplex in one dimension with scipy ``fmin``'s default coefficients and stopping rules.

    Vertices x0 and 1.05·x0 (0.00025 when x0 == 0); reflection 2x̄ − x_w, expansion 3x̄ − 2x_w, outside
    contraction 1.5x̄ − 0.5x_w, inside contraction 0.5x̄ + 0.5x_w, shrink x_0 + 0.5(x_w − x_0); the vertices are
    re-ordered by value after every step (ties keep their order, NaN last). Stops when both |x_1 − x_0| <= xatol
    and |f_1 − f_0| <= fatol, or after max_iter − 1 steps, or when max_fev evaluations are used (an
    evaluation past the limit aborts the step it belongs to).
    """
    calls = [0]

    class _Limit(Exception):
        pass

    def f(x):
        if calls[0] >= max_fev:
            raise _Limit
        calls[0] += 1
        return float(fun(x))

    def order(sim, fs):
        key = [(math.isnan(v), v if not math.isnan(v) else 0.0, i) for i, v in enumerate(fs)]
        idx = [k[2] for k in sorted(key)]
        return [sim[i] for i in idx], [fs[i] for i in idx]

    sim = [x0, (1 + 0.05) * x0 if x0 != 0 else 0.00025]
    fs = [math.inf, math.inf]
    try:
        for k in range(2):
            fs[k] = f(sim[k])
    except _Limit:
        pass
    sim, fs = order(sim, fs)
    it = 1
    while calls[0] < max_fev and it < max_iter:
        try:
            if abs(sim[1] - sim[0]) <= xatol and abs(fs[0] - fs[1]) <= fatol:
                break
            xbar = sim[0]  # centroid of all vertices but the worst
            xr = 2 * xbar - 1 * sim[1]
            fxr = f(xr)
            if fxr < fs[0]:
                xe = 3 * xbar - 2 * sim[1]
                fxe = f(xe)
                sim[1], fs[1] = (xe, fxe) if fxe < fxr else (xr, fxr)
            elif fxr < fs[0]:  # fs[-2] is fs[0] in one dimension; kept for the shape of the algorithm
                sim[1], fs[1] = xr, fxr
            elif fxr < fs[1]:
                xc = 1.5 * xbar - 0.5 * sim[1]
                fxc = f(xc)
                if fxc <= fxr:
                    sim[1], fs[1] = xc, fxc
                else:
                    sim[1] = sim[0] + 0.5 * (sim[1] - sim[0])
                    fs[1] = f(sim[1])
            else:
                xcc = 0.5 * xbar + 0.5 * sim[1]
                fxcc = f(xcc)
                if fxcc < fs[1]:
                    sim[1], fs[1] = xcc, fxcc
                else:
                    sim[1] = sim[0] + 0.5 * (sim[1] - sim[0])
                    fs[1] = f(sim[1])
            it += 1
        except _Limit:
            pass
        sim, fs = order(sim, fs)
    return sim[0]


def ww_mp_fit(evals, N: int, M: int) -> dict:
    """WeightWatcher's ``mp_fit`` columns for one layer: num_spikes, sigma_mp, mp_softrank, W_scale,
    bulk_max, bulk_min (bulk values on the original scale). Raises where WeightWatcher's fit raises."""
    evals = np.asarray(evals, dtype=np.float64)
    Q = N / M
    w_scale = np.sqrt(evals.shape[0]) / np.sqrt(np.sum(evals))
    x = (w_scale * w_scale) * evals
    lam_max = np.max(x)
    fit_data = np.sqrt(x) if Q == 1 else x
    s0 = np.sqrt(lam_max / np.square(1.0 + 1.0 / np.sqrt(Q)))
    if not np.isfinite(s0):
        raise ValueError("non-finite sigma scale")
    J = _Objective(fit_data, Q)
    grid = sigma_grid(float(s0))
    values = np.array([J(s) for s in grid])
    sigma = np.float64(nelder_mead_1d(J, float(grid[int(np.argmin(values))])))
    bulk_max = (sigma * (1 + 1 / np.sqrt(Q))) ** 2  # a numpy-scalar square: libm pow(x, 2)
    bulk_min = (sigma * (1 - 1 / np.sqrt(Q))) ** 2
    tw = 1 / np.sqrt(Q) * np.power(bulk_max, 2 / 3) * np.power(M, -2 / 3)
    num_spikes = int(np.sum(x > bulk_max + np.sqrt(tw)))
    return {
        "num_spikes": num_spikes,
        "sigma_mp": float(sigma),
        "mp_softrank": float(bulk_max / lam_max),
        "W_scale": float(w_scale),
        "bulk_max": float(bulk_max / (w_scale * w_scale)),
        "bulk_min": float(bulk_min / (w_scale * w_scale)),
    }


def _rel_entr(x: float, y: float) -> float:
    """x·ln(x/y) as scipy.special.rel_entr (scipy >= 1.15) evaluates it, with the C library's log/log1p.

    0 for x == 0 <= y, +inf for other non-positive arguments; x·log1p((x − y)/y) when 1/2 < x/y < 2;
    x·ln(x/y) when x/y is a normal finite number; x·(ln x − ln y) otherwise.
    """
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x <= 0 or y <= 0:
        return 0.0 if x == 0 and y >= 0 else math.inf
    ratio = x / y
    if 0.5 < ratio < 2:
        return x * math.log1p((x - y) / y)
    if 2.2250738585072014e-308 < ratio < math.inf:
        return x * math.log(ratio)
    return x * (math.log(x) - math.log(y))


def js_distance(p, q) -> float:
    """Jensen–Shannon distance √((KL(p̂‖m̂) + KL(q̂‖m̂))/2), m = (p + q)/2, natural log, x̂ = x/Σx."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = (p + q) / 2

    def kl(a, b):
        a = a / np.sum(a)
        b = b / np.sum(b)
        terms = [_rel_entr(x, y) for x, y in zip(a.tolist(), b.tolist())]
        return np.sum(np.array(terms, dtype=np.float64))

    with np.errstate(invalid="ignore"):
        return float(np.sqrt((kl(p, m) + kl(q, m)) / 2))


def ww_randomization_metrics(evals, rand_evals, single_rand_evals, N: int, M: int) -> dict:
    """The ``randomize=True`` columns: rand_distance, ww_softrank, ww_maxdist from one replica
    (``single_rand_evals``), max_rand_eval and rand_* MP columns from the pooled ``rand_evals``."""
    evals = np.sort(np.asarray(evals, dtype=np.float64))
    one = np.sort(np.asarray(single_rand_evals, dtype=np.float64))
    pooled = np.sort(np.asarray(rand_evals, dtype=np.float64))
    out = {
        "max_rand_eval": float(np.max(pooled)),
        "rand_distance": js_distance(evals, one),
        "ww_softrank": float(np.max(one) / np.max(evals)),
        "ww_maxdist": float(np.max(evals) - np.max(one)),
    }
    fit = ww_mp_fit(pooled, N, M)
    out.update({"rand_" + k: v for k, v in fit.items()})
    return out
