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
    assert result.stat("ResNet", "alpha")["trend"] == "accuracy falls with the metric"
    # τ = −0.03 over 19 models (p = 0.89): said as no trend, not as "lower is better"
    assert result.stat("ResNet-1K", "alpha")["trend"] == "no trend"
    assert result.stat("ResNet-1K", "alpha")["kendall_p"] > 0.5
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
    assert set(data) == {"models", "rows", "accuracy_sources", "warnings"} and len(data["rows"]) == 3
    assert data["accuracy_sources"] == ["100 - column 'top1_error_pct' of acc.csv (an error in %)"]
    result.to_csv(tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["metric"] == "alpha" and float(rows[0]["r2"]) == pytest.approx(result.rows[0]["r2"])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no accuracy for models 'm0', 'm1'"):
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


# -- issue 18 item 13: p-values, wording, few models, the accuracy column --------------------------------------
def test_p_values_match_scipy_exact_kendall_and_linregress(rng):
    """Kendall's exact p (no ties) and the OLS slope's p as scipy computes them, on random small series."""
    stats = pytest.importorskip("scipy.stats")
    from hts.report.stats import kendall_p, slope_p

    for n in (3, 4, 5, 7, 10, 19, 40):
        for _ in range(4):
            x = rng.normal(size=n)
            y = rng.uniform(-1, 1) * x + rng.normal(size=n)
            p, method = kendall_p(x, y)
            expected = stats.kendalltau(x, y, method="exact").pvalue
            assert method == "exact" and p == pytest.approx(expected, rel=1e-9, abs=1e-15), n
            assert slope_p(x, y) == pytest.approx(stats.linregress(x, y).pvalue, rel=1e-9, abs=1e-15), n
    x, y = np.array([1, 1, 2, 3, 4, 5, 5, 6.0]), np.array([2, 1, 1, 3, 5, 4, 6, 6.0])  # ties: normal
    p, method = kendall_p(x, y)
    assert method == "normal"
    assert p == pytest.approx(stats.kendalltau(x, y, method="asymptotic").pvalue, rel=1e-12)


def test_student_t_tail_closed_form_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    from hts.report.stats import student_t_sf2

    for dof in range(1, 40):
        for t in (0.0, 0.3, 1.0, 2.2, 7.5, -3.0, 40.0):
            assert student_t_sf2(t, dof) == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-9, abs=1e-14)


def test_three_models_warn_and_report_p_values(caplog):
    """Three models with a perfect rank order: τ = 1 but its exact p is 1/3 — the table says so and warns."""
    summaries = {f"m{i}": {"alpha": 4.0 - i, "log_norm": 1.0 + 0.01 * (-1) ** i} for i in range(3)}
    with caplog.at_level("WARNING", logger="hts"):
        result = hts.compare(summaries, {"m0": 70.0, "m1": 71.0, "m2": 72.0})
    r = result.stat("series", "alpha")
    assert r["kendall_tau"] == -1.0 and r["kendall_p"] == pytest.approx(1 / 3) and r["kendall_p_method"] == "exact"
    assert r["slope_p"] == 0.0  # a perfect line
    assert r["trend"] == "accuracy falls with the metric"
    assert result.stat("series", "log_norm")["trend"] == "no trend"  # alternating with a tie: τ = 0
    assert result.warnings == ["series 'series' has 3 models: a trend over fewer than 4 models is not evidence "
                               "(see the p-values)"]
    assert any("not evidence" in m for m in caplog.messages)
    text = result.format()
    assert "p(tau)" in text and "p(slope)" in text and "0.333" in text and "warning: series 'series'" in text
    assert "accuracy: the accuracy given per model" in text
    assert not hts.compare({f"m{i}": {"alpha": float(i)} for i in range(4)},
                           {f"m{i}": 70.0 + i for i in range(4)}).warnings


def test_no_trend_when_tau_is_small():
    from hts.report.compare import NO_TREND_TAU, trend

    assert trend(0.0) == trend(NO_TREND_TAU / 2) == trend(-NO_TREND_TAU / 2) == trend(float("nan")) == "no trend"
    assert trend(NO_TREND_TAU) == "accuracy rises with the metric"
    assert trend(-0.9) == "accuracy falls with the metric"


def test_accuracy_column_taken_is_named():
    result = hts.compare(WW_TRENDS / "series_models.csv")
    assert result.accuracy_sources == ["100 - column 'top1_error_pct' of series_models.csv (an error in %)"]
    assert "accuracy: 100 - column 'top1_error_pct' of series_models.csv" in result.format()


def test_missing_accuracy_is_reported_before_any_analysis(rng):
    from hts.report.compare import CompareInputError

    weights = {"a": {"l.weight": rng.normal(size=(100, 50))}, "b": {"l.weight": rng.normal(size=(100, 50))}}
    with pytest.raises(CompareInputError, match="no accuracy for model 'b'") as err:
        hts.compare(weights, {"a": 70.0}, conv_method="no-such-method")  # would fail if it analysed first
    assert "--accuracy b=VALUE" in err.value.cli and "accuracy={'b'" in str(err.value)


def test_p_values_property_based():
    """Random small series (ties included): p in [0, 1], symmetric in x and y, invariant under a monotone
    transform of x; exact Kendall p equals scipy's whenever there are no ties."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    stats = pytest.importorskip("scipy.stats")
    from hts.report.stats import kendall_p, slope_p

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(st.integers(3, 14).flatmap(lambda n: st.tuples(
        st.lists(st.integers(-5, 5), min_size=n, max_size=n), st.lists(st.integers(-5, 5), min_size=n, max_size=n))))
    def check(xy):
        x, y = (np.asarray(v, dtype=float) for v in xy)
        p, method = kendall_p(x, y)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            assert math.isnan(p) and method == ""
            return
        assert 0.0 <= p <= 1.0
        assert kendall_p(y, x)[0] == pytest.approx(p, rel=1e-12)
        assert kendall_p(np.exp(x), y)[0] == pytest.approx(p, rel=1e-12)  # ranks only
        if method == "exact":
            assert p == pytest.approx(stats.kendalltau(x, y, method="exact").pvalue, rel=1e-9, abs=1e-15)
        q = slope_p(x, y)
        assert math.isnan(q) or 0.0 <= q <= 1.0

    check()
