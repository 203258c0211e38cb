"""WeightWatcher-style per-layer figures: each figure carries the data it claims (checked against the ESD and an
independent numpy MLE), ``save_layer_figures`` writes one file per layer and figure, and ``hts report --savefig``
writes them from the command line."""

from __future__ import annotations


import numpy as np
import pytest

import hts

pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
from matplotlib.patches import StepPatch  # noqa: E402

from hts.report import layer_figures  # noqa: E402


@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(21)
    weights = {"fc1.weight": rng.standard_t(3, size=(300, 80)), "fc2.weight": rng.standard_normal((200, 100)),
               "conv.weight": rng.standard_normal((32, 16, 3, 3))}
    return hts.analyze(weights, randomize=True, seed=3)


def _row(a, name, slice_id=None):
    return next(r for r in a.analysed if r["longname"] == name and (slice_id is None or r.get("slice_id") == slice_id))


def test_linear_esd_is_a_density_over_the_eigenvalues(analysis):
    ax = layer_figures.esd_linear(analysis, "fc1").axes[0]
    step = next(p for p in ax.patches if isinstance(p, StepPatch))
    values, edges = step.get_data().values, step.get_data().edges
    assert ax.get_xscale() == "linear"
    assert float(np.sum(values * np.diff(edges))) == pytest.approx(1.0)
    ev = analysis.esd(_row(analysis, "fc1")["layer_id"])
    assert edges[0] == pytest.approx(ev[ev > 0].min()) and edges[-1] == pytest.approx(ev.max())


def test_alpha_vs_xmin_matches_an_independent_mle(analysis):
    row = _row(analysis, "fc1")
    ax = layer_figures.alpha_vs_xmin(analysis, "fc1").axes[0]
    x, a = ax.get_lines()[0].get_data()
    ev = np.sort(analysis.esd(row["layer_id"]))
    for xmin, alpha in list(zip(x, a))[:: max(1, len(x) // 7)]:
        tail = ev[ev >= xmin]
        assert alpha == pytest.approx(1 + tail.size / np.sum(np.log(tail / xmin)), rel=1e-9)
    chosen = ax.get_lines()[-1].get_data()
    assert (chosen[0][0], chosen[1][0]) == pytest.approx((row["xmin"], row["alpha"]))


def test_xmin_peak_search_range_is_shaded_and_holds_the_chosen_minimum():
    """With fix_fingers="xmin_peak" both xmin figures shade the range the fit searched; the chosen xmin is the
    first smallest D of the curve inside it (and no range is drawn for the default fit)."""
    from hts.xmin_peak import peak_xmin_range

    w = {"w.weight": np.random.default_rng(5).standard_t(2.5, size=(400, 150))}
    peak = hts.analyze(w, fix_fingers="xmin_peak")
    row = peak.analysed[0]
    ev = np.sort(peak.esd(row["layer_id"]))
    _, lo, hi = peak_xmin_range(ev[ev > 1e-5])
    for draw in (hts.plot.ks_distance, layer_figures.alpha_vs_xmin):
        ax = draw(peak, "w").axes[0]
        span = next(p for p in ax.patches if p.get_label() == "xmin_peak search range")
        x0, x1 = span.get_x(), span.get_x() + span.get_width()
        assert (x0, x1) == pytest.approx((max(lo, ev[ev > 1e-5][0]), min(hi, ev[-1])))
        assert lo <= row["xmin"] <= hi
    x, d = hts.plot.ks_distance(peak, "w").axes[0].get_lines()[0].get_data()
    inside = (x >= lo) & (x <= hi) & (x < x[(x >= lo) & (x <= hi)].max())  # powerlaw drops the last candidate
    assert x[inside][np.argmin(d[inside])] == pytest.approx(row["xmin"])
    plain = hts.analyze(w)
    assert not [p for p in hts.plot.ks_distance(plain, "w").axes[0].patches if "search" in str(p.get_label())]


def test_randomized_esd_marks_the_largest_shuffled_eigenvalue(analysis):
    row = _row(analysis, "fc2")
    ax = layer_figures.randomized_esd(analysis, "fc2").axes[0]
    rand = analysis.esd(row["layer_id"], randomized=True)
    line = next(li for li in ax.get_lines() if li.get_label().startswith("λ_max rand"))
    assert line.get_xdata()[0] == pytest.approx(rand.max())
    assert len([p for p in ax.patches if isinstance(p, StepPatch)]) == 2
    plain = hts.analyze({"w": np.random.default_rng(0).standard_normal((100, 60))})
    with pytest.raises(ValueError, match="randomize=True"):
        layer_figures.randomized_esd(plain, "w")


def test_mp_fit_draws_a_density_that_integrates_to_at_most_one(analysis):
    ax = layer_figures.mp_fit(analysis, "fc2").axes[0]
    line = next(li for li in ax.get_lines() if li.get_label().startswith("Marchenko"))
    x, y = line.get_data()
    assert np.all(y >= 0) and 0.5 < float(np.trapezoid(y, x)) <= 1.0 + 1e-6


def test_deltas_and_level_statistics_show_the_eigenvalue_gaps(analysis):
    """WeightWatcher's deltas=True figures: log10 of the consecutive gaps against their index (a line at xmin's
    index) and their density; both on request only (DELTA_FIGURES)."""
    row = _row(analysis, "fc1")
    ev = np.sort(analysis.esd(row["layer_id"]))
    gaps = np.log10(np.diff(ev))
    ax = layer_figures.deltas(analysis, "fc1").axes[0]
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], gaps, rtol=1e-12)
    np.testing.assert_array_equal(points[:, 0], np.arange(gaps.size))
    line = next(li for li in ax.get_lines() if li.get_label().startswith("xmin"))
    assert line.get_xdata()[0] == np.searchsorted(ev, row["xmin"])
    ax = layer_figures.level_statistics(analysis, "fc1", bins=20).axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert len(heights) == 20 and float(np.sum(heights * widths)) == pytest.approx(1.0)
    assert ax.patches[0].get_x() == pytest.approx(gaps.min())
    assert not set(layer_figures.DELTA_FIGURES) & set(layer_figures.FIGURES)
    flat = hts.analyze({"w.weight": np.vstack([np.eye(10), np.zeros((10, 10))])})  # every λ = 1: no gaps
    with pytest.raises(ValueError, match="positive gaps"):
        layer_figures.deltas(flat, "w")


def test_save_layer_figures_writes_every_figure_for_every_matrix(analysis, tmp_path):
    paths = layer_figures.save_layer_figures(analysis, tmp_path / "figs")
    assert len(paths) == len(analysis.analysed) * len(layer_figures.FIGURES)
    assert len({p.name for p in paths}) == len(paths)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    conv = [p.name for p in paths if "-conv-" in p.name]
    assert sorted(conv) == sorted(f"{_row(analysis, 'conv')['layer_id']:04d}-conv-{f}.png"
                                  for f in layer_figures.FIGURES)
    assert hts.plot.save_layer_figures(analysis, tmp_path / "again", figures=["esd"])[0].name == paths[0].name
    with pytest.raises(ValueError, match="unknown figure"):
        layer_figures.save_layer_figures(analysis, tmp_path, figures=["nope"])


def test_figures_that_cannot_be_drawn_are_logged_not_fatal(tmp_path, caplog):
    plain = hts.analyze({"w": np.random.default_rng(0).standard_normal((100, 60))})
    with caplog.at_level("INFO", logger="hts"):
        paths = layer_figures.save_layer_figures(plain, tmp_path, fmt="svg")
    assert len(paths) == len(layer_figures.FIGURES) - 1
    assert any("no randomized figure" in r.getMessage() for r in caplog.records)


def test_cli_report_savefig(tmp_path, capsys):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(2)
    st.save_file({"a.weight": rng.standard_normal((120, 60)).astype(np.float32),
                  "b.weight": rng.standard_normal((90, 70)).astype(np.float32)}, str(tmp_path / "m.safetensors"))
    from hts.cli import main

    rc = main(["report", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "r.html"),
               "--savefig", str(tmp_path / "figs")])
    assert rc == 0
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert len(written) == 2 * (len(layer_figures.FIGURES) - 1)  # no randomized ESD without --randomize
    assert "figures of 2 layers" in capsys.readouterr().out
    rc = main(["report", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "r.html"),
               "--savefig", str(tmp_path / "figs2"), "--savefig-deltas"])
    assert rc == 0
    written = sorted(p.name for p in (tmp_path / "figs2").iterdir())
    assert len(written) == 2 * (len(layer_figures.FIGURES) - 1 + len(layer_figures.DELTA_FIGURES))
    assert sum(name.endswith("-level-stats.png") for name in written) == 2
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "r3.html"), "--savefig-deltas"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "r2.html"),
              "--savefig", str(tmp_path / "file")])
    assert not (tmp_path / "r2.html").exists()
