"""hts.compare: inputs, statistics table, and the published Table 1 of Martin, Peng & Mahoney (2021) from the
ww-trends data that ships with hts (hts.datasets)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import hts
from _report_helpers import WW_TRENDS
from hts.report.compare import Comparison, series_rows

# paper_table1.csv's statistic names -> Comparison row keys
STATS = {"rmse": "rmse", "r2": "r2", "kendall_tau": "kendall_tau"}
# The data README: the ResNet log_alpha_norm R² printed as 0.9 is 0.95 in the authors' own figure.
PRINTED_TYPO = {("ResNet", "r2", "log_alpha_norm"): 0.95}


def _printed_tolerance(printed: float) -> float:
    """Half a unit in the last printed digit: two significant figures (0.56, 2.4, 0.11, -1.0)."""
    return 0.5 * 10 ** (math.floor(math.log10(abs(printed))) - 1) + 1e-9


def test_reproduces_published_table1():
    result = hts.compare(WW_TRENDS / "series_models.csv")
    assert result.series == ["VGG", "ResNet", "DenseNet", "ResNet-1K"]
    assert {s: sum(m["series"] == s for m in result.models) for s in result.series} == {
        "VGG": 8, "ResNet": 5, "DenseNet": 4, "ResNet-1K": 19}
    with open(WW_TRENDS / "paper_table1.csv", newline="") as f:
        table = list(csv.DictReader(f))
    checked = 0
    for line in table:
        for metric in ("log_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm"):
            printed = PRINTED_TYPO.get((line["series"], line["stat"], metric), float(line[metric]))
            ours = result.stat(line["series"], metric)[STATS[line["stat"]]]
            assert abs(ours - printed) <= _printed_tolerance(printed), (line["series"], line["stat"], metric, ours)
            checked += 1
    assert checked == 48


def test_resnet_1k_2021_errors_do_not_reproduce_the_table():
    """The data README: Table 1 matches the 2020 errors, not the later ones (a guard that the column matters)."""
    old = hts.compare(WW_TRENDS / "series_models.csv").stat("ResNet-1K", "alpha_weighted")
    new = hts.compare(WW_TRENDS / "series_models.csv", error_column="top1_error_pct_2021").stat(
        "ResNet-1K", "alpha_weighted")
    assert old["rmse"] == pytest.approx(1.8, abs=0.05)
    assert new["rmse"] != pytest.approx(old["rmse"], abs=0.01)


def test_blog_claim_vgg_reverses():
    """Lower mean alpha goes with higher accuracy, except VGG (the accompanying blog post)."""
    result = hts.compare(WW_TRENDS / "series_models.csv")
    assert result.stat("VGG", "alpha")["trend"] == "accuracy rises with the metric"
    assert result.stat("ResNet-1K", "alpha")["trend"] == "no trend"  # τ = −0.03: too weak to call
    assert result.stat("VGG", "alpha_weighted")["trend"] == "accuracy falls with the metric"


def _summaries():
    rng = np.random.default_rng(3)
    out = {}
    for i in range(5):
        out[f"m{i}"] = {"alpha": 4.0 - 0.3 * i + rng.normal(0, 0.05), "log_norm": 1.0 + 0.1 * i,
                        "alpha_weighted": 3.0 - 0.2 * i}
    return out


def test_summaries_and_mapping_accuracy():
    acc = {f"m{i}": 70.0 + i for i in range(5)}
    result = hts.compare(_summaries(), acc, series="toy")
    assert isinstance(result, Comparison)
    assert result.metrics == ["alpha", "alpha_weighted", "log_norm"]
    r = result.stat("toy", "log_norm")
    assert r["n"] == 5 and r["r2"] == pytest.approx(1.0) and r["slope"] == pytest.approx(10.0)
    assert r["trend"] == "accuracy rises with the metric"
    assert result.stat("toy", "alpha_weighted")["trend"] == "accuracy falls with the metric"
    assert result.accuracy_source == "the accuracies given" and result.notes == []
    assert result.stat("toy", "alpha")["kendall_tau"] == -1.0
    assert "toy" in result.format() and "log_norm" in repr(result.table)


def test_analyses_from_weights_and_objects(rng):
    models, acc = {}, {}
    for i, df in enumerate((2.5, 4.0, 8.0)):
        models[f"t{df}"] = {f"l{j}.weight": rng.standard_t(df, size=(200, 80)) for j in range(3)}
        acc[f"t{df}"] = 60.0 + 5 * i
    result = hts.compare(models, acc, series="student-t")
    assert set(result.analyses) == set(models)
    again = hts.compare(result.analyses, acc)  # Analysis objects are not re-analysed
    for metric in ("alpha", "log_norm"):
        assert again.stat("series", metric)["kendall_tau"] == result.stat("student-t", metric)["kendall_tau"]
    assert len(result.models) == 3 and all("alpha" in m for m in result.models)


def test_accuracy_csv_and_outputs(tmp_path):
    path = tmp_path / "acc.csv"
    path.write_text("model,top1_error_pct\n" + "".join(f"m{i},{30 - i}\n" for i in range(5)))
    result = hts.compare(_summaries(), path)
    assert [m["accuracy"] for m in result.models] == [70.0, 71.0, 72.0, 73.0, 74.0]
    data = json.loads(result.to_json(tmp_path / "c.json"))
    assert set(data) == {"models", "rows", "accuracy_source", "notes"} and len(data["rows"]) == 3
    assert result.accuracy_source == f"100 − column 'top1_error_pct' (an error in %) of {path}"
    assert "accuracy: 100 − column 'top1_error_pct'" in result.format()
    result.to_csv(tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["metric"] == "alpha" and float(rows[0]["r2"]) == pytest.approx(result.rows[0]["r2"])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no accuracy for model 'm0'"):
        hts.compare(_summaries(), {})
    with pytest.raises(TypeError, match="accuracy must be"):
        hts.compare(_summaries(), [1, 2])
    bad = tmp_path / "s.csv"
    bad.write_text("model,alpha\na,1\n")
    with pytest.raises(ValueError, match="no accuracy column"):
        hts.compare(bad)


def test_nan_metric_and_tiny_series():
    rows = series_rows([{"series": "s", "model": "a", "accuracy": 1.0, "alpha": 3.0},
                        {"series": "s", "model": "b", "accuracy": 2.0, "alpha": float("nan")}])
    assert rows[0]["n"] == 1 and math.isnan(rows[0]["r2"]) and rows[0]["trend"] == "no trend"
    assert math.isnan(rows[0]["kendall_p"]) and math.isnan(rows[0]["slope_p"])


def test_p_values_match_scipy_and_small_series_get_a_note(caplog):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for n in (3, 4, 6, 9, 15):
        acc = {f"m{i}": 60.0 + i + rng.normal(0, 2) for i in range(n)}
        summaries = {f"m{i}": {"alpha": 5.0 - 0.2 * i + rng.normal(0, 0.3)} for i in range(n)}
        with caplog.at_level("WARNING", logger="hts"):
            result = hts.compare(summaries, acc, series="s")
        row = result.stat("s", "alpha")
        x = [summaries[k]["alpha"] for k in acc]
        y = list(acc.values())
        assert row["kendall_p"] == pytest.approx(stats.kendalltau(x, y, method="exact").pvalue, rel=1e-12)
        assert row["slope_p"] == pytest.approx(stats.linregress(x, y).pvalue, rel=1e-9)
        assert bool(result.notes) == (n < 4)
        if n < 4:
            assert "not evidence" in result.format() and "not evidence" in caplog.text
    # ties: the tie-corrected normal approximation, as scipy's default
    x, y = [1, 2, 2, 3, 4, 5, 5, 6.0], [1, 1, 2, 3, 3, 4, 6, 5.0]
    from hts.report.stats import kendall_p

    assert kendall_p(x, y) == pytest.approx(stats.kendalltau(x, y).pvalue, rel=1e-12)


def test_small_tau_is_no_trend():
    from hts.report.compare import trend

    assert trend(0.29) == trend(-0.29) == trend(float("nan")) == "no trend"
    assert trend(0.3) == "accuracy rises with the metric" and trend(-0.5) == "accuracy falls with the metric"
