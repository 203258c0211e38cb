"""WeightWatcher 0.7.7's ``vectors=True`` columns: how localised the eigenvectors of X are, bulk vs tail.

For each matrix W (each slice of a conv layer) the eigenvectors v (unit norm) of the smaller Gram matrix
X = W Wᵀ or WᵀW are scored:

- vec_entropy: with a = |v| − mean|v|, h = the 100-bin density histogram of a, p = (h + 1e-10)/√(2π)
  normalised to sum 1: −Σ p ln p (WeightWatcher's ``discrete_entropy``);
- loc_ratio = ‖v‖₁ / ‖v‖_∞ (localisation ratio);
- part_ratio = ‖v‖₂ / ‖v‖₄ (participation ratio).

The eigenvectors of all slices are pooled and split at the row's xmin: the tail is the eigenvectors of the
num_pl_spikes largest eigenvalues (those >= xmin on the analysis's scale), the bulk the others. For conv layers
WeightWatcher's split is neither this nor the unscaled eigenvalues against the scaled xmin, and its conv numbers
are not reproduced (docs/differences-from-weightwatcher.md, row 32). Columns ``{bulk,tail}_{mean,var}_{vec_entropy,loc_ratio,part_ratio}``:
the mean and population variance over each group (NaN for an empty group).

WeightWatcher diagonalises X with a general (non-symmetric) eigensolver; hts uses the symmetric one (LAPACK
syevd through numpy), which gives the same eigenvectors up to sign for distinct eigenvalues, and every metric
here is sign-invariant. The bulk/tail split counts eigenvalues against xmin from the analysis's own
eigenvalues, so a value equal to xmin is never split differently by rounding.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["vector_columns", "vector_metrics"]

_NAMES = ("vec_entropy", "loc_ratio", "part_ratio")


def vector_metrics(V: np.ndarray) -> np.ndarray:
    """(3, k) array: vec_entropy, loc_ratio, part_ratio of each column of V (see the module docstring)."""
    V = np.asarray(V, dtype=np.float64)
    a = np.abs(V)
    loc = a.sum(axis=0) / a.max(axis=0)
    part = np.sqrt((a ** 2).sum(axis=0)) / ((a ** 4).sum(axis=0)) ** 0.25
    ent = np.empty(V.shape[1])
    for j in range(V.shape[1]):
        col = a[:, j] - np.mean(a[:, j])
        h = np.histogram(col, density=True, bins=100)[0]
        p = (h + 1e-10) / math.sqrt(2 * math.pi)
        p = p / np.sum(p)
        ent[j] = -np.sum(p * np.log(p))
    return np.vstack([ent, loc, part])


def vector_columns(slices: np.ndarray, raw_evals: np.ndarray, xmin: float) -> dict:
    """The 12 ``vectors=True`` columns of a row.

    ``slices``: the row's matrices, (N, M) or (k, N, M); ``raw_evals``: the analysis's eigenvalues of those
    matrices on the same scale as ``xmin`` (any order); ``xmin``: the row's xmin (NaN: everything is bulk).
    """
    stack = np.asarray(slices, dtype=np.float64)
    stack = stack[None] if stack.ndim == 2 else stack
    metrics, values = [], []
    for W in stack:
        X = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        w, V = np.linalg.eigh(X)
        metrics.append(vector_metrics(V))
        values.append(w)
    allm = np.concatenate(metrics, axis=1)
    order = np.argsort(np.concatenate(values), kind="stable")  # eigenvector j ↔ its eigenvalue's rank
    n_tail = int(np.count_nonzero(np.asarray(raw_evals) >= xmin)) if xmin == xmin else 0
    tail_ids = order[order.size - n_tail:] if n_tail else order[:0]
    bulk_ids = order[: order.size - n_tail]
    out = {}
    for group, ids in (("bulk", bulk_ids), ("tail", tail_ids)):
        for k, name in enumerate(_NAMES):
            data = allm[k, ids]
            out[f"{group}_mean_{name}"] = float(np.mean(data)) if data.size else float("nan")
            out[f"{group}_var_{name}"] = float(np.var(data)) if data.size else float("nan")
    return out
