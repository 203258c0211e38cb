"""Norm-based metrics of a layer from its eigenvalues (Frobenius, spectral, alpha norms, ranks, entropy)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .._native import _core
from ._inputs import ArrayLike, _eigenvalue_vector


@dataclass(frozen=True)
class SpectrumMetrics:
    """Norm-based metrics of one layer's eigenvalues λ_i (log = log10).

    Attributes
    ----------
    num_evals : int
        Number of eigenvalues, zeros included.
    norm : float
        Σλ_i = ‖W‖_F² (squared Frobenius norm).
    log_norm : float
        log10 Σλ_i.
    lambda_max : float
        λ_max = ‖W‖₂² (WeightWatcher's ``spectral_norm``).
    log_spectral_norm : float
        log10 λ_max.
    stable_rank : float
        Σλ_i / λ_max.
    matrix_rank : int
        #{i : √λ_i > √λ_max · N · ε₆₄}, ε₆₄ = 2.2e-16, N = the larger dimension.
    rank_loss : int
        num_evals − matrix_rank (of this spectrum taken as one matrix).
    weak_rank_loss : int
        #{i : λ_i < tolerance}.
    entropy : float
        Normalised spectral entropy −Σ p_i ln p_i / ln(matrix_rank + ε), p_i = λ_i/Σλ + ε, ε = 1e-10.
    sv_max, sv_min : float
        √λ_max and √λ_min.
    log_alpha_norm : float
        log10 Σλ_i^alpha (NaN without alpha).
    alpha_weighted : float
        alpha · log10 λ_max (α̂; NaN without alpha).
    """

    num_evals: int
    norm: float
    log_norm: float
    lambda_max: float
    log_spectral_norm: float
    stable_rank: float
    matrix_rank: int
    rank_loss: int
    weak_rank_loss: int
    entropy: float
    sv_max: float
    sv_min: float
    log_alpha_norm: float
    alpha_weighted: float

    def to_dict(self) -> dict:
        """Plain values; NaN and ±inf become None so that strict JSON parsers accept them."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def spectrum_metrics(
    evals: ArrayLike, *, N: int, alpha: float = float("nan"), tolerance: float = 1e-6
) -> SpectrumMetrics:
    """Norm-based metrics of a layer from its eigenvalues (see ``SpectrumMetrics`` for every formula).

    Parameters
    ----------
    evals : array_like, 1-D
        Eigenvalues λ_i >= 0 of the layer (pooled over slices for a conv layer).
    N : int
        The larger dimension of the matrix, for the rank tolerance.
    alpha : float, optional
        The fitted power-law exponent, for ``log_alpha_norm`` and ``alpha_weighted``.
    tolerance : float
        Threshold of ``weak_rank_loss``.
    """
    arr = _eigenvalue_vector(evals, "spectrum_metrics")
    if arr.size == 0:
        raise ValueError("spectrum_metrics: no eigenvalues")
    st = _core.spectrum_stats(arr, N=float(N), tolerance=float(tolerance))
    alpha = float(alpha)
    lam_max = st["lambda_max"]
    return SpectrumMetrics(
        num_evals=st["count"],
        norm=st["sum"],
        log_norm=_log10(st["sum"]),
        lambda_max=lam_max,
        log_spectral_norm=_log10(lam_max),
        stable_rank=st["stable_rank"],
        matrix_rank=st["matrix_rank"],
        rank_loss=st["count"] - st["matrix_rank"],
        weak_rank_loss=st["weak_rank_loss"],
        entropy=st["entropy"],
        sv_max=math.sqrt(lam_max),
        sv_min=math.sqrt(st["lambda_min"]),
        log_alpha_norm=_core.log10_alpha_norm(arr, alpha),
        alpha_weighted=alpha * _log10(lam_max) if not math.isnan(alpha) else float("nan"),
    )


def log_alpha_norm(evals: ArrayLike, alpha: float) -> float:
    """log10 Σ_i λ_i^alpha, the log of the Schatten-alpha norm of X raised to alpha, without overflow.

    Computed as alpha·log10 λ_max + log10 Σ_i (λ_i/λ_max)^alpha. −inf when every λ_i is 0.
    """
    return _core.log10_alpha_norm(_eigenvalue_vector(evals, "log_alpha_norm"), float(alpha))
