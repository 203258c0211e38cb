"""Which layers to analyse: WeightWatcher's ``layers=`` filter (reference A.5)."""

from __future__ import annotations

from typing import Iterable, Sequence

from .adapters.base import LAYER_TYPES, WeightTensor


def select(tensors: Sequence[WeightTensor], layers: Iterable | int | str | None) -> list[WeightTensor]:
    """Keep the tensors the filter asks for.

    ``layers`` may be None (all); an int or list of ints (keep those layer ids); a list of negative ints
    (drop those ids); a layer type or list of types ("dense", "conv2d", "conv1d", "embedding", "norm"); a
    name or list of names (matched against the short ``name`` or the full ``longname``); names prefixed
    with "-" are dropped instead. Mixing keep and drop entries is an error, as in WeightWatcher.
    """
    if layers is None:
        return list(tensors)
    items = [layers] if isinstance(layers, (int, str)) else list(layers)
    if not items:
        return list(tensors)
    ints = [x for x in items if isinstance(x, int) and not isinstance(x, bool)]
    strs = [x for x in items if isinstance(x, str)]
    if len(ints) + len(strs) != len(items):
        raise TypeError(f"layers must be ints (layer ids), layer types or names, got {layers!r}")
    drop_ints = [i for i in ints if i < 0]
    drop_strs = [s for s in strs if s.startswith("-")]
    dropping = bool(drop_ints or drop_strs)
    if dropping and (len(drop_ints) != len(ints) or len(drop_strs) != len(strs)):
        raise ValueError(f"layers mixes kept and excluded entries: {layers!r}")
    ids = {abs(i) for i in ints}
    names = {s[1:] if dropping else s for s in strs}
    types = {s for s in names if s in LAYER_TYPES}
    names -= types

    def matches(t: WeightTensor) -> bool:
        return t.layer_id in ids or t.layer_type in types or t.name in names or t.longname in names

    return [t for t in tensors if matches(t) != dropping]
