"""WeightWatcher's ``intra=True``: the spectra of products of consecutive layers.

For each pair of consecutive analysable layers (after the ``layers`` filter and the size gates, in model order),
with W0, W1 their first matrices (a Conv2D's first kh·kw slice, as WeightWatcher takes it) turned so that they
share a dimension (W0: a × d, W1: d × b):

    X = W0 · S · W1 / (‖W0‖_F ‖W1‖_F + √‖S‖_F)     (sparsify=True: S a random d × d 0/1 mask, a ReLU surrogate)
    X = W0 · W1 / (‖W0‖_F ‖W1‖_F)                   (sparsify=False)

The row's "eigenvalues" are the singular values σ_i(X) themselves, not their squares (WeightWatcher's
convention for intra), times √½ when the second layer is a Conv2D (its conv2d_norm applied to X), and only the
largest M of them, M the second layer's smaller side (WeightWatcher keeps that layer's number of components);
the fit and every metric are then taken on them as on a layer's ESD. The mask comes from
``numpy.random.RandomState(seed).randint(2, size=d·d)``, drawn pair after pair: WeightWatcher draws the same
numbers after ``np.random.seed(seed)``. A pair whose matrices share no dimension is listed as skipped with the
reason (WeightWatcher drops it silently).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

__all__ = ["align", "cross_matrix", "first_matrix", "intra_rows"]


def first_matrix(t, w: np.ndarray) -> np.ndarray:
    """WeightWatcher's first matrix of a layer: the weight as stored (2-D), or a conv's first slice, turned tall
    (torch layout W[:, :, 0, 0]) or wide (Keras layout W[0, 0]) as WeightWatcher turns it."""
    if w.ndim == 2:
        return w
    if t.layer_type == "conv1d":
        return w[:, :, 0]
    if t.orientation == "kh_kw_in_out":
        m = w[0, 0]
        return m.T if m.shape[1] < m.shape[0] else m
    m = w[:, :, 0, 0]
    return m.T if m.shape[0] < m.shape[1] else m


def align(w0: np.ndarray, w1: np.ndarray):
    """(W0, W1) turned so that W0.shape[1] == W1.shape[0] on the largest dimension they share (WeightWatcher's
    align_mats), or None when they share none."""
    shapes = [w0.shape[0], w0.shape[1], w1.shape[0], w1.shape[1]]
    shared = [d for d in set(shapes) if shapes.count(d) > 1]
    if shared:
        d = max(shared)
        if w0.shape[1] != d:
            w0 = w0.T
        if w1.shape[0] != d:
            w1 = w1.T
    return (w0, w1) if w0.shape[1] == w1.shape[0] else None


def cross_matrix(w0: np.ndarray, w1: np.ndarray, *, sparsify: bool, rng: np.random.RandomState | None) -> np.ndarray:
    """X of the module docstring, in float64."""
    w0 = np.asarray(w0, dtype=np.float64)
    w1 = np.asarray(w1, dtype=np.float64)
    norm = np.linalg.norm(w0) * np.linalg.norm(w1)
    if not sparsify:
        return (w0 @ w1) / norm
    d = w1.shape[0]
    s = rng.randint(2, size=d * d).reshape(d, d)
    return (w0 @ s) @ w1 / (norm + np.sqrt(np.linalg.norm(s)))


def intra_rows(work: list, *, sparsify: bool, seed: int, row_of, step=None) -> tuple[list, dict]:
    """Rows and ESDs of the consecutive pairs of ``work`` ((index, tensor, plan) of the analysable layers).

    ``row_of(tensor, plan, evals)`` makes the analysis row of an ESD (the fit and the metrics of ``analyze``).
    ``step(done, longname)``, if given, is called after each layer of ``work`` (``done`` counts them); it may
    raise to stop (``analyze``'s cancel, time budget and progress callback).
    Returns ``(rows, esds)`` with rows as ``(index, row)``, index that of the pair's second layer.
    """
    rng = np.random.RandomState(seed % 2**32)
    rows, esds = [], {}
    prev = None
    for done, (i, t, plan) in enumerate(work, 1):
        prev = _intra_step(i, t, plan, prev, rows, esds, sparsify=sparsify, rng=rng, row_of=row_of)
        if step is not None:
            step(done, t.longname)
    return rows, esds


def _intra_step(i, t, plan, prev, rows: list, esds: dict, *, sparsify, rng, row_of):
    """One layer of ``intra_rows``: its pair row with the layer before, appended to ``rows`` (its ESD to
    ``esds``). Returns the new ``prev``: ``(t, w)``, or None after a layer that could not be loaded (the chain
    restarts)."""
    from .matrices import LayerPlan
    from .metrics import skipped_row

    try:
        w = first_matrix(t, np.asarray(t.load()))
    except (ValueError, TypeError, RuntimeError, OSError) as err:  # the chain restarts after it
        rows.append((i, dict(skipped_row(t, f"could not load weights: {err}", plan), status="failed")))
        return None
    if prev is None:
        return (t, w)
    t0, w0 = prev
    pair = dict(name=f"{t0.layer_id} X {t.layer_id}", longname=f"{t0.longname} X {t.longname}")
    aligned = align(w0, w)
    if aligned is None:
        reason = (f"intra: {t0.longname} {w0.shape[0]}x{w0.shape[1]} and {t.longname} {w.shape[0]}x{w.shape[1]} "
                  f"share no dimension")
        rows.append((i, dict(skipped_row(replace(t, **pair), reason), intra_of=t0.key)))
        return (t, w)
    x = cross_matrix(*aligned, sparsify=sparsify, rng=rng)
    sv = np.linalg.svd(x, compute_uv=False)
    evals = np.sort(sv * (np.sqrt(0.5) if t.layer_type == "conv2d" else 1.0))[-plan.M:]  # WeightWatcher's top M
    xt = replace(t, shape=tuple(x.shape), dtype="float64", **pair)
    xplan = LayerPlan(max(x.shape), min(x.shape), 1, 1.0, "matrix")
    row = row_of(xt, xplan, evals)
    row["intra_of"] = t0.key
    rows.append((i, row))
    factor = np.sqrt(0.5) if t.layer_type == "conv2d" else 1.0
    esds[(t.layer_id, xt.longname, None, "esd")] = evals
    esds[(t.layer_id, xt.longname, None, "scale")] = (factor, False)
    return (t, w)
