"""Independent, deliberately simple pure-numpy reference for the tests.

This module re-states, in plain numpy, what WeightWatcher 0.7.7 computes for
one layer with its default settings (``fit='PL'``, ``pl_package='ww'``,
``xmax=None``, ``fix_fingers=None``), so that the hts kernel can be checked
against it.  It favours clarity over speed: the power-law fit is an O(n^2)
loop over xmin candidates.  It was written from the formulas (see
``shared/reference/weightwatcher-0.7.7.md``, sections C and D) and checked
against the real WeightWatcher 0.7.7 (``WWFit`` through
``WeightWatcher.fit_powerlaw`` and ``apply_norm_metrics``): on every case
tried the numbers agree bit for bit, the arithmetic being done in the same
order.  The tests should still compare hts with a small relative tolerance,
because a faster implementation (prefix sums, another summation order) rounds
differently.

Public functions
----------------
ww_fit_power_law(evals, evals_thresh=1e-5)
    The default power-law fit (the ``alpha, xmin, xmax, D, sigma,
    num_pl_spikes, status`` columns).
ww_metrics(evals, N, alpha, tolerance=1e-6)
    The norm metrics of ``apply_norm_metrics`` plus ``lambda_max`` and
    ``weak_rank_loss`` of ``apply_esd``.
ww_rank_loss(svals_per_slice, N)
    The ``rank_loss`` column.

Only numpy and math are used.
"""

import math

import numpy as np

__all__ = [
    "EVALS_THRESH",
    "SMALL_N_CUTOFF",
    "SMALL_N_MIN_TAIL",
    "SMALL_N_S_FLOOR",
    "ENTROPY_EPSILON",
    "WEAK_RANK_LOSS_TOLERANCE",
    "ww_fit_power_law",
    "ww_metrics",
    "ww_rank_loss",
]

#: Eigenvalues at or below this absolute value are dropped before the fit.
EVALS_THRESH = 1e-5
#: Samples with fewer points than this use the small-n fitter.
SMALL_N_CUTOFF = 20
#: The small-n fitter only scores candidates whose tail has this many points.
SMALL_N_MIN_TAIL = 8
#: The small-n fitter skips a candidate whose log-sum S is <= this value.
SMALL_N_S_FLOOR = 1e-12
#: Added to the probabilities and to the rank in the matrix entropy (CPU value;
#: WeightWatcher uses 6e-5 when torch finds CUDA).
ENTROPY_EPSILON = 1e-10
#: Eigenvalues strictly below this count towards weak_rank_loss.
WEAK_RANK_LOSS_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------
# Power-law fit
# ---------------------------------------------------------------------------

def _log_sum(logx, i):
    r"""Return S_i = sum_{j>=i} ln x_j - m ln x_i, with m = n - i.

    The sum is taken with ``np.sum`` over the slice (numpy's pairwise
    summation), then m * ln x_i is subtracted, which is the rounding order of
    the peer tool.
    """
    m = float(len(logx) - i)
    return np.sum(logx[i:]) - m * logx[i]


def _ks_distance(x, i, alpha):
    r"""One-sided KS distance of the tail x[i:] from a power law with xmin = x[i].

    D = max_k | 1 - (x_{i+k} / x_i)^(1 - alpha) - k / m |,  k = 0 .. m-1,

    i.e. the fitted CDF at each tail point against the lower step of the
    empirical CDF (0, 1/m, ..., (m-1)/m).  The upper step (k+1)/m is NOT
    compared.
    """
    tail = x[i:]
    m = len(tail)
    fitted_cdf = 1.0 - (tail / x[i]) ** (1.0 - alpha)
    empirical_cdf = np.arange(m, dtype=np.float64) / float(m)
    return np.max(np.abs(fitted_cdf - empirical_cdf))


def _candidates_standard(x, logx):
    r"""Per-candidate (alpha_i, D_i) of the n >= 20 fitter.

    Every sorted value but the largest is a candidate (i = 0 .. n-2; tied
    values are separate candidates).  With m = n - i:

        alpha_i = 1 + m / S_i           (continuous MLE, no correction)
        D_i     = KS distance            if alpha_i > 1
        D_i     = 1                      otherwise (also when alpha_i is NaN)

    S_i = 0 (tied tail) gives alpha_i = +inf, which is > 1, and then
    (x/x_i)^(-inf) is 1 at ties and 0 above, so D_i = (m - 1)/m there.
    """
    n = len(x)
    alphas = np.zeros(n - 1, dtype=np.float64)
    ds = np.ones(n - 1, dtype=np.float64)
    for i in range(n - 1):
        m = float(n - i)
        alpha = 1.0 + m / _log_sum(logx, i)
        alphas[i] = alpha
        if alpha > 1.0:
            ds[i] = _ks_distance(x, i, alpha)
    return alphas, ds


def _candidates_small_n(x, logx):
    r"""Per-candidate (alpha_i, D_i) of the n < 20 fitter, with its quirks.

    Candidate i (i = 0 .. n-2, tail m = n - i) is scored only if m >= 8 and
    S_i > 1e-12.  Then

        alpha_i = 1 + (m - 1) / S_i     (bias-corrected MLE)
        D_i     = KS distance            if alpha_i > 1, else D_i = 1.

    An unscored candidate keeps alpha_i = 0 and D_i = 1 (an alpha_i <= 1
    is stored, with D_i = 1).

    Sigma is taken from these alphas BEFORE the fallback below:
    sigma_i = (alpha_i - 1)/sqrt(m), so an unscored candidate has
    sigma_i = -1/sqrt(m).

    Fallback: if no candidate produced a (finite) D, the whole sample is the
    tail (i = 0, m = n): if S_0 > 1e-12, alpha_0 = 1 + (n - 1)/S_0 and
    D_0 = KS distance (no alpha > 1 test here); otherwise nothing changes.
    The fallback does not update sigma_0.

    The peer tool also computes J_i = D_i - 0.868/sqrt(m) and picks argmin J,
    but its caller then re-selects argmin D, which is what is reported; J is
    therefore not needed here.

    Returns
    -------
    alphas, ds, sigmas : ndarray
        Each of length n - 1.
    """
    n = len(x)
    alphas = np.zeros(n - 1, dtype=np.float64)
    ds = np.ones(n - 1, dtype=np.float64)
    scored = False
    for i in range(n - 1):
        m = n - i
        if m < SMALL_N_MIN_TAIL:
            continue
        s = _log_sum(logx, i)
        if s <= SMALL_N_S_FLOOR:
            continue
        alpha = 1.0 + (m - 1.0) / s
        alphas[i] = alpha
        if alpha <= 1.0:
            continue
        ds[i] = _ks_distance(x, i, alpha)
        if np.isfinite(ds[i]):
            scored = True

    tails = n - np.arange(n - 1)
    sigmas = (alphas - 1.0) / np.sqrt(tails)

    if not scored:
        s = _log_sum(logx, 0)
        if not (s <= SMALL_N_S_FLOOR):    # NaN goes on, as in the peer
            alpha = 1.0 + (n - 1.0) / s
            alphas[0] = alpha
            ds[0] = _ks_distance(x, 0, alpha)
    return alphas, ds, sigmas


def _failed(ww_raw=False):
    if ww_raw:
        return dict(alpha=-1, xmin=-1, xmax=None, D=-1, sigma=-1,
                    num_pl_spikes=-1, status="failed")
    nan = float("nan")
    return dict(alpha=nan, xmin=nan, xmax=nan, D=nan, sigma=nan,
                num_pl_spikes=0, status="failed")


def ww_fit_power_law(evals, evals_thresh=EVALS_THRESH, ww_raw_failure=False):
    r"""WeightWatcher 0.7.7's default power-law fit of one layer's eigenvalues.

    Parameters
    ----------
    evals : array_like
        The layer's (pooled) eigenvalues, any order; cast to float64.
    evals_thresh : float, optional
        Absolute threshold: only x = evals[evals > evals_thresh] are fitted
        (default 1e-5; NaN is dropped by this test, +inf is kept).
    ww_raw_failure : bool, optional
        If True, a failed fit returns the peer tool's raw values (see Notes)
        instead of hts's NaN convention.

    Returns
    -------
    dict
        ``alpha, xmin, xmax, D, sigma`` (float), ``num_pl_spikes`` (int),
        ``status`` ('success' or 'failed').

    Notes
    -----
    **Data.**  x = sort(evals[evals > evals_thresh]) ascending in float64,
    n = len(x).

    **Standard fitter, n >= 20.**  Candidates i = 0 .. n-2 (every value but
    the largest, duplicates kept, no minimum tail).  With m = n - i and
    S_i = sum_{j>=i} ln x_j - m ln x_i:

    * alpha_i = 1 + m / S_i,
    * D_i = max_{k=0..m-1} | 1 - (x_{i+k}/x_i)^(1-alpha_i) - k/m | if
      alpha_i > 1, else D_i = 1,
    * sigma_i = (alpha_i - 1)/sqrt(m).

    **Small-n fitter, n < 20** (see ``_candidates_small_n``): tail m >= 8,
    S_i > 1e-12, alpha_i = 1 + (m - 1)/S_i; unscored candidates keep
    alpha_i = 0, D_i = 1; sigma from the pre-fallback alphas; if nothing was
    scored (always the case for n < 8, and for an all-tied sample) the whole
    sample is fitted as candidate 0.  For n = 8 the whole sample is the one
    regular candidate (tail 8), so its sigma is (alpha - 1)/sqrt(8); for
    n < 8 the fallback leaves sigma = -1/sqrt(n).  n = 9..19: only
    i = 0 .. n-8 can win.

    **Selection.**  i* = argmin_i D_i (first occurrence; NaN would win, as
    in ``np.argmin``).  Reported: alpha = alpha_{i*}, xmin = x_{i*},
    D = D_{i*}, sigma = sigma_{i*}, xmax = x_{n-1} (the largest kept value),
    num_pl_spikes = #(evals >= xmin) counted over the *unfiltered* input.

    **Failure.**  status is 'failed' when n = 0 or n = 1 (the peer raises
    IndexError / ValueError on the empty candidate list) or when alpha is
    NaN (possible only with >= 8 values of +inf in a small-n sample, when a
    +inf candidate has S = inf - inf = NaN).  Everything else is a
    'success', including these degenerate results of the peer:

    * all values tied, n >= 20: alpha = +inf, D = 0.5, sigma = +inf,
      xmin = the value (candidate n-2 wins, S = 0 exactly);
    * all values tied, 2 <= n < 20: alpha = 0, D = 1, sigma = -1/sqrt(n),
      xmin = the value;
    * 2 <= n < 8: the whole sample is the tail, alpha = 1 + (n-1)/S_0,
      sigma = -1/sqrt(n) (stale, not (alpha-1)/sqrt(n));
    * +inf in the data (n >= 20): every S_i is inf, alpha = 1, D = 1,
      sigma = 0; (n < 20, fewer than 8 infs) alpha = 1, D = (n-1)/n, sigma = 0.

    **WW's raw failed values** (``ww_raw_failure=True``): alpha = D = sigma
    = xmin = num_pl_spikes = -1 and xmax = None, status 'failed' (and the
    peer then labels the layer 'over-trained', since -1 < 2).  hts instead
    reports alpha = xmin = xmax = D = sigma = NaN and num_pl_spikes = 0.

    The peer also prints ``SMALL N PL FIT`` to stdout for every small-n fit;
    this function prints nothing.
    """
    evals = np.asarray(evals, dtype=np.float64).ravel()
    x = np.sort(evals[evals > evals_thresh])
    n = len(x)
    if n < 2:
        return _failed(ww_raw_failure)

    with np.errstate(all="ignore"):
        logx = np.log(x)
        if n >= SMALL_N_CUTOFF:
            alphas, ds = _candidates_standard(x, logx)
            sigmas = (alphas - 1.0) / np.sqrt(n - np.arange(n - 1))
        else:
            alphas, ds, sigmas = _candidates_small_n(x, logx)

    best = int(np.argmin(ds))
    alpha = float(alphas[best])
    if math.isnan(alpha):
        return _failed(ww_raw_failure)
    xmin = float(x[best])
    return dict(
        alpha=alpha,
        xmin=xmin,
        xmax=float(x[-1]),
        D=float(ds[best]),
        sigma=float(sigmas[best]),
        num_pl_spikes=int(np.count_nonzero(evals >= xmin)),
        status="success",
    )


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

def _hard_rank(svals, N):
    r"""#(s_i > max(s) * N * eps), eps = machine epsilon of the array's dtype."""
    eps = np.finfo(svals.dtype).eps
    tol = np.max(svals) * N * eps
    return int(np.count_nonzero(svals > tol))


def ww_metrics(evals, N, alpha, tolerance=WEAK_RANK_LOSS_TOLERANCE,
               entropy_epsilon=ENTROPY_EPSILON):
    r"""WeightWatcher 0.7.7's per-layer norm metrics on a pooled eigenvalue array.

    Parameters
    ----------
    evals : array_like
        All eigenvalues of the layer (sigma_i^2 over all slices, zeros
        included, conv layers already scaled); sorted ascending here, as the
        peer always holds them sorted (this fixes the summation order).
    N : int
        The layer's ``N`` column (max(shape) of a dense matrix; for Conv2D the
        per-slice N, with the peer's swap bug).  Used only by the rank
        tolerance of ``matrix_rank`` and ``entropy``.
    alpha : float
        The layer's fitted alpha (NaN for a failed fit in hts; -1 in the peer).
    tolerance : float, optional
        weak_rank_loss threshold (1e-6; the peer also uses 1e-6 when given 0).
    entropy_epsilon : float, optional
        1e-10 (the peer's CPU value; 6e-5 when torch finds CUDA).

    Returns
    -------
    dict
        With lam = evals, s = sqrt(lam) and log = log10:

        * ``norm`` = sum(lam)
        * ``log_norm`` = log10(sum(lam))
        * ``spectral_norm`` = ``lambda_max`` = max(lam)
        * ``log_spectral_norm`` = log10(max(lam))
        * ``alpha_weighted`` = alpha * log10(max(lam))
        * ``log_alpha_norm`` = log10(sum_i lam_i^alpha) over ALL eigenvalues
          (a zero eigenvalue with alpha < 0 gives inf)
        * ``stable_rank`` = sum(lam) / max(lam)
        * ``matrix_rank`` = #(s_i > max(s) * N * eps_float64)
        * ``entropy`` = -sum_i p_i ln p_i / ln(r + e), with
          p_i = (s_i * s_i)/sum(s * s) + e, r = matrix_rank, e = 1e-10.
          Natural logs.  r = 1 gives a huge value (ln(1 + 1e-10) ~ 1e-10 in
          the denominator), r = 0 (all zero) gives NaN.  The peer squares
          sqrt(lam) again, so p uses (sqrt(lam))^2, not lam.
        * ``weak_rank_loss`` = #(lam < tolerance)

    Raises
    ------
    ValueError
        For an empty array (the peer never gets there: it skips layers with
        fewer than 8 eigenvalues and its np.max would raise).
    """
    lam = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    if lam.size == 0:
        raise ValueError("ww_metrics needs at least one eigenvalue")
    if tolerance is None or tolerance == 0:
        tolerance = WEAK_RANK_LOSS_TOLERANCE
    alpha = np.float64(alpha)

    with np.errstate(all="ignore"):
        norm = np.sum(lam)
        lam_max = np.max(lam)
        log_spectral_norm = np.log10(lam_max)

        # lam_i ** alpha one scalar at a time, as the peer does.
        powers = np.array([v ** alpha for v in lam], dtype=np.float64)
        log_alpha_norm = np.log10(np.sum(powers))

        svals = np.sqrt(lam)
        rank = _hard_rank(svals, N)

        sq = svals * svals
        p = sq / np.sum(sq) + entropy_epsilon
        entropy = -np.sum(p * np.log(p)) / np.log(rank + entropy_epsilon)

        return dict(
            norm=float(norm),
            log_norm=float(np.log10(norm)),
            spectral_norm=float(lam_max),
            log_spectral_norm=float(log_spectral_norm),
            lambda_max=float(lam_max),
            stable_rank=float(norm / lam_max),
            matrix_rank=rank,
            entropy=float(entropy),
            log_alpha_norm=float(log_alpha_norm),
            alpha_weighted=float(alpha * log_spectral_norm),
            weak_rank_loss=int(np.count_nonzero(lam < tolerance)),
        )


def ww_rank_loss(svals_per_slice, N):
    r"""WeightWatcher 0.7.7's ``rank_loss`` column.

    Parameters
    ----------
    svals_per_slice : sequence of array_like
        The singular values of each slice (one array for a dense layer, kh*kw
        arrays for a pooled Conv2D layer).  A single 1-D array is treated as
        one slice.
    N : int
        The layer's ``N`` column.

    Returns
    -------
    int
        sum over slices of ( len(s) - #(s_j > max(s) * N * eps) ), where the
        maximum is taken per slice and eps is the machine epsilon of the
        array's dtype (float64: 2.22e-16).  Unlike ``matrix_rank`` in
        ``ww_metrics``, the tolerance is per slice, not over the pooled array.
    """
    if isinstance(svals_per_slice, np.ndarray) and svals_per_slice.ndim == 1:
        svals_per_slice = [svals_per_slice]
    total = 0
    for s in svals_per_slice:
        s = np.asarray(s)
        if not np.issubdtype(s.dtype, np.floating):
            s = s.astype(np.float64)
        s = s.ravel()
        total += len(s) - _hard_rank(s, N)
    return total
