"""hts.analyze(fit_tests=...): the goodness-of-fit columns equal the module functions on the row's ESD."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hts
from hts.goodness import power_law_pvalue
from hts.likelihood_ratio import ALTERNATIVES, compare_power_law


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(3)
    return {"a.weight": rng.standard_t(3, size=(300, 120)), "b.weight": rng.normal(size=(200, 90)),
            "tiny.weight": rng.normal(size=(4, 3))}


def test_columns_match_the_modules(model):
    analysis = hts.analyze(model, fit_tests=60, seed=5)
    d = analysis.details.set_index("name")
    assert "pl_pvalue" not in hts.analyze(model).details.columns
    for name in ("a", "b"):
        row = d.loc[name]
        ev = analysis.esd(int(row["layer_id"]))
        assert row["pl_pvalue"] == power_law_pvalue(ev, replicates=60, seed=5).p
        tests = compare_power_law(ev, row["xmin"])
        for alt in ALTERNATIVES:
            assert (row[f"R_{alt}"], row[f"p_{alt}"]) == (tests[alt].R, tests[alt].p)
        significant = [a for a in ALTERNATIVES if tests[a].R < 0 and tests[a].p <= 0.05]
        assert row["best_fit"] == (significant[0] if significant else "power_law")
        assert row["fit_verdict"] and ("p = " in row["fit_verdict"])
    assert math.isnan(d.loc["tiny", "pl_pvalue"])  # skipped by the size gate: NaN, not a number made up
    again = hts.analyze(model, fit_tests=60, seed=5, threads=1).details
    assert list(again["pl_pvalue"].fillna(-1)) == list(analysis.details["pl_pvalue"].fillna(-1))


def test_bad_value(model):
    with pytest.raises(ValueError, match="fit_tests"):
        hts.analyze(model, fit_tests=-3)


def test_html_report_shows_lambda_and_the_verdict_next_to_alpha(tmp_path):
    """Issue 17 part A item 4: with fit="TPL" and fit_tests the layer table reads alpha, Lambda, the verdict."""
    pytest.importorskip("matplotlib", reason="HTML reports need matplotlib")
    import html as html_lib
    import re

    rng = np.random.default_rng(4)
    path = tmp_path / "m.npz"
    np.savez(path, **{"a.weight": rng.standard_t(3, size=(150, 60)), "b.weight": rng.normal(size=(120, 50))})
    analysis = hts.analyze(str(path), fit="TPL", fit_tests=20)
    text = analysis.to_html()
    header = re.search(r"<table class=\"sortable\" id=\"layers\"><thead><tr>(.*?)</tr>", text)
    heads = re.findall(r"<th>(.*?)</th>", header.group(1) if header else text)
    assert heads[heads.index("alpha"):heads.index("alpha") + 3] == ["alpha", "Lambda", "fit_verdict"]
    for row in analysis.analysed:
        assert row["fit_verdict"] and html_lib.escape(row["fit_verdict"]) in text
    plain = hts.analyze(str(path)).to_html()
    assert "<th>Lambda</th>" not in plain and "<th>fit_verdict</th>" not in plain
