"""Print the README's headline speed section from ``bench/results/latest.json`` (written by ``bench/run.py``).

    python bench/headline.py [bench/results/latest.json]

Only formats what the last run measured: the issue's goals with the worst case of each, and the end-to-end
comparison per real model.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import fmt, fmt_unit, markdown_table  # noqa: E402

END_TO_END = ("model", "layers", "hts 2t (s)", "WW default (s)", "WW default / hts 2t", "eigenvalue floor 1t (s)",
              "hts 2t ÷ floor 1t", "max rel. alpha dev.")


def headline(data: dict) -> str:
    m = data["machine"]
    mark = {True: "yes", False: "no", None: "not measured"}
    goals = markdown_table(["goal", "target", "measured (worst case)", "met"],
                           [[g["goal"], g["target"], fmt_unit(g["measured"], g["kind"]), mark[g["met"]]]
                            for g in data["goals"]])
    parts = [textwrap.fill(f"Measured by `python bench/run.py --{data['mode']}` on {data['date'][:10]}: {m['cpu']}, "
             f"{m['usable_cores']} cores, shared with other jobs (load {m['load_average_1min']}–"
             f"{data['load_average_1min_end']}; timings vary 10–30 % between runs). Full report, machine and "
             "every contender: [bench/results/latest.md](bench/results/latest.md).", 115), "", goals]
    e2e = next((s["tables"][0] for s in data["sections"] if s["name"] == "analyze" and s["tables"]), None)
    if e2e:
        names = [c[0] for c in e2e["columns"]]
        keep = [names.index(c) for c in END_TO_END if c in names]
        rows = [[fmt(r[i], e2e["columns"][i][1]) for i in keep] for r in e2e["rows"]]
        parts += ["", markdown_table([names[i] for i in keep], rows)]
    return "\n".join(parts) + "\n"


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "results", "latest.json")
    with open(path) as f:
        print(headline(json.load(f)), end="")


if __name__ == "__main__":
    main()
