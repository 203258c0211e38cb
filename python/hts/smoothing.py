"""WeightWatcher's ``SVDSmoothing`` and ``SVDSharpness``: low-rank edits of a model's weights, on a copy.

Both pick, for every analysable layer (the layers and size gates of ``hts.analyze``, pooled ESD), a number of
singular components k, then edit every matrix of the layer with its exact SVD W = Σ_i σ_i u_i v_iᵀ
(σ descending):

- keep the top k (k > 0):   W' = Σ_{i < k} σ_i u_i v_iᵀ            (the best rank-k approximation);
- remove the top |k| (k < 0): W' = Σ_{i >= |k|} σ_i u_i v_iᵀ.

A conv layer's kh·kw slices W[:, :, i, j] (a torch Conv1d's k slices) are edited one by one with
k_slice = ⌈k / rf⌉ (WeightWatcher's rule, also for negative k, so removing fewer than rf components from a
conv layer removes none). Biases are not touched.

``svd_smoothing`` (k > 0), by ``method``:

- ``"detX"`` (default): k = detX_num, the smallest top tail of the ESD whose mean-1-rescaled product is < 1
  (``hts.detx``);
- ``"svd"``: k = int(percent · M · rf) (truncated towards 0; a negative percent, as in WeightWatcher, removes
  the top |k| components instead);
- ``"rmt"``: k = num_spikes of the Marchenko–Pastur fit (``mp_fit=True``);
- ``"alpha_min"``: k = num_pl_spikes, the eigenvalues λ >= xmin of the power-law fit;
- ``"auto"``: "rmt" where the power-law alpha > 6, "detX" elsewhere.

``svd_sharpness`` (k < 0): k = −(number of spikes of the Marchenko–Pastur fit to the ESD of the layer with
every slice's entries randomly permuted), i.e. it removes the top components that a random permutation does
not destroy — WeightWatcher's "correlation traps".

Unlike WeightWatcher (which overwrites the model it is given, and takes the rank-k part from scikit-learn's
randomized ``TruncatedSVD``), these functions return an edited copy and use an exact SVD (LAPACK, float64);
see docs/differences-from-weightwatcher.md. ``smoothing_plan`` / ``sharpness_plan`` give the k of every layer
without editing anything.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np

__all__ = ["SMOOTHING_METHODS", "sharpness_plan", "smoothing_plan", "svd_sharpness", "svd_smoothing",
           "truncate_components"]

logger = logging.getLogger(__name__)

#: The ``method`` choices of ``svd_smoothing`` (WeightWatcher's names).
SMOOTHING_METHODS = ("detX", "svd", "rmt", "alpha_min", "auto")

#: ``method="auto"`` uses the MP spikes above this alpha, detX_num at or below it (WeightWatcher's rule).
AUTO_ALPHA = 6.0


def truncate_components(w: np.ndarray, k: int) -> np.ndarray:
    """The matrix ``w`` with its top-k singular components kept (k > 0) or removed (k < 0), in float64.

    With the SVD w = Σ_i σ_i u_i v_iᵀ (σ descending, r = min(w.shape) terms): k > 0 gives Σ_{i<k} σ_i u_i v_iᵀ
    (w itself when k >= r), k < 0 gives Σ_{i>=|k|} σ_i u_i v_iᵀ (zero when |k| >= r), k == 0 gives w.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    r = min(w.shape)
    if k == 0 or k >= r:
        return w.copy()
    if -k >= r:
        return np.zeros_like(w)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    part = slice(0, k) if k > 0 else slice(-k, r)
    return (u[:, part] * s[part]) @ vt[part]


def slice_count(k: int, rf: int) -> int:
    """Components per slice for a layer-level count k over rf slices: ⌈k / rf⌉ (WeightWatcher's rule)."""
    return int(math.ceil(k / rf)) if rf > 1 else int(k)


# ----------------------------------------------------------------------------------------------------------
# Which layers, and k for each
# ----------------------------------------------------------------------------------------------------------
def _targets(model: Any, layers, min_evals: int, max_evals: int, max_N: int, start_ids: int = 0) -> list:
    """(tensor, plan) of every layer ``hts.analyze`` would analyse (pooled, WeightWatcher's conv slices)."""
    from .inventory import open_model
    from .matrices import plan_layer, skip_reason
    from .selection import layer_entries, renumber, select

    entries = layer_entries(layers) if layers is not None else None
    out = []
    for t in select(renumber(open_model(model).tensors, start_ids), entries):
        if t.skip_reason or t.lora is not None:
            continue
        plan = plan_layer(t, pool=True, conv_method="slices", conv_input_size=None, normalize=False)
        if not skip_reason(plan, pool=True, min_evals=min_evals, max_evals=max_evals, max_N=max_N):
            out.append((t, plan))
    return out


def _plan_row(t, plan, k: int, reason: str = "", **extra) -> dict:
    k_slice = slice_count(int(k), plan.rf)
    if not reason and k_slice >= plan.M:  # keeping every component of each matrix changes nothing
        reason = f"k = {k} keeps all {plan.M} components of each matrix (unchanged)"
    return dict(layer_id=t.layer_id, longname=t.longname, key=t.key, layer_type=t.layer_type, N=plan.N, M=plan.M,
                rf=plan.rf, k=int(k), k_slice=k_slice, reason=reason, **extra)


def smoothing_plan(model: Any, *, method: str = "detX", percent: float = 0.8, layers: Iterable | int | str | None = None,
                   min_evals: int = 8, max_evals: int = 15000, max_N: int = 50000, start_ids: int = 0,
                   threads: int | None = None) -> list[dict]:
    """The components ``svd_smoothing`` keeps in each layer, without editing anything.

    Returns one dict per analysable layer: layer_id, longname, key, layer_type, N, M, rf, k (components kept
    in the layer, 0 = left unchanged), k_slice (⌈k/rf⌉, per slice), method (the one used; "auto" resolves to
    "rmt" or "detX"), alpha, and reason (why a layer is left unchanged — k = 0, or k_slice >= M — else "").
    """
    if method not in SMOOTHING_METHODS:
        raise ValueError(f"method must be one of {SMOOTHING_METHODS}, got {method!r}")
    if method == "svd" and not (isinstance(percent, (int, float)) and 0 < abs(percent) <= 1):
        raise ValueError(f"percent must be in [-1, 0) or (0, 1], got {percent!r}")
    from .analysis import analyze

    targets = _targets(model, layers, min_evals, max_evals, max_N, start_ids)
    if not targets:
        return []
    analysis = analyze(model, layers=[t.layer_id for t, _ in targets], start_ids=start_ids, min_evals=min_evals,
                       max_evals=max_evals,
                       max_N=max_N, detX=method in ("detX", "auto"), mp_fit=method in ("rmt", "auto"),
                       threads=threads)
    rows = {r["key"]: r for r in analysis.rows}
    out = []
    for t, plan in targets:
        row = rows.get(t.key, {})
        used = method
        if method == "auto":
            used = "rmt" if row.get("alpha", float("nan")) > AUTO_ALPHA else "detX"
        reason, k = "", 0
        if row.get("status") not in ("success", "failed") or (row["status"] == "failed" and "xmin" not in row):
            reason = f"not analysed: {row.get('reason') or 'no row'}"
        elif used == "svd":
            k = int(percent * plan.M * plan.rf)
        elif used == "detX":
            k = int(row["detX_num"])
        elif used == "rmt":
            k = int(row["num_spikes"])
        elif row["status"] != "success":  # alpha_min: WeightWatcher's failed fit gives −1 and removes one
            reason = f"power-law fit failed: {row.get('reason', '')}"
        else:
            k = int(row["num_pl_spikes"])
        if not reason and k == 0:
            reason = "k = 0"
        out.append(_plan_row(t, plan, k, reason, method=used, alpha=row.get("alpha", float("nan"))))
    return out


def sharpness_plan(model: Any, *, layers: Iterable | int | str | None = None, seed: int = 0, min_evals: int = 8,
                   max_evals: int = 15000, max_N: int = 50000, start_ids: int = 0,
                   threads: int | None = None) -> list[dict]:
    """The components ``svd_sharpness`` removes from each layer, without editing anything.

    For each analysable layer, every slice's entries are permuted at random (``numpy.random.default_rng``
    seeded with ``(seed, layer_id)``), the pooled and scaled ESD of the permuted layer gets WeightWatcher's
    Marchenko–Pastur fit, and k = −num_spikes. Returns the dicts of ``smoothing_plan`` (k <= 0) with
    ``num_traps`` = num_spikes.
    """
    from . import spectra
    from .matrices import stack

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = []
    for t, plan in _targets(model, layers, min_evals, max_evals, max_N, start_ids):
        slices = stack(t, plan, t.load())
        slices = slices if slices.ndim == 3 else slices[None]
        rng = np.random.default_rng((seed, t.layer_id))
        permuted = np.stack([rng.permutation(s.ravel()).reshape(s.shape) for s in slices])
        ev = np.sort(np.asarray(spectra.eigenvalues(permuted, threads=threads), dtype=np.float64).ravel())
        fit = spectra.marchenko_pastur_fit(ev * plan.scale, N=plan.N, M=plan.M, threads=threads)
        k = -int(fit.num_spikes)
        reason = "" if k else ("Marchenko-Pastur fit failed: " + fit.reason if fit.status != "success"
                               else "no trap (k = 0)")
        out.append(_plan_row(t, plan, k, reason, num_traps=-k))
    return out


# ----------------------------------------------------------------------------------------------------------
# The edited copy
# ----------------------------------------------------------------------------------------------------------
def _slice_views(t, w: np.ndarray) -> list[np.ndarray]:
    """Writable views of the matrices of a loaded tensor ``w`` (stored layout), in WeightWatcher's slices."""
    if w.ndim == 2:
        return [w]
    if t.layer_type == "conv1d":  # torch (out, in, k)
        return [w[:, :, i] for i in range(w.shape[2])]
    if t.orientation == "kh_kw_in_out":
        return [w[i, j] for i in range(w.shape[0]) for j in range(w.shape[1])]
    return [w[:, :, i, j] for i in range(w.shape[2]) for j in range(w.shape[3])]


def _check_editable(model: Any) -> None:
    from .adapters import _is_torch_module

    if not (_is_torch_module(model) or isinstance(model, Mapping)):
        raise TypeError(f"svd_smoothing / svd_sharpness edit a torch.nn.Module or a state dict (a mapping name -> "
                        f"tensor or array), got {type(model).__module__}.{type(model).__qualname__}; load a "
                        f"model file first (e.g. safetensors.torch.load_file)")


def _edited_copy(model: Any):
    """A deep copy of ``model`` and ``write(key, array)``, which overwrites a tensor of the copy in place (same
    dtype and device; tensors that share memory stay shared)."""
    from .adapters import _is_torch_module

    _check_editable(model)
    dup = copy.deepcopy(model)
    if _is_torch_module(model):
        def find(key):
            return dup.get_parameter(key)
    elif isinstance(model, Mapping):
        from .adapters.tensors import is_array_like

        inner: Any = dup
        while True:  # the unwrapping of the state_dict reader (hts.adapters.mapping)
            sub = next((inner[w] for w in ("state_dict", "model") if isinstance(inner.get(w), Mapping)
                        and any(is_array_like(v) for v in inner[w].values())), None)
            if sub is None:
                break
            inner = sub
        keys = [str(k) for k, v in inner.items() if is_array_like(v)]
        prefix = "module." if keys and all(k.startswith("module.") for k in keys) else ""

        def find(key):
            return inner[prefix + key]

    def write(key: str, array: np.ndarray) -> None:
        target = find(key)
        if isinstance(target, np.ndarray):
            target[...] = array.astype(target.dtype, copy=False)
            return
        import torch

        with torch.no_grad():
            target.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return dup, write


def _apply(model: Any, plan: list[dict]) -> Any:
    from .adapters.tensors import to_numpy

    dup, write = _edited_copy(model)
    inventory = None
    for row in plan:
        if row["k"] == 0 or row["reason"]:  # nothing to do (the reason says why)
            continue
        if inventory is None:
            from .inventory import open_model

            inventory = {t.key: t for t in open_model(dup).tensors}
        t = inventory[row["key"]]
        w = np.array(to_numpy(t.load()), dtype=np.float64)  # a float64 copy of the copy's weights
        for view in _slice_views(t, w):
            view[...] = truncate_components(view, row["k_slice"])
        write(row["key"], w)
        logger.info("layer %s %r: %s top %d singular components (per slice: %d)", row["layer_id"], row["longname"],
                    "kept" if row["k"] > 0 else "removed", abs(row["k"]), abs(row["k_slice"]))
    return dup


def svd_smoothing(model: Any, *, method: str = "detX", percent: float = 0.8,
                  layers: Iterable | int | str | None = None, min_evals: int = 8, max_evals: int = 15000,
                  max_N: int = 50000, start_ids: int = 0, threads: int | None = None) -> Any:
    """WeightWatcher's ``SVDSmoothing``: a copy of ``model`` whose layers keep only their top k singular
    components (k per layer from ``method``; see the module docstring and ``smoothing_plan``).

    Parameters
    ----------
    model
        A ``torch.nn.Module`` or a state dict (mapping name -> torch tensor or numpy array). Never modified.
    method
        "detX" (default), "svd" (k = int(percent·M·rf)), "rmt" (MP spikes), "alpha_min" (power-law tail size) or
        "auto" (rmt where alpha > 6, else detX).
    percent
        The kept fraction for ``method="svd"``; negative: the fraction removed from the top (WeightWatcher's
        ``percent < 0``).
    layers, min_evals, max_evals, max_N, start_ids, threads
        As in ``hts.analyze``: which layers are edited (the others are copied unchanged).

    Returns
    -------
    The edited copy, of the same type (a deep copy: the input and its tensors are left as they were).
    """
    _check_editable(model)
    plan = smoothing_plan(model, method=method, percent=percent, layers=layers, min_evals=min_evals,
                          max_evals=max_evals, max_N=max_N, start_ids=start_ids, threads=threads)
    return _apply(model, plan)


def svd_sharpness(model: Any, *, layers: Iterable | int | str | None = None, seed: int = 0, min_evals: int = 8,
                  max_evals: int = 15000, max_N: int = 50000, start_ids: int = 0, threads: int | None = None) -> Any:
    """WeightWatcher's ``SVDSharpness``: a copy of ``model`` with each layer's correlation traps removed — its
    top |k| singular components, k = −(MP spikes of the randomly permuted layer; see ``sharpness_plan``).

    ``seed`` makes the permutations reproducible (WeightWatcher's are unseeded). The other parameters and
    the result are those of ``svd_smoothing``.
    """
    _check_editable(model)
    plan = sharpness_plan(model, layers=layers, seed=seed, min_evals=min_evals, max_evals=max_evals, max_N=max_N,
                          start_ids=start_ids, threads=threads)
    return _apply(model, plan)
