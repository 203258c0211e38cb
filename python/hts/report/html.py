"""Self-contained HTML reports: one file with inline CSS, inline SVG figures, the data as embedded JSON and a
few lines of plain JavaScript that sort the tables. No external URL, no framework; it prints well.

The size stays bounded whatever the model: ESD figures are drawn for the ``worst`` layers only (default 8),
the depth and histogram figures are scatter/step plots, and the per-layer table keeps a fixed set of columns.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Iterable

from . import plots

__all__ = ["MIN_CONFIDENT_EVALS", "TABLE_COLUMNS", "analysis_html", "comparison_html", "low_confidence",
           "worst_layers"]

#: Columns of the per-layer table (and of the embedded JSON rows), when present.
#: The verdict (alpha, warning, status, confidence) sits next to the name, so it is read without scrolling;
#: next to alpha: Lambda (``fit="TPL"``) and, when ``fit_tests`` ran, the plain-words reading of the fit
#: ("a power law fits (p = 0.41)", "lognormal fits better (R = -2.3, p = 0.02)").
TABLE_COLUMNS = ("layer_id", "longname", "slice_id", "role", "lora_scale", "layer_type", "alpha", "Lambda",
                 "fit_verdict", "delta_alpha", "warning", "status", "confidence", "pl_pvalue", "best_fit",
                 "num_evals", "shape", "N", "M", "rf", "alpha_weighted", "D", "xmin", "num_pl_spikes", "log_norm",
                 "log_spectral_norm", "log_alpha_norm", "stable_rank", "mp_softrank", "num_spikes",
                 "rand_distance", "lora_rank", "delta_alpha_weighted", "delta_log_norm", "delta_log_spectral_norm",
                 "delta_stable_rank", "base_key", "reason")

#: Columns of the "Base vs tuned" table (the update rows of an analysis with ``base=``).
CHANGE_COLUMNS = ("layer_id", "longname", "role", "lora_rank", "lora_scale", "base_key", "alpha", "base_alpha",
                  "tuned_alpha", "merged_alpha", "delta_alpha", "delta_alpha_weighted", "delta_log_norm",
                  "delta_log_spectral_norm", "delta_stable_rank")

#: Below this many eigenvalues a power-law fit has too few tail points to be trusted: such layers are marked
#: low-confidence and are not ranked among the worst layers.
MIN_CONFIDENT_EVALS = 50

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1800px;
 padding:0 1em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
.meta{color:#666}table{border-collapse:collapse;margin:.5em 0;font-size:12px}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f3f3f3}
td.s,th.s{text-align:left}table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.over-trained td{background:#fdecea}tr.under-trained td{background:#fff4e0}
tr.low-confidence td{color:#777;font-style:italic}
.legend{display:flex;flex-wrap:wrap;gap:.4em 1.2em;font-size:12px;margin:.3em 0}
.legend span::before{content:"";display:inline-block;width:1em;height:1em;margin-right:.35em;vertical-align:-2px;
 border:1px solid #bbb}.legend .over-trained::before{background:#fdecea}
.legend .under-trained::before{background:#fff4e0}.legend .low-confidence{color:#777;font-style:italic}
.legend .low-confidence::before{background:#fff}
.figs{display:flex;flex-wrap:wrap;gap:8px}.figs figure{margin:0;flex:1 1 460px;max-width:600px}
svg{max-width:100%;height:auto}.scroll{overflow-x:auto}
@media print{body{max-width:none;font-size:11px}.figs figure{break-inside:avoid}h2{break-after:avoid}
 .noprint{display:none}}
"""

_JS = """
(function(){
 function key(td){var v=td.getAttribute("data-v");var n=parseFloat(v);return v===""?null:(isNaN(n)?v:n);}
 document.querySelectorAll("table.sortable").forEach(function(table){
  table.querySelectorAll("th").forEach(function(th,i){
   th.addEventListener("click",function(){
    var asc=th.getAttribute("aria-sort")!=="ascending",body=table.tBodies[0];
    table.querySelectorAll("th").forEach(function(h){h.removeAttribute("aria-sort");});
    th.setAttribute("aria-sort",asc?"ascending":"descending");
    Array.prototype.slice.call(body.rows).sort(function(a,b){
     var x=key(a.cells[i]),y=key(b.cells[i]);
     if(x===null||y===null)return (x===null)-(y===null);
     var c=(typeof x==="number"&&typeof y==="number")?x-y:String(x).localeCompare(String(y));
     return asc?c:-c;}).forEach(function(r){body.appendChild(r);});
   });});});
 var data=JSON.parse(document.getElementById("hts-data").textContent);
 document.body.setAttribute("data-ready",String(Object.keys(data).length));
})();
"""


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(v: Any) -> str:
    text = html.escape(_fmt(v))
    numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
    data = repr(float(v)) if numeric and math.isfinite(float(v)) else ("" if numeric else text)
    return f'<td{"" if numeric else " class=s"} data-v="{html.escape(data)}">{text}</td>'


def _table(rows: list[dict], columns: Iterable[str], *, sortable: bool = True, row_class: str | None = None,
           table_id: str | None = None) -> str:
    columns = [c for c in columns if any(c in r for r in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cls = f' class="{html.escape(_row_classes(r))}"' if row_class else ""
        body.append(f"<tr{cls}>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>")
    kind = (' class="sortable"' if sortable else "") + (f' id="{table_id}"' if table_id else "")
    return (f'<div class="scroll"><table{kind}><thead><tr>{head}</tr></thead><tbody>'
            + "\n".join(body) + "</tbody></table></div>")


def low_confidence(row: dict) -> bool:
    """Whether an analysed row's fit rests on fewer than ``MIN_CONFIDENT_EVALS`` eigenvalues."""
    n = row.get("num_evals")
    return row.get("status") == "success" and _finite(n) and n < MIN_CONFIDENT_EVALS


def _row_classes(row: dict) -> str:
    return " ".join(c for c in (str(row.get("warning") or ""), "low-confidence" if low_confidence(row) else "")
                    if c)


def _display(row: dict) -> dict:
    """The row as the tables show it: with a ``confidence`` column ("low" under ``MIN_CONFIDENT_EVALS``)."""
    if row.get("status") != "success":
        return row
    return {**row, "confidence": f"low (<{MIN_CONFIDENT_EVALS} eigenvalues)" if low_confidence(row) else "ok"}


_LEGEND = ('<p class="legend"><span class="over-trained">over-trained: α &lt; 2</span>'
           '<span class="under-trained">under-trained: α &gt; 6</span>'
           f'<span class="low-confidence">low confidence: fewer than {MIN_CONFIDENT_EVALS} eigenvalues '
           "(not ranked among the worst layers)</span><span>white: 2 ≤ α ≤ 6</span></p>")


def _not_a_matrix(row: dict) -> bool:
    """A skipped 1-D tensor (BatchNorm/LayerNorm scale or shift, a bias): skipped by design, not a problem."""
    return row.get("status") == "skipped" and (
        str(row.get("reason", "")).startswith("1-D tensor")
        or "norm" in str(row.get("layer_type", "")).lower() or str(row.get("longname", "")).endswith("bias"))


def _collapsed_skips(rows: list[dict]) -> list[dict]:
    """The skipped and failed rows, with every skipped 1-D tensor (norm weights, biases) folded into one
    counted line (its layer types listed), so the rows that need attention are not buried."""
    plain = [r for r in rows if _not_a_matrix(r)]
    out = [r for r in rows if r["status"] != "success" and not _not_a_matrix(r)]
    if plain:
        kinds = sorted({str(r.get("layer_type") or "?") for r in plain})
        out.append({"layer_id": "", "longname": f"{len(plain)} tensors (BatchNorm/LayerNorm, bias and other 1-D)",
                    "layer_type": ", ".join(kinds), "shape": "", "status": "skipped",
                    "reason": "1-D tensors are not weight matrices (only 2-D and 4-D are analysed)"})
    return out


def _key_value_table(items: dict) -> str:
    return ("<table>" + "".join(f'<tr><th class=s>{html.escape(str(k))}</th>{_cell(v)}</tr>'
                                 for k, v in items.items()) + "</table>")


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def _inline_svg(fig, prefix: str) -> str:
    """The figure's SVG with every id prefixed, so several figures can share one page."""
    text = plots.svg_text(fig)
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)


def _figure_block(fig, prefix: str, caption: str) -> str:
    return f"<figure>{_inline_svg(fig, prefix)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _json_script(data: Any) -> str:
    text = json.dumps(_plain(data), allow_nan=False, separators=(",", ":"))
    text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
    return f'<script type="application/json" id="hts-data">{text}</script>'


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _page(title: str, body: str, data: Any) -> str:
    """The whole document, always encodable as UTF-8: a lone surrogate (a file name that is not UTF-8, a tensor
    name decoded from a JSON ``\\ud800`` escape) is shown as its Python escape, ``\\udcff``, as errors show it."""
    return _utf8_safe(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
            f"{_json_script(data)}\n<script>{_JS}</script></body></html>\n")


def _utf8_safe(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# -- one analysis --------------------------------------------------------------------------------------
def worst_layers(analysis, k: int = 8) -> list[dict]:
    """The ``k`` analysed rows farthest outside the band 2 <= alpha <= 6 (distance max(α − 6, 2 − α, 0)),
    then by descending alpha (a larger alpha is a less trained layer). Low-confidence rows (fewer than
    ``MIN_CONFIDENT_EVALS`` eigenvalues, see ``low_confidence``) are not ranked."""
    rows = [r for r in analysis.analysed if r["status"] == "success" and _finite(r.get("alpha"))
            and not low_confidence(r)]
    rows.sort(key=lambda r: (-max(r["alpha"] - 6.0, 2.0 - r["alpha"], 0.0), -r["alpha"]))
    return rows[:k]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parameters(shape: Any) -> int:
    try:
        return math.prod(int(s) for s in str(shape).split("x")) if shape else 0
    except ValueError:
        return 0


def _inventory(rows: list[dict]) -> list[dict]:
    """Tensors and parameters per layer type (one row per tensor: slices of one layer count once)."""
    seen, out = set(), {}
    for r in rows:
        key = (r.get("layer_id"), r.get("longname"))
        if key in seen:
            continue
        seen.add(key)
        entry = out.setdefault(r.get("layer_type") or "?", {"layer_type": r.get("layer_type") or "?",
                                                             "tensors": 0, "analysed": 0, "skipped": 0,
                                                             "failed": 0, "parameters": 0})
        entry["tensors"] += 1
        entry[{"success": "analysed", "failed": "failed"}.get(r["status"], "skipped")] += 1
        entry["parameters"] += _parameters(r.get("shape"))
    total = {"layer_type": "total", **{k: sum(e[k] for e in out.values())
                                       for k in ("tensors", "analysed", "skipped", "failed", "parameters")}}
    return list(out.values()) + [total]


def analysis_html(analysis, *, title: str | None = None, source: str | None = None, worst: int = 8) -> str:
    """The HTML page of one analysis: inventory, summary and label counts, alpha by depth and its
    histogram, the ``worst`` layers (see ``worst_layers``) with their ESD figures, the full per-layer table
    (click a header to sort), skipped and failed layers with the reason, the options and hts version."""
    title = title or ("hts report" + (f": {source}" if source else ""))
    rows = analysis.rows
    counts, summary = analysis.counts, analysis.summary
    version = analysis.options.get("hts_version", "")
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">hts {html.escape(str(version))}'
             + (f" · source: {html.escape(str(source))}" if source else "") + "</p>",
             "<h2>Summary</h2>", '<div class="figs"><div>', _key_value_table(summary), "</div><div>",
             _key_value_table(counts), "</div></div>",
             "<h2>Model inventory</h2>", _table(_inventory(rows), ("layer_type", "tensors", "analysed", "skipped",
                                                                    "failed", "parameters"), sortable=False)]
    by_role = getattr(analysis, "summary_by_role", {})
    if "change" in by_role:
        parts += _changes_section(analysis, by_role)
    if analysis.analysed:
        parts += ["<h2>Alpha by depth</h2>", '<div class="figs">',
                  _figure_block(plots.alpha_by_layer(analysis), "depth-", "alpha of each analysed matrix in "
                                "model order; dotted lines at α = 2 and 6"),
                  _figure_block(plots.alpha_histogram(analysis), "hist-", "distribution of alpha"), "</div>"]
    bad = worst_layers(analysis, worst)
    if bad:
        parts += [f"<h2>Worst {len(bad)} layers by alpha</h2>",
                  f"<p>Farthest outside 2 ≤ α ≤ 6, then largest α; layers with fewer than {MIN_CONFIDENT_EVALS} "
                  "eigenvalues are not ranked.</p>", _LEGEND,
                  _table([_display(r) for r in bad], TABLE_COLUMNS, row_class="warning"), '<div class="figs">']
        for i, r in enumerate(bad):
            fig = plots.esd(analysis, r["layer_id"], slice_id=r.get("slice_id"))
            parts.append(_figure_block(fig, f"esd{i}-", f"ESD of layer {r['layer_id']} {r['longname']}"))
        parts.append("</div>")
    parts += ["<h2>All layers</h2>", "<p class=noprint>Click a column header to sort.</p>", _LEGEND,
              _table([_display(r) for r in rows if r["status"] != "skipped"], TABLE_COLUMNS, row_class="warning",
                     table_id="layers")]
    left_out = _collapsed_skips(rows)
    if left_out:
        parts += ["<h2>Skipped and failed layers</h2>",
                  _table(left_out, ("layer_id", "longname", "layer_type", "shape", "status", "reason"))]
    parts += ["<h2>Options</h2>", _key_value_table({k: _fmt(v) if not isinstance(v, (list, tuple)) else
                                                   ", ".join(map(str, v)) for k, v in analysis.options.items()})]
    data = {"source": source, "options": analysis.options, "summary": summary, "counts": counts,
            **({"summary_by_role": by_role} if by_role else {}),
            "layers": [{c: r[c] for c in TABLE_COLUMNS if c in r} for r in rows]}
    return _page(title, "\n".join(parts), data)


def _changes_section(analysis, by_role: dict) -> list[str]:
    """Base vs tuned: what each row is (role), the means per role and of each change, the update rows."""
    options = analysis.options
    explain = ("Each update row (role <b>lora_delta</b>: ΔW = s·B·A of a LoRA target, scale s in lora_scale; "
               "<b>delta</b>: W_tuned − W_base) has its own metrics; <b>base</b> rows are W, <b>merged</b> rows "
               "W + s·B·A. delta_k = k(tuned or merged) − k(base). The summary above is over the update rows.")
    means = [{"role": role, **values} for role, values in by_role.items() if role != "change"]
    updates = [r for r in analysis.rows if r.get("role") in ("delta", "lora_delta") and r["status"] != "skipped"]
    from .diff_plots import alpha_change_by_layer

    figure = ([_figure_block(alpha_change_by_layer(analysis), "change-", "alpha of each updated matrix in the "
                             "base (circles) and after fine-tuning (triangles)")] if updates else [])
    return ["<h2>Base vs tuned</h2>",
            f"<p>Base: {html.escape(str(options.get('base', '')))}. {explain}</p>",
            _table(means, ("role",) + tuple(k for k in next(iter(by_role.values()))), sortable=False),
            "<p>Mean change over the update rows:</p>", _key_value_table(by_role.get("change", {})),
            '<div class="figs">', *figure, "</div>",
            _table(updates, CHANGE_COLUMNS, table_id="changes")]


# -- a series ------------------------------------------------------------------------------------------
def comparison_html(comparison, *, title: str | None = None) -> str:
    """The HTML page of a series comparison: the statistics per series and metric, each metric against
    accuracy (one panel per metric), the models with their summaries, and, for models analysed from
    weights, alpha by depth and the alpha histograms overlaid."""
    title = title or "hts series comparison"
    stats_cols = ("series", "metric", "n", "rmse", "r2", "kendall_tau", "kendall_p", "spearman_rho", "slope",
                  "slope_p", "intercept", "trend")
    model_cols = ["series", "model", "accuracy"] + [m for m in comparison.metrics]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="meta">{len(comparison.models)} models in {len(comparison.series)} series: '
             f"{html.escape(', '.join(comparison.series))}</p>",
             "<h2>Metric against accuracy</h2>",
             "<p>OLS fit of accuracy on each metric (RMSE and R² on the fitted points, the slope's two-sided "
             "p-value), Kendall τ-b with its two-sided p-value (exact without ties) and Spearman ρ between metric "
             "and accuracy; the trend says whether accuracy rises or falls with the metric (no trend for "
             "|τ| &lt; 0.2).</p>",
             *[f"<p>Accuracy: {html.escape(s)}.</p>" for s in comparison.accuracy_sources],
             *[f'<p class="warn">Warning: {html.escape(w)}.</p>' for w in comparison.warnings],
             _table(comparison.rows, stats_cols),
             '<div class="figs">', _figure_block(plots.series(comparison), "series-", "one point per model; "
                                                 "least-squares line per series"), "</div>",
             "<h2>Models</h2>", _table(comparison.models, model_cols)]
    if comparison.analyses:
        parts += ["<h2>Layers</h2>", '<div class="figs">',
                  _figure_block(plots.alpha_by_layer(comparison.analyses), "depth-", "alpha by depth"),
                  _figure_block(plots.alpha_histogram(comparison.analyses), "hist-", "alpha histograms"),
                  "</div>"]
    return _page(title, "\n".join(parts), comparison.to_dict())
