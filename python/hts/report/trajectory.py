"""``hts.trajectory``: how the spectral metrics of one model move over training, from its checkpoints alone (no
accuracies needed).

Each checkpoint (a file or folder ``hts.analyze`` reads, an ``hts.Analysis``, or a model object) is analysed with
the same options. Its training step is the last integer in its name (``checkpoint-1500`` → 1500, ``ckpt_3.pt`` →
3); when a name has none, the checkpoints keep the order given and their steps are 0, 1, 2, … The result holds,
per checkpoint, the model summary (⟨α⟩, α̂, ⟨log_norm⟩, …) and the number of layers with α < 2; per layer (matched
by name), α at every step; and flags: the first step where the mean α falls below 2, the over-training signal of
Martin & Mahoney (layers with α < 2 are over-fit; the reference's early-stop signal).
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._json import isnan, jsonable
from .compare import _finite, named_models

__all__ = ["ALPHA_FLOOR", "SUMMARY_METRICS", "Trajectory", "expand_checkpoints", "step_of", "trajectory"]

logger = logging.getLogger("hts")

#: Mean α below this is flagged (over-trained layers; the early-stop signal).
ALPHA_FLOOR = 2.0
#: Summary metrics followed over the steps, in table order (those absent from every checkpoint are left out).
SUMMARY_METRICS = ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "log_alpha_norm", "stable_rank",
                   "mp_softrank", "rand_distance")

_GLOB = re.compile(r"[*?\[]")


def step_of(name: str) -> int | None:
    """The training step in a checkpoint name: the last run of digits of its last path component that has
    one (``run/checkpoint-1500`` → 1500, ``checkpoint-1500/model.safetensors`` → 1500, ``ckpt_3.pt`` → 3), or
    None. File suffixes (``.pt``, ``.safetensors``) are ignored."""
    for part in reversed(Path(str(name)).parts):
        stem = part.split(".")[0]
        digits = re.findall(r"\d+", stem)
        if digits:
            return int(digits[-1])
    return None


def expand_checkpoints(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Paths with shell patterns (``ckpt-*/``) expanded, in step order within each pattern; a pattern that
    matches nothing is a ``FileNotFoundError``. Paths without patterns are kept as given."""
    out: list[str] = []
    for p in map(str, paths):
        if _GLOB.search(p) and not os.path.exists(p):
            matches = glob.glob(p)
            if not matches:
                raise FileNotFoundError(f"{p}: the pattern matches no file or folder")
            matches.sort(key=lambda m: (step_of(m) is None, step_of(m) or 0, m))
            out += matches
        else:
            out.append(p)
    return out


class Trajectory:
    """The result of ``hts.trajectory``: plain data, JSON-serialisable.

    Attributes
    ----------
    checkpoints : list of dict
        One per checkpoint in step order: ``name``, ``step``, the summary metrics, ``layers_analysed`` and
        ``layers_alpha_below_2`` (analysed layers with α < ``ALPHA_FLOOR``).
    layers : dict
        layer name → list of α, one per checkpoint (NaN where the layer was not analysed at that step).
    flags : list of str
        What deserves attention: mean α below ``ALPHA_FLOOR`` (first step), layers missing at some steps.
    analyses : dict
        name → ``hts.Analysis`` of every checkpoint.
    """

    def __init__(self, checkpoints: list[dict], layers: dict[str, list[float]], flags: list[str],
                 analyses: dict) -> None:
        self.checkpoints = checkpoints
        self.layers = layers
        self.flags = flags
        self.analyses = analyses

    @property
    def steps(self) -> list[int]:
        return [c["step"] for c in self.checkpoints]

    @property
    def metrics(self) -> list[str]:
        """The summary metrics present in some checkpoint, in table order."""
        return [m for m in SUMMARY_METRICS if any(_finite(c.get(m)) for c in self.checkpoints)]

    @property
    def table(self):
        """pandas DataFrame: one row per checkpoint."""
        from .._frames import table

        return table(self.checkpoints, self._columns())

    @property
    def layer_table(self):
        """pandas DataFrame: one row per layer, one α column per step."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.layers, orient="index", columns=self.steps)

    def _columns(self) -> list[str]:
        return ["step", "name", *self.metrics, "layers_analysed", "layers_alpha_below_2"]

    def to_dict(self) -> dict:
        """Everything but the analyses, as plain JSON types (NaN becomes None)."""
        return jsonable({"checkpoints": self.checkpoints, "layers": self.layers, "flags": self.flags,
                         "alpha_floor": ALPHA_FLOOR})

    def to_json(self, path: str | os.PathLike | None = None, **kwargs) -> str:
        """Strict JSON text of ``to_dict()``; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_csv(self, path: str | os.PathLike) -> None:
        """One row per checkpoint (empty cells for NaN)."""
        columns = self._columns()
        with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:  # "\ud800" shown
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for c in self.checkpoints:
                writer.writerow({k: ("" if isnan(c.get(k)) else c.get(k)) for k in columns})

    def to_html(self, path: str | os.PathLike | None = None, **kwargs) -> str:
        """A self-contained HTML page (``hts.report.trajectory_html``); written to ``path`` when given."""
        from .trajectory_html import trajectory_html

        text = trajectory_html(self, **kwargs)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def format(self) -> str:
        """A plain-text table, one line per checkpoint, then the flags."""
        metrics = self.metrics
        w = max([10] + [len(c["name"]) for c in self.checkpoints])
        head = f"{'step':>8} {'checkpoint':<{w}} " + " ".join(f"{m:>17}" for m in metrics) + "  layers  alpha<2"
        lines = [head]
        for c in self.checkpoints:
            cells = " ".join(f"{c.get(m, math.nan):>17.4g}" for m in metrics)
            lines.append(f"{c['step']:>8} {c['name']:<{w}} {cells}  {c['layers_analysed']:>6}  "
                         f"{c['layers_alpha_below_2']:>7}")
        lines.append(f"no accuracies: metrics over {len(self.checkpoints)} checkpoints (a trajectory, not a "
                     "trend against accuracy)")
        lines += [f"flag: {f}" for f in self.flags]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<hts.Trajectory: {len(self.checkpoints)} checkpoints, steps {self.steps[0]}..{self.steps[-1]}, "
                f"{len(self.layers)} layers, {len(self.flags)} flags>")


def _named(checkpoints: Any) -> list[tuple[str, Any]]:
    """(name, model) pairs in the order given, shell patterns among the paths expanded in place."""
    return named_models(checkpoints, lambda item: [(_display_name(p), p) for p in expand_checkpoints([item])],
                        "checkpoints (paths may be shell patterns)")


def _display_name(path: str) -> str:
    p = Path(path.rstrip("/\\"))
    parent = p.parent.name
    return f"{parent}/{p.name}" if parent and step_of(p.name) is None else p.name


def trajectory(checkpoints: Any, *, steps: Iterable[int] | None = None, **analyze_options: Any) -> Trajectory:
    """Follow a model's metrics over its training checkpoints (no accuracies needed).

    Parameters
    ----------
    checkpoints
        Paths (files or folders; shell patterns such as ``"run/ckpt-*"`` are expanded), a mapping name → model,
        or (name, model) pairs; a model is anything ``hts.analyze`` reads, or an ``hts.Analysis``. At least two.
    steps
        The training step of each checkpoint, in the order given (default: the last integer in each name; if
        some name has none, the order given, as 0, 1, 2, …).
    **analyze_options
        Passed to ``hts.analyze`` (the same for every checkpoint).

    Returns
    -------
    Trajectory
        Checkpoints sorted by step, with their summaries, α per layer and step, and the flags (see the module
        docstring).
    """
    from ..analysis import Analysis, analyze

    named = _named(checkpoints)
    if len(named) < 2:
        raise ValueError(f"a trajectory needs at least two checkpoints, got {len(named)}")
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"two checkpoints are both named {dup!r}; name them (NAME=PATH)")
    if steps is not None:
        step_list = [int(s) for s in steps]
        if len(step_list) != len(named):
            raise ValueError(f"{len(step_list)} steps for {len(named)} checkpoints")
    else:
        found = [step_of(n) for n in names]
        step_list = found if all(s is not None for s in found) else list(range(len(named)))
        if any(s is None for s in found):
            logger.info("checkpoint names without a step number: using the order given (0, 1, 2, ...)")
    if len(set(step_list)) != len(step_list):
        dup = next(s for s in step_list if step_list.count(s) > 1)
        raise ValueError(f"two checkpoints have step {dup} ({', '.join(n for n, s in zip(names, step_list) if s == dup)})"
                         "; give steps=")
    order = sorted(range(len(named)), key=lambda i: step_list[i])
    analyses: dict = {}
    rows = []
    for i in order:
        name, model = named[i]
        result = model if isinstance(model, Analysis) else analyze(model, **analyze_options)
        analyses[name] = result
        alphas = [r["alpha"] for r in result.analysed if _finite(r.get("alpha"))]
        entry = {"step": step_list[i], "name": name}
        entry.update({k: float(v) for k, v in result.summary.items() if k in SUMMARY_METRICS and v is not None})
        entry["layers_analysed"] = len(result.analysed)
        entry["layers_alpha_below_2"] = sum(a < ALPHA_FLOOR for a in alphas)
        rows.append(entry)
    layers = _layer_alphas([analyses[named[i][0]] for i in order])
    result = Trajectory(rows, layers, _flags(rows, layers), analyses)
    for text in result.flags:
        logger.warning("%s", text)
    return result


def _layer_key(row: dict) -> str:
    slice_id = row.get("slice_id")
    base = row.get("longname") or str(row.get("layer_id"))
    return f"{base}[{int(slice_id)}]" if _finite(slice_id) else base


def _layer_alphas(analyses: list) -> dict[str, list[float]]:
    """layer name → α at every step (NaN where not analysed), layers in first-seen model order."""
    per_step = [{_layer_key(r): float(r["alpha"]) if _finite(r.get("alpha")) else math.nan for r in a.analysed}
                for a in analyses]
    names = list(dict.fromkeys(k for d in per_step for k in d))
    return {k: [d.get(k, math.nan) for d in per_step] for k in names}


def _flags(rows: list[dict], layers: dict[str, list[float]]) -> list[str]:
    flags = []
    below = [r for r in rows if _finite(r.get("alpha")) and r["alpha"] < ALPHA_FLOOR]
    if below:
        first = below[0]
        flags.append(f"mean alpha falls below {ALPHA_FLOOR:g} at step {first['step']} ({first['name']}: "
                     f"{first['alpha']:.3f}): over-trained layers, the early-stop signal")
    partial = [k for k, v in layers.items() if any(math.isnan(a) for a in v) and not all(math.isnan(a) for a in v)]
    if partial:
        flags.append(f"{len(partial)} layer(s) analysed at some steps only (e.g. {partial[0]}): their alpha has "
                     "gaps; the summaries average different layer sets")
    return flags
