"""Figures of a checkpoint trajectory (``hts.Trajectory``), matplotlib's object API (no pyplot state):
α by layer at every step, and the summary metrics against the step."""

from __future__ import annotations

import math
import os

from ..metrics import OVER_TRAINED, UNDER_TRAINED
from .plots import _figure, _finish

__all__ = ["alpha_by_layer_over_steps", "metrics_over_steps"]


def alpha_by_layer_over_steps(traj, *, path: str | os.PathLike | None = None):
    """α of every layer (x: its position in the model, layers matched by name across checkpoints) with one line
    per checkpoint, coloured from early (dark) to late (yellow) steps; the legend names up to eight steps
    (first, last and evenly spaced ones between); dotted lines at α = 2 and α = 6."""
    from matplotlib import colormaps

    fig = _figure(7.2, 4.2)
    ax = fig.add_subplot()
    steps = traj.steps
    lo, hi = min(steps), max(steps)
    cmap = colormaps["viridis"]
    names = list(traj.layers)
    labelled = {round(i * (len(steps) - 1) / 7) for i in range(8)} if len(steps) > 8 else set(range(len(steps)))
    for k, step in enumerate(steps):
        ys = [traj.layers[n][k] for n in names]
        ax.plot(range(len(names)), ys, color=cmap((step - lo) / (hi - lo) if hi > lo else 0.0), linewidth=1.0,
                marker="o", markersize=2.5, label=f"step {step}" if k in labelled else None)
    for bound in (OVER_TRAINED, UNDER_TRAINED):
        ax.axhline(bound, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("layer index (matched by name across checkpoints)")
    ax.set_ylabel("alpha")
    ax.set_title("alpha by layer over training", fontsize=10)
    ax.legend(fontsize=7)
    return _finish(fig, path)


def metrics_over_steps(traj, metrics=None, *, ncols: int = 2, path: str | os.PathLike | None = None):
    """One panel per summary metric against the step (the mean α panel with its α = 2 floor)."""
    from .trajectory import ALPHA_FLOOR

    metrics = list(metrics or traj.metrics)
    ncols = max(1, min(ncols, len(metrics)))
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig = _figure(3.4 * ncols, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    steps = traj.steps
    for ax, metric in zip(axes, metrics):
        ys = [c.get(metric, math.nan) for c in traj.checkpoints]
        ax.plot(steps, ys, marker="o", markersize=3, color="C0")
        if metric == "alpha":
            ax.axhline(ALPHA_FLOOR, color="C3", linestyle=":", linewidth=1)
        ax.set_xlabel("step")
        ax.set_title(f"mean {metric}", fontsize=9)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    return _finish(fig, path)
