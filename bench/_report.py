"""What a workload hands back (tables of raw numbers, goals) and how it is written as Markdown and JSON.

A workload's ``run(mode)`` returns a :class:`Section`. Cells hold raw numbers (seconds, ratios); each column
names its kind, and only rendering formats them, so the JSON keeps full precision and the Markdown stays short.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Optional

# Column kinds: how a raw cell value is shown.
KINDS = ("text", "ms", "s", "x", "r", "e", "int", "mb")


@dataclasses.dataclass
class Table:
    """A titled table: ``columns`` is a list of (name, kind); ``rows`` holds raw values (None: not measured)."""

    title: str
    columns: list
    rows: list = dataclasses.field(default_factory=list)
    notes: str = ""

    def add(self, *cells: Any) -> None:
        """Append one row (as many cells as columns) and echo it, so long runs show progress."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))
        print("  " + " | ".join(fmt(c, k) for c, (_, k) in zip(cells, self.columns)), flush=True)


@dataclasses.dataclass
class Goal:
    """One of the issue's goals, evaluated on this run: ``measured`` is the worst case over ``scope``."""

    goal: str
    target: str
    measured: Optional[float]
    kind: str
    met: Optional[bool]
    scope: str = ""


@dataclasses.dataclass
class Section:
    """One workload's results."""

    name: str
    title: str
    tables: list = dataclasses.field(default_factory=list)
    goals: list = dataclasses.field(default_factory=list)
    notes: str = ""
    failed: bool = False


def fmt(value: Any, kind: str) -> str:
    """Render one cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "text":
        return str(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "ms":
        ms = value * 1e3
        return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"
    if kind == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if kind == "x":
        return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"
    if kind == "r":
        return f"{value:.2f}"
    if kind == "e":
        return f"{value:.1e}"
    if kind == "mb":
        return f"{value:.0f}"
    raise ValueError(f"unknown column kind {kind!r}")


def fmt_unit(value: Any, kind: str) -> str:
    """A cell with its unit spelled out (for goals, which mix kinds in one column)."""
    text = fmt(value, kind)
    return text + {"ms": " ms", "s": " s", "mb": " MB"}.get(kind, "") if text != "—" else text


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    """num / den, or None when either is missing."""
    if num is None or den is None or den == 0:
        return None
    return num / den


def worst(values: list, *, largest: bool) -> Optional[float]:
    """The worst of the measured values (largest or smallest), ignoring missing ones."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    return max(vals) if largest else min(vals)


def goal_at_most(goal: str, target: float, values: list, kind: str, scope: str) -> Goal:
    """A goal met when every value is at most ``target`` (e.g. a time ratio to a floor)."""
    w = worst(values, largest=True)
    return Goal(goal, f"≤ {fmt_unit(target, kind)}", w, kind, None if w is None else w <= target, scope)


def goal_at_least(goal: str, target: float, values: list, kind: str, scope: str) -> Goal:
    """A goal met when every value is at least ``target`` (e.g. a speed-up)."""
    w = worst(values, largest=False)
    return Goal(goal, f"≥ {fmt_unit(target, kind)}", w, kind, None if w is None else w >= target, scope)


def markdown_table(header: list, rows: list) -> str:
    """A GitHub Markdown table from already formatted strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def table_markdown(t: Table) -> str:
    """One Table as a Markdown block: heading, table, notes."""
    rows = [[fmt(c, k) for c, (_, k) in zip(r, t.columns)] for r in t.rows]
    text = f"### {t.title}\n\n" + (markdown_table([n for n, _ in t.columns], rows) if rows else "(no rows)")
    return text + (f"\n\n{t.notes}\n" if t.notes else "\n")


def goals_markdown(goals: list) -> str:
    """The goals of the issue as one table: goal, target, worst measured value, met."""
    mark = {True: "yes", False: "**no**", None: "not measured"}
    rows = [[g.goal, g.target, fmt_unit(g.measured, g.kind), mark[g.met], g.scope] for g in goals]
    return markdown_table(["goal", "target", "measured (worst case)", "met", "over"], rows)


def section_markdown(s: Section) -> str:
    """A workload's part of the report."""
    parts = [f"## {s.title}\n"]
    if s.notes:
        parts.append(s.notes + "\n")
    parts += [table_markdown(t) for t in s.tables]
    return "\n".join(parts)


def to_jsonable(obj: Any) -> Any:
    """Sections and tables as plain data; NaN/inf become null (strict JSON)."""
    if dataclasses.is_dataclass(obj):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item"):  # numpy scalars
        return to_jsonable(obj.item())
    return obj


def dump_json(data: Any, path: str) -> None:
    """Write strict JSON (no NaN), indented."""
    with open(path, "w") as f:
        json.dump(to_jsonable(data), f, indent=1, allow_nan=False)
        f.write("\n")
