"""``hts.distances(a, b)`` (this module is ``hts.weight_distances``, so that ``hts.distances`` stays the function): how far two models of the same architecture are apart, layer by layer.

Tensors are matched by name (``hts.diff.match_tensors``: keys, then module paths; an in × out weight is
transposed to the other's out × in, column ``layout``); pairs of different shapes and unmatched tensors are
listed with a reason. Per matched layer (W₁ from ``a``, W₂ from ``b``, float64, the slices of a Conv2D kernel
being its kh·kw (out × in) matrices as ``hts.analyze`` cuts them):

- ``raw``       ‖W₁ − W₂‖_F over the whole tensor (WeightWatcher's method='raw');
- ``euclidean`` the mean over slices s of ‖W₁ₛ − W₂ₛ‖_F (WeightWatcher's method='euclidean'; = raw for a matrix);
- ``cka``       ‖W₁ᵀW₂‖_F / √(‖W₁ᵀW₁‖_F · ‖W₂W₂ᵀ‖_F), uncentred, per slice and averaged (WeightWatcher's method='cka');
  the numerator depends on the axis order: a matrix is taken as stored (out × in), a kernel's slices
  transposed to stand tall (rows ≥ columns), as WeightWatcher takes them;
- ``esd_ks``    the Kolmogorov–Smirnov statistic sup_x |F₁(x) − F₂(x)| between the two empirical spectral
  densities (eigenvalues of WᵀW, slices pooled), and
- ``esd_wasserstein`` the Wasserstein-1 distance ∫ |F₁(x) − F₂(x)| dx between the distributions of log10 λ,
  both over the eigenvalues above 1e-5 (those the power-law fit uses; on log10 λ so that a distance does
  not scale with the norm of the weights and is not dominated by λ_max).

A PEFT LoRA adapter against its base stands for the merged model: each target's W + s·B·A (``hts.diff.
merged_adapter``) is compared with W, so ``raw`` is ‖s·B·A‖_F.

The model distance for a method is the plain mean of the per-layer values (WeightWatcher's avg_delta_W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import spectra
from .inventory import open_model

__all__ = ["METHODS", "Distances", "distances", "esd_distances", "matrix_distance"]

METHODS = ("raw", "euclidean", "cka")

#: Eigenvalues at or below this are left out of the ESD distances (WeightWatcher's fit threshold).
EVALS_THRESH = 1e-5


def _slices(w: np.ndarray) -> np.ndarray:
    """(k, out, in) matrices of a tensor: a 2-D matrix as one slice, (out, in, kh, kw) as kh·kw slices,
    (out, in, k) as k slices."""
    if w.ndim == 2:
        return w[None]
    if w.ndim == 3:
        return np.moveaxis(w, 2, 0)
    if w.ndim == 4:
        cout, cin, kh, kw = w.shape
        return w.transpose(2, 3, 0, 1).reshape(kh * kw, cout, cin)
    raise ValueError(f"a {w.ndim}-D tensor has no matrix slices")


def _gram_norm(w: np.ndarray) -> float:
    """‖WᵀW‖_F = ‖WWᵀ‖_F (both are √Σσ⁴), from the smaller of the two Gram matrices."""
    return float(np.linalg.norm(w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T))


def _cka(w1: np.ndarray, w2: np.ndarray) -> float:
    """‖W₁ᵀW₂‖_F / √(‖W₁ᵀW₁‖_F · ‖W₂W₂ᵀ‖_F) without forming a product larger than min(n, m)²: for a wide
    n × m pair (n < m), ‖W₁ᵀW₂‖_F² = tr(W₁W₁ᵀ·W₂W₂ᵀ) = Σᵢⱼ (W₁W₁ᵀ)ᵢⱼ(W₂W₂ᵀ)ᵢⱼ from n × n Grams (a 30522 × 384
    embedding never builds a 30522² matrix)."""
    if w1.shape[0] >= w1.shape[1]:
        num = float(np.linalg.norm(w1.T @ w2))
    else:
        num = float(np.sqrt(max(np.sum((w1 @ w1.T) * (w2 @ w2.T)), 0.0)))
    den = np.sqrt(_gram_norm(w1) * _gram_norm(w2))
    return float(num / den) if den > 0 else float("nan")


def matrix_distance(w1: Any, w2: Any, method: str = "raw") -> float:
    """The distance ``method`` (raw, euclidean, cka; see the module docstring) between two same-shaped tensors."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    if w1.shape != w2.shape:
        raise ValueError(f"shapes differ: {w1.shape} vs {w2.shape}")
    if method == "raw":
        return float(np.linalg.norm((w1 - w2).ravel()))
    s1, s2 = _slices(w1), _slices(w2)
    if method == "euclidean":
        return float(np.mean([np.linalg.norm(a - b) for a, b in zip(s1, s2)]))
    if w1.ndim > 2:  # kernel slices stand tall (rows >= columns), as WeightWatcher cuts them
        s1, s2 = (np.swapaxes(s, 1, 2) if s.shape[1] < s.shape[2] else s for s in (s1, s2))
    return float(np.mean([_cka(a, b) for a, b in zip(s1, s2)]))


def _ecdf_gap(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(sup |F_x − F_y|, ∫ |F_x − F_y| dt) of two samples' empirical CDFs."""
    grid = np.sort(np.concatenate([x, y]))
    fx = np.searchsorted(np.sort(x), grid, side="right") / x.size
    fy = np.searchsorted(np.sort(y), grid, side="right") / y.size
    gap = np.abs(fx - fy)
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(grid)))


def esd_distances(evals1: np.ndarray, evals2: np.ndarray) -> dict:
    """``esd_ks`` and ``esd_wasserstein`` between two ESDs (see the module docstring); NaN when either has no
    eigenvalue above ``EVALS_THRESH``."""
    a = np.asarray(evals1, dtype=np.float64).ravel()
    b = np.asarray(evals2, dtype=np.float64).ravel()
    a, b = a[a > EVALS_THRESH], b[b > EVALS_THRESH]
    if a.size == 0 or b.size == 0:
        return {"esd_ks": float("nan"), "esd_wasserstein": float("nan")}
    ks, _ = _ecdf_gap(a, b)
    _, w1 = _ecdf_gap(np.log10(a), np.log10(b))
    return {"esd_ks": ks, "esd_wasserstein": w1}


@dataclass
class Distances:
    """The result of ``hts.distances``: one row per tensor (matched pairs with the distances, the others with
    ``status`` "skipped" and a ``reason``) and the model averages over the matched layers."""

    rows: list

    @property
    def summary(self) -> dict:
        """Mean of each distance over the layers where it is finite (WeightWatcher's avg_delta_W)."""
        ok = [r for r in self.rows if r["status"] == "success"]
        out = {}
        for k in (*METHODS, "esd_ks", "esd_wasserstein"):
            values = [r[k] for r in ok if np.isfinite(r.get(k, np.nan))]
            out[k] = float(np.mean(values)) if values else float("nan")
        return out

    @property
    def details(self):
        from ._frames import table

        return table(self.rows)

    def to_dict(self) -> dict:
        from ._json import jsonable

        return jsonable({"summary": self.summary, "layers": self.rows})


def distances(a: Any, b: Any, *, layers=None, esd: bool = True, threads: int | None = None) -> Distances:
    """Per-layer distances between models ``a`` and ``b`` (anything ``hts.analyze`` takes; see the module
    docstring). ``layers`` filters as in ``hts.analyze`` (applied to ``a``); ``esd=False`` leaves out the
    eigenvalue-based distances (the costly part)."""
    from .diff import is_adapter, layout, match_tensors, merged_adapter
    from .selection import layer_entries, select

    inv_a, inv_b = open_model(a), open_model(b)
    if is_adapter(inv_b) and not is_adapter(inv_a):  # base vs adapter: the base vs the merged W + s·B·A
        inv_b = merged_adapter(inv_b, inv_a)
    elif is_adapter(inv_a) and not is_adapter(inv_b):
        inv_a = merged_adapter(inv_a, inv_b)
    ta = inv_a.tensors
    if layers is not None:
        ta = select(ta, layer_entries(layers))
    tb = {t.key: t for t in inv_b.tensors}
    matches = match_tensors(ta, list(tb.values()))
    rows = []
    for t in ta:
        row = {"layer_id": t.layer_id, "name": t.name, "longname": t.longname, "key": t.key,
               "layer_type": t.layer_type, "shape": "x".join(map(str, t.shape)), "base_key": matches.get(t.key, "")}
        other = tb.get(matches.get(t.key, ""))
        how = layout(t, other) if other is not None else None
        reason = t.skip_reason
        if not reason and other is None:
            reason = "no tensor of this name in the second model"
        elif not reason and how is None:
            reason = f"shape differs from the second model's {other.key} {'x'.join(map(str, other.shape))}"
        elif not reason and len(t.shape) not in (2, 3, 4):
            reason = f"{len(t.shape)}-D tensor is not a weight matrix"
        if reason:
            rows.append({**row, **dict.fromkeys((*METHODS, "esd_ks", "esd_wasserstein"), float("nan")),
                         "status": "skipped", "reason": reason})
            continue
        try:
            w1 = np.asarray(t.load(), dtype=np.float64)
            w2 = np.asarray(other.load(), dtype=np.float64)
            if t.orientation == "kh_kw_in_out":
                w1, w2 = w1.transpose(3, 2, 0, 1), w2.transpose(3, 2, 0, 1)
            if how == "either":  # a square matrix whose axis order one side does not say: as hts.diff does
                how = "transposed" if np.linalg.norm(w1.T - w2) < np.linalg.norm(w1 - w2) else "same"
            if how == "transposed":  # in × out (ONNX MatMul) against out × in
                w1 = w1.T
            row["layout"] = how
            row.update({m: matrix_distance(w1, w2, m) for m in METHODS})
            if esd:
                e1 = spectra.eigenvalues(_slices(w1), threads=threads, name=t.longname)
                e2 = spectra.eigenvalues(_slices(w2), threads=threads, name=other.longname)
                row.update(esd_distances(e1, e2))
            else:
                row.update(esd_ks=float("nan"), esd_wasserstein=float("nan"))
            row.update(status="success", reason="")
        except (ValueError, TypeError, RuntimeError, OSError) as err:
            row.update({**dict.fromkeys((*METHODS, "esd_ks", "esd_wasserstein"), float("nan")),
                        "status": "failed", "reason": str(err)[:300]})
        rows.append(row)
    return Distances(rows)
