"""``Study``: the result of ``hts.study`` — every layer of every model, a summary row per model, the
comparison of each series against its reported accuracies, and one HTML page for all of it."""

from __future__ import annotations

import json
import math
from typing import Any

from .._json import jsonable

__all__ = ["Study"]


class Study:
    """The result of ``hts.study``: plain data.

    Attributes
    ----------
    entries : list of CatalogEntry
        The catalog, in its order.
    analyses : dict
        model name → ``hts.Analysis`` (rows in model order) for every model whose tasks all finished.
    failures : list of dict
        ``{"model", "part", "reason"}`` per task that failed or model that could not be opened.
    missing : list of str
        Models not (fully) analysed because the run stopped early (``stopped`` says why).
    stopped : str
        "" when the run went to the end; "time budget" or "interrupted" otherwise.
    reused : int
        Tasks whose results came from the store.
    compute_seconds : float
        The tasks' own ``hts.analyze`` seconds, summed (as measured where they ran; reused tasks count with
        the seconds they took when computed).
    """

    def __init__(self, entries, analyses: dict, failures: list, missing: list, stopped: str, reused: int,
                 tasks: int, options: dict, store: str, compute_seconds: float = 0.0) -> None:
        self.entries = list(entries)
        self.analyses = analyses
        self.failures = failures
        self.missing = missing
        self.stopped = stopped
        self.reused = reused
        self.tasks = tasks
        self.options = options
        self.store = store
        self.compute_seconds = compute_seconds

    @property
    def complete(self) -> bool:
        """Every model analysed, no failure."""
        return not self.failures and not self.missing

    def model_rows(self) -> list[dict]:
        """One dict per catalog model: name, series, path, accuracy, step, tags, status, the summary metrics
        (``Analysis.summary``) and counts."""
        out = []
        for e in self.entries:
            row: dict[str, Any] = {"model": e.name, "series": e.series, "path": e.path, "accuracy": e.accuracy,
                                   "step": e.step, "tags": e.tags}
            row.update(e.extra)
            a = self.analyses.get(e.name)
            if a is None:
                failed = [f["reason"] for f in self.failures if f["model"] == e.name]
                row["status"] = "failed" if failed else "not run"
                row["reason"] = failed[0] if failed else self.stopped
            else:
                row["status"] = "analysed"
                row["reason"] = ""
                row.update(a.summary)
                row.update(a.counts)
            out.append(row)
        return out

    @property
    def models(self):
        """pandas DataFrame of ``model_rows()``."""
        from .._frames import table

        return table(self.model_rows())

    @property
    def layers(self):
        """pandas DataFrame of every row of every analysed model, with ``model`` and ``series`` first."""
        import pandas as pd

        from .._frames import text_column

        frames = []
        for e in self.entries:
            a = self.analyses.get(e.name)
            if a is not None:
                df = a.details
                df.insert(0, "series", text_column(e.series, len(df)))
                df.insert(0, "model", text_column(e.name, len(df)))
                frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def comparisons(self) -> dict:
        """series → ``hts.Comparison`` of its analysed models against their accuracies, for every series with
        at least two analysed models that all have an accuracy (the others have no accuracy statistics)."""
        from ..report.compare import compare

        out = {}
        for series in dict.fromkeys(e.series for e in self.entries):
            members = [e for e in self.entries if e.series == series and e.name in self.analyses]
            if len(members) >= 2 and all(e.accuracy is not None for e in members):
                out[series] = compare({e.name: self.analyses[e.name] for e in members},
                                      {e.name: e.accuracy for e in members}, series=series)
        return out

    def to_dict(self) -> dict:
        return jsonable({"options": self.options, "store": self.store, "stopped": self.stopped,
                         "reused_tasks": self.reused, "tasks": self.tasks, "models": self.model_rows(),
                         "failures": self.failures,
                         "layers": {name: a.rows for name, a in self.analyses.items()}})

    def to_json(self, path: str | None = None, **kwargs) -> str:
        text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_html(self, path: str | None = None, *, title: str | None = None) -> str:
        """One self-contained HTML page for the study (needs matplotlib): models, failures, per series the
        metrics against accuracy (the seed paper's Fig. 2) and alpha by depth (its Fig. 3)."""
        from ..report.study_html import study_html

        text = study_html(self, title=title)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def format(self) -> str:
        """A plain-text table of the models (what ``hts zoo`` prints)."""
        cols = ("model", "series", "accuracy", "status", "alpha", "alpha_weighted", "log_norm",
                "log_spectral_norm", "analysed", "failed")
        rows = self.model_rows()
        cells = [[_text(r.get(c)) for c in cols] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<hts.Study: {len(self.analyses)}/{len(self.entries)} models analysed, {len(self.failures)} "
                f"failures{', stopped: ' + self.stopped if self.stopped else ''}>")


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v)
