"""Base vs tuned: ``hts.analyze(tuned, base=base)`` (and ``hts diff BASE TUNED``).

For two models of the same architecture, each tuned tensor is matched to a base tensor by name (``match_names``)
and the row is the analysis of the update

    ΔW = W_tuned − W_base          (float64, in the stored layout)

with its own α, norms and stable rank, plus, for each metric k of ``CHANGE_METRICS``, the base and tuned values
and their change ``delta_k = k(W_tuned) − k(W_base)`` (``base_alpha``, ``tuned_alpha``, ``delta_alpha``, ...).
Matching (``match_tensors``): by key, then by module path (an ONNX export's opaque ``val_49`` is matched by the
path hts's reader gives it); a tensor stored in × out (ONNX MatMul) is transposed to the base's out × in
(``layout``; column ``layout`` = "same" or "transposed"). A square matrix whose axis order one side does not
say is lined up the way that gives the smaller ‖ΔW‖_F (a converted or fine-tuned copy is close to its base).
A tuned tensor without a base partner, or whose shape differs from it, is listed as a skipped row saying why;
base tensors the tuned model lacks are listed too ("only in the base"). Nothing is dropped silently.

When ``tuned`` is a PEFT LoRA adapter (``hts.adapters.peft_adapter``), the update of target P is
ΔW = s·B·A (analysed from its factors) and the tuned weight is the merged W + s·B·A; each target gives three
rows side by side, ``role`` = "lora_delta", "base" (W) and "merged" (W + s·B·A), the delta row carrying the
changes from W to W + s·B·A. A target missing from the base is an error naming every missing one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from .adapters import WeightTensor
from .errors import Cancelled, ModelFileError
from .inventory import Inventory, open_model
from .selection import layer_entries, select

__all__ = ["CHANGE_METRICS", "analyze_with_base", "is_adapter", "layout", "match_names", "match_tensors", "merged_adapter"]

#: The metrics whose change from base to tuned each delta row reports.
CHANGE_METRICS = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank",
                  "entropy", "lambda_max")


def match_names(names: list[str], base_names: list[str]) -> dict[str, str]:
    """name -> base name, for the names that have a partner.

    Rules, in order: the same name; else the only base name that ends with ``"." + name`` (the base has a
    wrapper prefix, e.g. ``bert.``); else the only base name ``b`` such that the name ends with ``"." + b``
    (the tuned model has the prefix, e.g. ``base_model.model.``). Ambiguous suffixes match nothing.
    """
    base_set = set(base_names)
    out = {}
    for name in names:
        if name in base_set:
            out[name] = name
            continue
        longer = [b for b in base_names if b.endswith("." + name)]
        if len(longer) == 1:
            out[name] = longer[0]
            continue
        shorter = [b for b in base_names if name.endswith("." + b)]
        if len(shorter) == 1:
            out[name] = shorter[0]
    return out


def match_tensors(tuned: list[WeightTensor], base: list[WeightTensor]) -> dict[str, str]:
    """tuned key -> base key: ``match_names`` on the keys, then, for the tuned tensors left, on the module paths
    (longnames; a base longname shared by several tensors is ambiguous and matches nothing). The second pass
    pairs a converted copy whose keys are opaque (an ONNX export's ``val_49``, named ``encoder.layer.0.query``
    by hts's ONNX reader) with the checkpoint's ``encoder.layer.0.query.weight``."""
    matches = match_names([t.key for t in tuned], [b.key for b in base])
    taken = set(matches.values())
    counts: dict[str, int] = {}
    for b in base:
        counts[b.longname] = counts.get(b.longname, 0) + 1
    by_long = {b.longname: b.key for b in base if counts[b.longname] == 1 and b.key not in taken}
    rest = [t for t in tuned if t.key not in matches]
    for name, partner in match_names([t.longname for t in rest], list(by_long)).items():
        for t in rest:
            if t.longname == name and t.key not in matches:
                matches[t.key] = by_long[partner]
    return matches


_OPPOSITE = {("in_out", "out_in"), ("out_in", "in_out")}


def layout(tuned: WeightTensor, base: WeightTensor) -> str | None:
    """How the tuned tensor lines up with the base one: "same", "transposed" (one is stored in × out, the other
    out × in: an ONNX MatMul weight against a PyTorch Linear), "either" (a square matrix whose axis order one
    side does not say; decided from the data, see ``_difference``) or None (the shapes do not match)."""
    ts, bs = tuple(tuned.shape), tuple(base.shape)
    pair = (tuned.orientation, base.orientation)
    if len(ts) != 2 or len(bs) != 2:
        return "same" if ts == bs else None
    if pair in _OPPOSITE:
        return "transposed" if ts[::-1] == bs else None
    if tuned.orientation == base.orientation or "in_out" not in pair:
        return "same" if ts == bs else None
    # one side is in × out, the other's order is not known
    if ts == bs and ts[0] == ts[1]:
        return "either"
    if ts == bs:
        return "same"
    return "transposed" if ts[::-1] == bs else None


def _difference(tuned: WeightTensor, base: WeightTensor, how: str = "same", chosen: dict | None = None):
    """Loader of W_tuned − W_base in the base's layout. With ``how="either"`` the tuned matrix is transposed
    when that makes the difference smaller in Frobenius norm (a copy of the base lies close to it in its own
    axis order); ``chosen[tuned.key]`` then records "same" or "transposed"."""
    def load():
        a = np.asarray(tuned.load(), dtype=np.float64)
        b = np.asarray(base.load(), dtype=np.float64)
        use = how
        if how == "either":
            use = "transposed" if np.linalg.norm(a.T - b) < np.linalg.norm(a - b) else "same"
        if chosen is not None:
            chosen[tuned.key] = use
        return (a.T if use == "transposed" else a) - b

    return load


def _merged(base: WeightTensor, delta: WeightTensor):
    def load():
        return np.asarray(base.load(), dtype=np.float64) + delta.load()

    return load


def is_adapter(inv: Inventory) -> bool:
    """Whether an inventory is a PEFT LoRA adapter (its rows are updates ΔW, not weights)."""
    return any(t.lora is not None for t in inv.tensors) or bool(inv.tensors and inv.tensors[0].source.startswith("peft"))


def merged_adapter(adapter: Inventory, base: Inventory) -> Inventory:
    """The adapter's tensors as weights: each LoRA target becomes W + s·B·A (its base W matched by name, under
    the base's key and name, float64); modules_to_save weights and skipped tensors stay as they are. A target
    missing from the base is a ``ModelFileError`` naming it (as ``analyze(adapter, base=...)``)."""
    base_ts = {t.key: t for t in base.tensors}
    targets = [t for t in adapter.tensors if t.lora is not None]
    matches = match_names([t.key for t in targets], list(base_ts))
    missing = [t.key for t in targets if t.key not in matches]
    if missing:
        raise ModelFileError(adapter.path or "<adapter>",
                             f"{len(missing)} LoRA target(s) not in the base model: {', '.join(missing[:10])}"
                             f"{'...' if len(missing) > 10 else ''}")
    out = []
    for t in adapter.tensors:
        if t.lora is None:
            out.append(t)
            continue
        b = base_ts[matches[t.key]]
        out.append(replace(b, layer_id=t.layer_id, load=_merged(b, t), dtype="float64", lora=None))
    return Inventory(out, path=adapter.path)


def _change_columns(row: dict, base_row: dict | None, tuned_row: dict | None, tuned_label: str) -> None:
    for k in CHANGE_METRICS:
        b = base_row.get(k, float("nan")) if base_row else float("nan")
        t = tuned_row.get(k, float("nan")) if tuned_row else float("nan")
        row[f"base_{k}"] = b
        row[f"{tuned_label}_{k}"] = t
        try:
            row[f"delta_{k}"] = float(t) - float(b)
        except (TypeError, ValueError):
            row[f"delta_{k}"] = float("nan")


def _by_key(analysis) -> dict:
    return {r["key"]: r for r in analysis.rows if r.get("slice_id") is None}


def analyze_with_base(model: Any, base: Any, **options):
    """``hts.analyze(model, base=base, **options)``: see the module docstring."""
    from .analysis import Analysis, analyze

    layers = options.pop("layers", None)
    start_ids = options.pop("start_ids", 0) or 0  # applied here, once, so every row's id follows it
    tuned_inv = open_model(model)
    if start_ids and not is_adapter(tuned_inv):
        from .selection import renumber

        tuned_inv = Inventory(renumber(tuned_inv.tensors, start_ids), path=tuned_inv.path)
    base_inv = open_model(base)
    if is_adapter(tuned_inv):
        return _with_adapter(tuned_inv, base_inv, layers, options, first_id=start_ids or 1)
    tuned_ts = [t for t in tuned_inv.tensors]
    base_ts = {t.key: t for t in base_inv.tensors}
    matches = match_tensors(tuned_ts, list(base_ts.values()))
    deltas, pairs, skipped = [], [], []
    how_of: dict[str, str] = {}
    chosen: dict[str, str] = {}
    for t in tuned_ts:
        b = base_ts.get(matches.get(t.key, ""))
        how = layout(t, b) if b is not None else None
        if t.skip_reason:
            skipped.append((t, t.skip_reason))
        elif b is None:
            skipped.append((t, "no tensor of this name in the base model"))
        elif how is None:
            skipped.append((t, f"shape {'x'.join(map(str, t.shape))} differs from the base's "
                               f"{b.key} {'x'.join(map(str, b.shape))}"))
        elif b.skip_reason:
            skipped.append((t, f"the base's {b.key} is not analysed: {b.skip_reason}"))
        else:
            how_of[t.key] = how
            deltas.append(replace(t, load=_difference(t, b, how, chosen), dtype="float64", lora=None,
                                  shape=tuple(b.shape), orientation=b.orientation if how != "same" else t.orientation))
            pairs.append((t, b))
    matched_base = {matches[t.key] for t in tuned_ts if t.key in matches}
    only_base = [b for k, b in base_ts.items() if k not in matched_base]
    if layers is not None:  # W_base and W_tuned are analysed only for the selected updates
        kept = {t.key for t in select(deltas, layer_entries(layers), warn=False)}
        pairs = [(t, b) for t, b in pairs if t.key in kept]
    base_inv_m = Inventory([b for _, b in pairs])
    tuned_inv_m = Inventory([t for t, _ in pairs])
    budget = options.get("time_budget")
    start = time.monotonic()

    def run(inv, which):  # one time budget for the three analyses together
        chosen_layers = layers if which == "update" else None
        if budget is None:
            return analyze(inv, layers=chosen_layers, **options)
        left = budget - (time.monotonic() - start)
        if left <= 0:
            raise Cancelled(f"time budget of {budget:g} s ran out before the {which} analysis")
        return analyze(inv, layers=chosen_layers, **dict(options, time_budget=left))

    delta = run(Inventory(deltas), "update")
    base_rows = _by_key(run(base_inv_m, "base"))
    tuned_rows = _by_key(run(tuned_inv_m, "tuned"))
    base_of = {t.key: b.key for t, b in pairs}
    rows = []
    from .metrics import skipped_row

    for r in delta.rows:
        r = dict(r, role="delta", base_key=base_of.get(r["key"], ""))
        if r["key"] in how_of:  # how W_tuned was lined up with W_base ("either": as the data decided)
            r["layout"] = chosen.get(r["key"], how_of[r["key"]])
        _change_columns(r, base_rows.get(base_of.get(r["key"])), tuned_rows.get(r["key"]), "tuned")
        rows.append(r)
    for t, reason in skipped:
        r = dict(skipped_row(t, reason), role="delta", base_key=matches.get(t.key, ""))
        rows.append(r)
    next_id = max([t.layer_id for t in tuned_ts] + [0]) + 1
    for i, b in enumerate(only_base):  # layer ids after the tuned model's, so every row's id is unique
        rows.append(dict(skipped_row(replace(b, layer_id=next_id + i),
                                     "only in the base model (no tuned tensor of this name)"),
                         role="base", base_key=b.key))
    opts = dict(delta.options, base=_describe(base), layers=layers)
    return Analysis(rows, delta._esds, opts)


def _describe(obj) -> str:
    import os

    if isinstance(obj, (str, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, Inventory):
        return obj.path or "<inventory>"
    return f"<{type(obj).__module__}.{type(obj).__qualname__}>"


def _with_adapter(adapter: Inventory, base_inv: Inventory, layers, options, first_id: int = 1):
    from .analysis import Analysis, analyze

    targets = [t for t in adapter.tensors if t.lora is not None]
    base_ts = {t.key: t for t in base_inv.tensors}
    matches = match_names([t.key for t in targets], list(base_ts))
    missing = [t.key for t in targets if t.key not in matches]
    if missing:
        raise ModelFileError(adapter.path or "<adapter>",
                             f"{len(missing)} LoRA target(s) not in the base model: {', '.join(missing[:10])}"
                             f"{'...' if len(missing) > 10 else ''}")
    wrong = [f"{t.key} {t.shape} vs {base_ts[matches[t.key]].shape}" for t in targets
             if tuple(base_ts[matches[t.key]].shape) != tuple(t.shape)]
    if wrong:
        raise ModelFileError(adapter.path or "<adapter>",
                             f"LoRA update shape differs from the base weight: {', '.join(wrong[:10])}")
    listed = []
    role = {}
    for t in adapter.tensors:  # layer ids renumbered in order, so the base and merged rows have their own
        t = replace(t, layer_id=len(listed) + first_id)
        listed.append(t)
        role[(t.layer_id, t.longname)] = "lora_delta" if t.lora is not None else "adapter"
        if t.lora is None:
            continue
        b = base_ts[matches[t.key]]
        module = t.lora.module
        short = module.rsplit(".", 1)[-1]
        w = replace(b, layer_id=t.layer_id + 1, longname=f"{module}.base", name=f"{short}.base", lora=None)
        m = replace(b, layer_id=t.layer_id + 2, longname=f"{module}.merged", name=f"{short}.merged",
                    load=_merged(b, t), dtype="float64", lora=None)
        listed += [w, m]
        role[(w.layer_id, w.longname)] = "base"
        role[(m.layer_id, m.longname)] = "merged"
    result = analyze(Inventory(listed), layers=layers, **options)
    by_name = {r["longname"]: r for r in result.rows if r.get("slice_id") is None}
    rows = []
    for r in result.rows:
        r = dict(r, role=role.get((r["layer_id"], r["longname"]), ""))
        if r["role"] == "lora_delta":
            module = r["longname"][: -len(".lora_delta")]
            r["base_key"] = matches.get(r["key"], "")
            _change_columns(r, by_name.get(f"{module}.base"), by_name.get(f"{module}.merged"), "merged")
        rows.append(r)
    opts = dict(result.options, base=_describe(base_inv), layers=layers)
    return Analysis(rows, result._esds, opts)
