"""The figure of a base-vs-tuned analysis (``hts.analyze(tuned, base=...)``): α of each layer in the base and
in the tuned (or merged, for a LoRA adapter) model, joined per layer, so where fine-tuning moved α shows at a
glance. matplotlib's object API (no pyplot state)."""

from __future__ import annotations

import math
import os

from ..metrics import OVER_TRAINED, UNDER_TRAINED
from .plots import _figure, _finish

__all__ = ["alpha_change_by_layer"]

_UPDATE_ROLES = ("delta", "lora_delta")


def alpha_change_by_layer(analysis, *, path: str | os.PathLike | None = None):
    """One x position per update row (model order): ``base_alpha`` (circles) and ``tuned_alpha`` /
    ``merged_alpha`` (triangles), a segment between the two; dotted lines at α = 2 and 6."""
    rows = [r for r in analysis.rows if r.get("role") in _UPDATE_ROLES and r["status"] != "skipped"]
    tuned_key = "merged_alpha" if any("merged_alpha" in r for r in rows) else "tuned_alpha"
    pts = [(r.get("base_alpha", math.nan), r.get(tuned_key, math.nan)) for r in rows]
    fig = _figure(7.2, 4.2)
    ax = fig.add_subplot()
    xs = list(range(len(pts)))
    for x, (b, t) in zip(xs, pts):
        if math.isfinite(b) and math.isfinite(t):
            ax.plot([x, x], [b, t], color="0.6", linewidth=1, zorder=0)
    ax.scatter(xs, [b for b, _ in pts], s=18, marker="o", color="C0", label="base")
    ax.scatter(xs, [t for _, t in pts], s=18, marker="^", color="C3",
               label="merged (W + s·B·A)" if tuned_key == "merged_alpha" else "tuned")
    for bound in (OVER_TRAINED, UNDER_TRAINED):
        ax.axhline(bound, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("layer index (updated matrices, model order)")
    ax.set_ylabel("alpha")
    ax.set_title("alpha before and after fine-tuning", fontsize=10)
    ax.legend(fontsize=8)
    return _finish(fig, path)
