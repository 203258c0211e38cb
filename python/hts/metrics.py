"""One row of the details table from a layer's eigenvalues and fit (WeightWatcher's columns and meanings).

Every metric is defined in ``spectra.SpectrumMetrics``/``spectra.PowerLawFit``; this module only assembles
them per layer. Logs are base 10.
"""

from __future__ import annotations

import math

import numpy as np

from . import spectra
from .adapters.base import WeightTensor
from .fitting import LayerFit
from .matrices import LayerPlan

#: alpha below this is labelled "over-trained", above UNDER_TRAINED "under-trained" (WeightWatcher's bands).
OVER_TRAINED = 2.0
UNDER_TRAINED = 6.0

#: Columns every row has, in table order (WeightWatcher's names first, then hts's additions).
COLUMNS = (
    "layer_id", "name", "longname", "layer_type", "N", "M", "Q", "rf", "num_evals",
    "alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "alpha_weighted", "log_alpha_norm",
    "norm", "log_norm", "spectral_norm", "log_spectral_norm", "lambda_max", "stable_rank", "matrix_rank",
    "rank_loss", "weak_rank_loss", "entropy", "sv_max", "sv_min", "has_esd", "status", "warning",
    "reason", "key", "shape", "dtype", "conv_method", "num_fit", "time",
)

#: One NaN object for the rows made on demand, so that two makings of the same row compare equal (NaN != NaN, but
#: a dict compares identical values as equal).
_NAN = float("nan")

_EMPTY_METRICS = dict.fromkeys(
    ("Q", "alpha", "xmin", "xmax", "D", "sigma", "alpha_weighted", "log_alpha_norm", "norm", "log_norm",
     "spectral_norm", "log_spectral_norm", "lambda_max", "stable_rank", "entropy", "sv_max", "sv_min"),
    _NAN,
)


def label(alpha: float) -> str:
    """WeightWatcher's warning: "over-trained" if alpha < 2, "under-trained" if alpha > 6, else "" (NaN: "")."""
    if math.isnan(alpha):
        return ""
    if alpha < OVER_TRAINED:
        return "over-trained"
    if alpha > UNDER_TRAINED:
        return "under-trained"
    return ""


def identity(t: WeightTensor) -> dict:
    """The columns that describe the tensor itself (``quant`` only for tensors of a format that quantises:
    GGUF's ggml type, e.g. "Q4_K")."""
    row = {
        "layer_id": t.layer_id,
        "name": t.name,
        "longname": t.longname,
        "layer_type": t.layer_type,
        "key": t.key,
        "shape": "x".join(str(s) for s in t.shape),
        "dtype": t.dtype,
    }
    if t.quant:
        row["quant"] = t.quant
    return row


def skipped_row(t: WeightTensor, reason: str, plan: LayerPlan | None = None) -> dict:
    """A row for a tensor that is listed but not analysed: every metric, count included, is NaN."""
    nan = _NAN
    row = {**identity(t), **_EMPTY_METRICS}
    if plan is not None and plan.M > 0:  # an empty tensor (a zero dimension) has no aspect ratio
        row["Q"] = plan.N / plan.M
    row.update(
        N=plan.N if plan else (max(t.shape) if t.shape else 0),
        M=plan.M if plan else (min(t.shape) if t.shape else 0),
        rf=plan.rf if plan else 1,
        num_evals=plan.num_evals if plan else 0,
        # nothing was computed: counts are NaN, not 0 (a 0 would read as "rank 0" / "no spikes")
        num_pl_spikes=nan, matrix_rank=nan, rank_loss=nan, weak_rank_loss=nan, num_fit=0,
        has_esd=False, status="skipped", warning="", reason=reason,
        conv_method=plan.method if plan else "", time=0.0,
    )
    return row


def rank_loss(per_slice: np.ndarray, N: int) -> int:
    """Σ over slices of (#σ − #{σ > σ_max(slice)·N·ε₆₄}), σ = √λ: WeightWatcher's per-slice rank loss."""
    sv = np.sqrt(np.atleast_2d(per_slice))
    tol = sv.max(axis=1, keepdims=True) * N * np.finfo(np.float64).eps
    return int(sv.size - np.count_nonzero(sv > tol))


def layer_row(
    t: WeightTensor, plan: LayerPlan, per_slice: np.ndarray, pooled: np.ndarray, lf: LayerFit, *, elapsed: float,
    tolerance: float = 1e-6,
) -> dict:
    """The details row of an analysed layer (or slice).

    ``per_slice`` holds the scaled eigenvalues of each matrix (k, M) that make up this row; ``pooled`` the
    same values concatenated and sorted (the ESD that was fitted); ``tolerance`` the weak_rank_loss threshold.
    """
    fit = lf.fit
    m = spectra.spectrum_metrics(pooled, N=plan.N, alpha=fit.alpha, tolerance=tolerance)
    row = identity(t)
    row.update(
        N=plan.N,
        M=plan.M,
        Q=plan.N / plan.M,
        rf=per_slice.shape[0] if per_slice.ndim == 2 else 1,
        num_evals=int(pooled.size),
        alpha=fit.alpha,
        xmin=fit.xmin,
        xmax=fit.xmax,
        D=fit.D,
        sigma=fit.sigma,
        num_pl_spikes=fit.num_pl_spikes if fit.status == "success" else float("nan"),
        alpha_weighted=m.alpha_weighted,
        log_alpha_norm=m.log_alpha_norm,
        norm=m.norm,
        log_norm=m.log_norm,
        spectral_norm=m.lambda_max,
        log_spectral_norm=m.log_spectral_norm,
        lambda_max=m.lambda_max,
        stable_rank=m.stable_rank,
        matrix_rank=m.matrix_rank,
        rank_loss=rank_loss(per_slice, plan.N),
        weak_rank_loss=m.weak_rank_loss,
        entropy=m.entropy,
        sv_max=m.sv_max,
        sv_min=m.sv_min,
        has_esd=True,
        status=fit.status,
        warning=label(fit.alpha),
        reason=fit.reason,
        conv_method=plan.method,
        num_fit=fit.num_fit,
        time=elapsed,
    )
    return row
