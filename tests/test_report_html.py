"""HTML reports: well-formed, self-contained (no external URL), bounded in size, and rendered by a real browser
(headless Chromium, when installed) without console errors; the table sort works there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import hts

pytest.importorskip("matplotlib", reason="HTML reports draw with matplotlib (the plot extra)")
from _report_helpers import check_page  # noqa: E402

from hts.report.html import worst_layers  # noqa: E402

@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(11)
    w = {f"block{i}.fc.weight": rng.standard_t(2.5 + i, size=(300, 100)) for i in range(4)}
    w["conv.weight"] = rng.standard_normal((40, 20, 3, 3))
    w["tiny.weight"] = rng.standard_normal((5, 3))
    w["norm.weight"] = rng.standard_normal(16)
    return hts.analyze(w, mp_fit=True)


def test_analysis_page_is_well_formed_and_self_contained(analysis, tmp_path):
    text = analysis.to_html(tmp_path / "r.html", title="toy <model>", worst=3)
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == text
    checker = check_page(text)
    data = json.loads(checker.json_text)
    assert data["summary"]["alpha"] == pytest.approx(analysis.summary["alpha"])
    assert len(data["layers"]) == len(analysis.rows)
    assert "toy &lt;model&gt;" in text and hts.__version__ in text
    assert text.count("<svg") == 2 + 3  # depth + histogram + the 3 worst ESDs
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # figures' ids are prefixed, so none collide
    for row in analysis.rows:
        if row["status"] == "skipped":
            assert row["reason"] and row["longname"] in text
    assert "Skipped and failed layers" in text and "Model inventory" in text


def test_worst_layers_order(analysis):
    rows = worst_layers(analysis, 10)
    outside = [max(r["alpha"] - 6, 2 - r["alpha"], 0) for r in rows]
    assert outside == sorted(outside, reverse=True)
    inside = [r["alpha"] for r, o in zip(rows, outside) if o == 0]
    assert inside == sorted(inside, reverse=True)
    assert len(worst_layers(analysis, 2)) == 2


def test_size_is_bounded_for_many_layers():
    """A 7B-like layer count (32 blocks x 7 matrices + embeddings): ESD figures only for the worst layers."""
    rng = np.random.default_rng(5)
    w = {f"model.layers.{i}.{n}.weight": rng.standard_normal((96, 60))
         for i in range(32) for n in ("q", "k", "v", "o", "gate", "up", "down")}
    w["embed.weight"] = rng.standard_normal((128, 40))
    a = hts.analyze(w)
    text = a.to_html()
    check_page(text)
    assert len(a.analysed) == 225
    assert len(text.encode()) < 2_000_000 and text.count("<svg") == 2 + 8


def test_comparison_page(analysis, tmp_path):
    comparison = hts.compare({"a": analysis, "b": {"alpha": 3.0, "log_norm": 2.0}, "c": {"alpha": 2.5, "log_norm": 1.0}},
                             {"a": 70.0, "b": 72.0, "c": 75.0})
    text = comparison.to_html(tmp_path / "s.html")
    data = json.loads(check_page(text).json_text)
    assert [m["model"] for m in data["models"]] == ["a", "b", "c"]
    assert text.count("<svg") == 3  # series panels + depth + histogram of the analysed model


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

SORT_CHECK = """<script>
(function(){var t=document.getElementById("layers"),h=t.tHead.rows[0].cells,i=-1;
for(var k=0;k<h.length;k++)if(h[k].textContent==="alpha")i=k;h[i].click();
var v=Array.prototype.map.call(t.tBodies[0].rows,function(r){return parseFloat(r.cells[i].getAttribute("data-v"));});
var ok=v.every(function(x,j){return j===0||v[j-1]<=x;});h[i].click();
var w=Array.prototype.map.call(t.tBodies[0].rows,function(r){return parseFloat(r.cells[i].getAttribute("data-v"));});
ok=ok&&w.every(function(x,j){return j===0||w[j-1]>=x;})&&w.length>1;
document.title="sort:"+(ok?"ok":"bad")+" ready:"+document.body.getAttribute("data-ready");})();
</script></body>"""


def _chromium(args, tmp_path):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_renders_in_chromium_without_console_errors(analysis, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(analysis.to_html(worst=4).replace("</body>", SORT_CHECK), encoding="utf-8")
    out = _chromium(["--virtual-time-budget=3000", "--dump-dom", page.as_uri()], tmp_path)
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Error" in line], console
    assert "<title>sort:ok ready:5</title>" in out.stdout
    shot = tmp_path / "report.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], tmp_path)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# -- issue 18 item 14: the report a person looks at ------------------------------------------------------
def _header(text: str, table_id: str = "layers") -> list[str]:
    table = text[text.index(f'id="{table_id}"'):]
    head = table[:table.index("</thead>")]
    return re.findall(r"<th>([^<]*)</th>", head)


def test_status_and_warning_sit_next_to_alpha(analysis):
    head = _header(analysis.to_html())
    i = head.index("alpha")
    assert {"warning", "status"} <= set(head[i + 1:i + 4]), head
    assert head.index("alpha") < 6  # read without horizontal scrolling


def test_colour_legend_explains_the_row_colours(analysis):
    text = analysis.to_html()
    legend = text[text.index('class="legend"'):]
    legend = legend[:legend.index("</p>")]
    for cls in ("over-trained", "under-trained", "low-confidence"):
        assert f'class="{cls}"' in legend
    assert "α &lt; 2" in legend and "α &gt; 6" in legend


def test_layers_with_few_eigenvalues_are_low_confidence_and_not_ranked():
    rng = np.random.default_rng(3)
    # a 200x20 Cauchy-like matrix: extreme alpha, but only 20 eigenvalues
    w = {"few.weight": rng.standard_cauchy(size=(200, 20)),
         **{f"block{i}.weight": rng.standard_normal((300, 120)) for i in range(3)}}
    a = hts.analyze(w)
    few = next(r for r in a.rows if r["longname"] == "few")
    assert few["status"] == "success" and few["num_evals"] < 50
    ranked = worst_layers(a, 10)
    assert "few" not in [r["longname"] for r in ranked] and len(ranked) == 3
    text = a.to_html()
    row = re.search(r'<tr class="([^"]*)"><td data-v="[^"]*">\d+</td><td class=s data-v="few">', text)
    assert row and "low-confidence" in row.group(1).split()
    assert "low (&lt;50 eigenvalues)" in text


def test_skipped_one_dimensional_tensors_collapse_into_one_counted_line():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(*[m for _ in range(6) for m in (torch.nn.Linear(64, 64), torch.nn.LayerNorm(64))],
                              torch.nn.BatchNorm1d(64))
    a = hts.analyze(net)
    plain = [r for r in a.rows if r["status"] == "skipped"]
    assert len(plain) >= 7
    text = a.to_html()
    section = text[text.index("Skipped and failed layers"):]
    section = section[:section.index("</table>")]
    assert section.count("<tr>") == 2  # the header and one counted line
    assert f"{len(plain)} tensors" in section
