"""Spectra of weight matrices: eigenvalues, the power-law fit and the norms built from them.

Thin, typed wrappers over the native kernel ``hts._core``. Every function validates its input, converts it
at most once, releases the GIL for the numerical work, and raises ``TypeError``/``ValueError`` with the layer
name for bad input. All functions are safe to call from many threads at once.

Conventions (those of WeightWatcher 0.7.7 unless a docstring says otherwise): for a matrix W of shape N×M
with N >= M the eigenvalues are those of X = WᵀW, i.e. λ_i = σ_i(W)², M of them, ascending; logarithms are
base 10 unless stated.

The implementation is split by concern; this module is the public facade:

- ``eigen``: ``eigenvalues``, ``frobenius_norm``, ``kernel_info``;
- ``powerlaw``: ``PowerLawFit``, ``fit_power_law``;
- ``norms``: ``SpectrumMetrics``, ``spectrum_metrics``, ``log_alpha_norm``;
- ``conv``: ``conv_operator_eigenvalues``;
- ``shuffles``: ``shuffle_elements``, ``randomized_eigenvalues``, ``randomized_eigenvalue_batch``;
- ``mp``: ``MarchenkoPasturFit``, ``marchenko_pastur_fit``, ``jensen_shannon_distance``, ``randomization_metrics``.
"""

from __future__ import annotations

from ._inputs import BatchItemError
from .conv import conv_operator_eigenvalues
from .eigen import eigenvalues, frobenius_norm, kernel_info
from .mp import MarchenkoPasturFit, jensen_shannon_distance, marchenko_pastur_fit, randomization_metrics
from .norms import SpectrumMetrics, log_alpha_norm, spectrum_metrics
from .powerlaw import PowerLawFit, fit_power_law
from .shuffles import randomized_eigenvalue_batch, randomized_eigenvalues, shuffle_elements

__all__ = [
    "MarchenkoPasturFit",
    "PowerLawFit",
    "SpectrumMetrics",
    "conv_operator_eigenvalues",
    "eigenvalues",
    "fit_power_law",
    "frobenius_norm",
    "jensen_shannon_distance",
    "kernel_info",
    "log_alpha_norm",
    "marchenko_pastur_fit",
    "randomization_metrics",
    "randomized_eigenvalue_batch",
    "randomized_eigenvalues",
    "shuffle_elements",
    "spectrum_metrics",
]
