"""The self-contained HTML page of a checkpoint trajectory: flags, the summaries per checkpoint, the metrics
against the step, α by layer over training and the table of α per layer and step."""

from __future__ import annotations

import html

from .html import _figure_block, _page, _table
from .trajectory import ALPHA_FLOOR
from . import trajectory_plots

__all__ = ["trajectory_html"]


def trajectory_html(traj, *, title: str | None = None) -> str:
    title = title or "hts checkpoint trajectory"
    steps = traj.steps
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">{len(traj.checkpoints)} checkpoints, steps {steps[0]} to {steps[-1]}; no '
             "accuracies: the metrics over training, not a trend against accuracy.</p>"]
    parts += [f'<p class="warn">Flag: {html.escape(f)}.</p>' for f in traj.flags]
    if not traj.flags:
        parts.append(f"<p>Mean alpha stays at or above {ALPHA_FLOOR:g} at every step.</p>")
    parts += ["<h2>Checkpoints</h2>", _table(traj.checkpoints, traj._columns()),
              '<div class="figs">',
              _figure_block(trajectory_plots.metrics_over_steps(traj), "steps-", "summary metrics by step"),
              _figure_block(trajectory_plots.alpha_by_layer_over_steps(traj), "layers-",
                            "alpha by layer, one line per checkpoint (dark: early, yellow: late)"),
              "</div>",
              "<h2>Alpha per layer and step</h2>",
              _table([{"layer": name, **{f"step {s}": a for s, a in zip(steps, alphas)}}
                      for name, alphas in traj.layers.items()], ["layer", *(f"step {s}" for s in steps)])]
    return _page(title, "\n".join(parts), traj.to_dict())
