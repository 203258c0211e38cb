"""How a weight tensor becomes the matrices whose spectra are taken (shapes first, data later).

A layer's *plan* is decided from its type and shape alone, so that size limits are checked before any data is
read; ``stack`` then turns the loaded array into what the eigenvalue kernel takes (views, no copies, where
the layout allows).

Conv2D (kernel kh×kw, torch layout (out, in, kh, kw)), by ``conv_method``:

- ``"slices"`` (WeightWatcher's): the kh·kw matrices W[:, :, i, j], each out×in. Pooled (default), their
  eigenvalues form one ESD scaled by 1/2; unpooled, each slice is its own row scaled by kh·kw/2 (WeightWatcher
  multiplies W by sqrt(count/2) with count 1 pooled, kh·kw unpooled).
- ``"stacked"``: one (kh·kw·out)×in matrix, the slices stacked vertically; not scaled.
- ``"fft"``: the exact singular values of the convolution operator on an n1×n2 periodic input (default the
  kernel size): min(in, out) squared singular values for each of the n1·n2 spatial frequencies; not scaled.

torch ``Conv1d`` (out, in, k) is treated like a conv with k slices out×in (WeightWatcher hands the 3-D
tensor to a batched SVD and keeps a meaningless top-k; see docs/differences-from-weightwatcher.md); it is not
scaled. With ``normalize=True`` every eigenvalue is further divided by N (X = WᵀW / N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .adapters.base import WeightTensor

CONV_METHODS = ("slices", "stacked", "fft")


@dataclass(frozen=True)
class LayerPlan:
    """What will be computed for one weight tensor.

    N, M : the larger and smaller side of each matrix; rf : matrices per layer (kh·kw slices, n1·n2
    frequencies, 1 otherwise); scale : factor applied to every eigenvalue (WeightWatcher's conv scaling);
    method : "matrix" | "slices" | "stacked" | "fft"; normalizer : the eigenvalues reported are further
    divided by this (N with ``normalize=True``, else 1) — the power-law fit is made before that division;
    groups : the convolution's groups for ``method == "fft"`` (the operator is block diagonal over them).
    """

    N: int
    M: int
    rf: int
    scale: float
    method: str
    fft_size: tuple = ()
    normalizer: float = 1.0
    groups: int = 1

    @property
    def num_evals(self) -> int:
        return self.M * self.rf


def plan_layer(
    t: WeightTensor, *, pool: bool, conv_method: str, conv_input_size: tuple | None, normalize: bool
) -> LayerPlan:
    """The plan for an analysable tensor (``t.skip_reason`` empty); ValueError for an impossible request."""
    shape = t.shape
    if t.layer_type == "conv2d":
        if t.orientation == "kh_kw_in_out":
            kh, kw, cin, cout = shape
        else:
            cout, cin, kh, kw = shape
        if conv_method == "slices":
            N, M, rf = max(cout, cin), min(cout, cin), kh * kw
            scale = 0.5 if pool else rf / 2.0
            plan = LayerPlan(N, M, rf, scale, "slices")
        elif conv_method == "stacked":
            rows = kh * kw * cout
            plan = LayerPlan(max(rows, cin), min(rows, cin), 1, 1.0, "stacked")
        else:
            n1, n2 = conv_input_size if conv_input_size is not None else (kh, kw)
            if n1 < kh or n2 < kw:
                raise ValueError(
                    f"layer {t.longname!r}: conv_input_size {(n1, n2)} is smaller than the kernel {(kh, kw)}"
                )
            groups = t.groups or 1
            if cout % groups:
                raise ValueError(f"layer {t.longname!r}: {cout} output channels do not split into groups={groups}")
            # per frequency the operator is an out × (in·groups) block-diagonal matrix
            total_in = cin * groups
            plan = LayerPlan(max(cout, total_in), min(cout, total_in), n1 * n2, 1.0, "fft", (n1, n2),
                             groups=groups)
    elif t.layer_type == "conv1d" and len(shape) == 3:
        cout, cin, k = shape
        plan = LayerPlan(max(cout, cin), min(cout, cin), k, 1.0, "slices")
    else:
        plan = LayerPlan(max(shape), min(shape), 1, 1.0, "matrix")
    if normalize:
        plan = LayerPlan(plan.N, plan.M, plan.rf, plan.scale, plan.method, plan.fft_size, float(plan.N),
                         plan.groups)
    return plan


def skip_reason(plan: LayerPlan, *, pool: bool, min_evals: int, max_evals: int, max_N: int) -> str:
    """WeightWatcher's size gates: pooled M·rf (per slice: M) within [min_evals, max_evals], N <= max_N."""
    count = plan.num_evals if pool else plan.M
    what = "M·rf" if pool and plan.rf > 1 else "M"
    if count < min_evals:
        return f"too few eigenvalues: {what} = {count} < min_evals = {min_evals}"
    if count > max_evals:
        return f"too many eigenvalues: {what} = {count} > max_evals = {max_evals}"
    if plan.N > max_N:
        return f"N = {plan.N} > max_N = {max_N}"
    return ""


def stack(t: WeightTensor, plan: LayerPlan, w: np.ndarray) -> np.ndarray:
    """The array the eigenvalue kernel takes: a 2-D matrix or a (k, n, m) stack (a view when possible).

    For ``method == "fft"`` it is the kernel in (out, in, kh, kw) layout for the convolution-operator kernel.
    """
    if tuple(w.shape) != tuple(t.shape):
        raise ValueError(f"layer {t.longname!r}: loaded shape {tuple(w.shape)} differs from {t.shape}")
    if plan.method == "matrix":
        return w
    if t.layer_type == "conv1d":  # (out, in, k) -> k slices (out, in)
        return np.moveaxis(w, 2, 0)
    oihw = w if t.orientation != "kh_kw_in_out" else w.transpose(3, 2, 0, 1)
    cout, cin, kh, kw = oihw.shape
    if plan.method == "fft":
        return oihw
    slices = oihw.transpose(2, 3, 0, 1).reshape(kh * kw, cout, cin)  # slice order (i, j), i major
    if plan.method == "stacked":
        return slices.reshape(kh * kw * cout, cin)
    return slices
