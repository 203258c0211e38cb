"""The ESD of any one layer of a model, analysed or not (WeightWatcher's ``get_ESD``, and more).

``layer_esd(model, layer)`` reads one tensor and returns the ascending eigenvalues λ_i = σ_i(W)² of its matrices:

- ``scaled=True`` (default): as ``hts.analyze`` fits them — a Conv2D's slices × ½ pooled (× kh·kw/2 per slice),
  ÷ N with ``normalize=True``, and 1/λ with ``inverse=True``;
- ``scaled=False``: the plain eigenvalues of WᵀW for each matrix, with no conv scaling (WeightWatcher's
  ``get_ESD``, which skips the scaling that its ``analyze`` applies, so a pooled conv ESD is 2× analyze's).

Layers that ``analyze`` skips for their size (too few or too many eigenvalues, N > max_N) or because their memory
is tied to another tensor have an ESD too; tensors that are not weight matrices (norms, biases, 1-D or 5-D
arrays) raise ``ValueError`` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["layer_esd"]


def _find(tensors: list, layer: Any):
    hits = [t for t in tensors if t.layer_id == layer] if isinstance(layer, int) and not isinstance(layer, bool) else \
        [t for t in tensors if layer in (t.longname, t.key, t.name)]
    if not hits:
        known = ", ".join(f"{t.layer_id}:{t.longname}" for t in tensors[:10])
        raise KeyError(f"no layer {layer!r} in the model (layers: {known}{', ...' if len(tensors) > 10 else ''})")
    if len({t.key for t in hits}) > 1:
        raise KeyError(f"{layer!r} names several tensors ({', '.join(t.key for t in hits[:5])}); use the layer_id "
                       f"or the key")
    return hits[0]


def layer_esd(model: Any, layer: int | str, *, slice_id: int | None = None, scaled: bool = True, pool: bool = True,
              conv_method: str = "slices", conv_input_size: int | tuple | None = None, normalize: bool = False,
              inverse: bool = False, start_ids: int = 0) -> np.ndarray:
    """Ascending eigenvalues of one layer of ``model`` (anything ``hts.analyze`` takes), analysed or not.

    Parameters
    ----------
    layer
        A layer id (with ``start_ids`` as in ``analyze``), a longname, a tensor key or a short name (when unique).
    slice_id
        With several matrices (conv slices or frequencies): one matrix's eigenvalues (default: all, pooled).
    scaled
        True: the values ``analyze`` fits, with these options (see the module docstring); False: the plain
        eigenvalues of WᵀW, without conv scaling, normalisation or inversion.
    pool, conv_method, conv_input_size, normalize, inverse, start_ids
        As in ``hts.analyze`` (``pool`` only decides the conv scaling: ½ pooled, kh·kw/2 per slice).

    Returns
    -------
    ndarray, float64, ascending

    Raises
    ------
    KeyError
        No such layer, or a name shared by several tensors.
    ValueError
        The tensor is not a weight matrix (the reason is given), or ``slice_id`` is out of range.
    """
    from . import spectra
    from .inventory import open_model
    from .matrices import plan_layer, stack
    from .selection import renumber

    t = _find(renumber(open_model(model).tensors, start_ids), layer)
    if t.skip_reason and not t.skip_reason.startswith("tied to"):
        raise ValueError(f"layer {t.longname!r} has no ESD: {t.skip_reason}")
    size = (conv_input_size,) * 2 if isinstance(conv_input_size, int) else conv_input_size
    plan = plan_layer(t, pool=pool, conv_method=conv_method, conv_input_size=size, normalize=normalize)
    array = stack(t, plan, np.asarray(t.load()))
    if plan.method == "fft":
        ev = spectra.conv_operator_eigenvalues(array, input_size=plan.fft_size, name=t.longname, groups=plan.groups)
    elif inverse:  # the small eigenvalues to full relative accuracy, as analyze(inverse=True) takes them
        a64 = np.asarray(array, dtype=np.float64)
        ev = np.sort(np.linalg.svd(a64 if a64.ndim == 3 else a64[None], compute_uv=False) ** 2, axis=-1)
    else:
        ev = spectra.eigenvalues(array, name=t.longname)
    per_slice = np.atleast_2d(np.asarray(ev, dtype=np.float64))
    if slice_id is not None:
        if not 0 <= slice_id < per_slice.shape[0]:
            raise ValueError(f"layer {t.longname!r} has {per_slice.shape[0]} matrices, no slice {slice_id}")
        per_slice = per_slice[slice_id:slice_id + 1]
    values = np.sort(per_slice.ravel())
    if not scaled:
        return values
    values = values * plan.scale / plan.normalizer
    if inverse:
        with np.errstate(divide="ignore"):
            values = np.sort(1.0 / values)
    return values
