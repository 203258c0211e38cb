"""hts.plot: figures carry the expected artists and data; PNG/SVG output; matplotlib loads lazily."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import hts

pytest.importorskip("matplotlib", reason="plots need matplotlib (the plot extra)")
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402

from hts.report import plots  # noqa: E402


@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(7)
    weights = {f"fc{i}.weight": rng.standard_t(3, size=(240, 60 + 20 * i)) for i in range(3)}
    weights["conv.weight"] = rng.standard_normal((48, 24, 3, 3))
    return hts.analyze(weights, mp_fit=True, randomize=True, seed=1)


def _row(a, layer_id):
    return next(r for r in a.rows if r["layer_id"] == layer_id)


def _by_label(ax, start):
    return [line for line in ax.get_lines() if line.get_label().startswith(start)]


def test_esd_figure_has_histogram_fit_xmin_randomized_and_mp(analysis):
    fig = plots.esd(analysis, 1)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    row, ev = _row(analysis, 1), analysis.esd(1)
    hist, rand = [p for p in ax.patches if isinstance(p, StepPatch)]
    values, edges = hist.get_data().values, hist.get_data().edges
    assert np.sum(values * np.diff(edges)) == pytest.approx(1.0)  # a density over all eigenvalues
    assert edges[0] == pytest.approx(min(ev.min(), analysis.esd(1, randomized=True).min()))
    (fit,) = _by_label(ax, "power law")
    lam, p = fit.get_data()
    assert lam[0] == pytest.approx(row["xmin"]) and lam[-1] == pytest.approx(row["xmax"])
    m = np.count_nonzero(ev >= row["xmin"])
    expected = m / ev.size * (row["alpha"] - 1) / row["xmin"] * (lam / row["xmin"]) ** -row["alpha"]
    np.testing.assert_allclose(p, expected)
    (xmin_line,) = _by_label(ax, "xmin")
    assert xmin_line.get_xdata()[0] == pytest.approx(row["xmin"])
    assert rand.get_label() == "randomized ESD"
    (mp,) = _by_label(ax, "Marchenko")
    rho = mp.get_ydata()
    assert np.nanmax(rho) > 0 and np.isnan(rho).any()  # zero outside the bulk, not drawn
    assert "layer 1" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_mp_density_integrates_to_one():
    lam = np.linspace(1e-6, 10, 200001)
    rho = plots.mp_density(lam, sigma=1.0, Q=3.0, W_scale=0.8)
    assert np.sum((rho[1:] + rho[:-1]) / 2 * np.diff(lam)) == pytest.approx(1.0, abs=2e-3)


def test_esd_options(analysis):
    ax = plots.esd(analysis, "conv", mp=False, randomized=False, bins=12).axes[0]
    assert not _by_label(ax, "Marchenko") and len(ax.patches) == 1
    assert len(ax.patches[0].get_data().values) == 12
    plain = hts.analyze({"w": np.random.default_rng(0).standard_normal((300, 100))})
    ax = plots.esd(plain, 1).axes[0]
    assert not _by_label(ax, "Marchenko") and len(ax.patches) == 1
    assert _by_label(plots.esd(plain, 1, mp=True).axes[0], "Marchenko")  # fitted on the fly
    with pytest.raises(ValueError, match="randomize=True"):
        plots.esd(plain, 1, randomized=True)
    with pytest.raises(KeyError, match="no analysed layer"):
        plots.esd(plain, 99)


def test_ks_distance_curve_minimum_is_the_chosen_xmin(analysis):
    ax = plots.ks_distance(analysis, 2).axes[0]
    x, d = ax.get_lines()[0].get_data()
    assert x[np.argmin(d)] == pytest.approx(_row(analysis, 2)["xmin"])
    assert np.min(d) == pytest.approx(_row(analysis, 2)["D"])
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "KS distance D"


def test_alpha_by_layer_one_colour_per_type_and_models_overlaid(analysis):
    ax = plots.alpha_by_layer(analysis).axes[0]
    points = {c.get_label(): c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)}
    assert set(points) == {"dense", "conv2d"}
    alphas = [r["alpha"] for r in analysis.analysed]
    np.testing.assert_allclose(points["dense"][:, 1], alphas[:3])
    np.testing.assert_allclose(points["conv2d"], [[3, alphas[3]]])
    assert sorted(line.get_ydata()[0] for line in ax.get_lines()) == [2.0, 6.0]
    two = plots.alpha_by_layer({"a": analysis, "b": analysis}, metric="alpha_weighted").axes[0]
    labels = {c.get_label() for c in two.collections}
    assert labels == {"a dense", "a conv2d", "b dense", "b conv2d"}
    assert two.get_ylabel() == plots.LAYER_LABELS["alpha_weighted"]


def test_alpha_histogram_counts_and_bands(analysis):
    ax = plots.alpha_histogram([analysis, analysis], bins=5).axes[0]
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 2 and all(p.get_data().values.sum() == 4 for p in steps)
    bands = [p for p in ax.patches if not isinstance(p, StepPatch)]
    assert len(bands) == 2


def test_series_panels_points_and_lines():
    comparison = hts.compare({f"m{i}": {"alpha": 5.0 - i, "log_norm": 1.0 + 0.5 * i} for i in range(4)},
                             {f"m{i}": 70.0 + i for i in range(4)})
    fig = plots.series(comparison)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[5 - i, 70 + i] for i in range(4)])
    line = ax.get_lines()[0]
    x, y = line.get_data()
    np.testing.assert_allclose(y, 75.0 - x)  # accuracy = 75 - alpha exactly
    assert "⟨α⟩" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert len(plots.series(comparison, ["log_norm"]).axes) == 1


def test_save_png_and_svg(analysis, tmp_path):
    fig = plots.esd(analysis, 1, path=tmp_path / "esd.png")
    assert (tmp_path / "esd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plots.save(fig, tmp_path / "esd.svg")
    text = (tmp_path / "esd.svg").read_text()
    assert "<svg" in text and "<dc:date>" not in text
    assert plots.svg_text(fig).startswith("<svg")
    with pytest.raises(ValueError, match="write .png or .svg"):
        plots.save(fig, tmp_path / "esd.jpg")


def test_plot_and_compare_load_lazily():
    code = ("import sys, json, hts; p = hts.plot; c = hts.compare; "
            "print(json.dumps([m for m in ('matplotlib', 'pandas') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    assert hts.plot.esd is plots.esd and callable(hts.compare)
    with pytest.raises(AttributeError):
        hts.no_such_thing  # noqa: B018


# -- issue 18 item 15: plots a person reads ----------------------------------------------------------------
def _tick_texts(fig) -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
            for t in axis.get_ticklabels(which="both") if t.get_visible()]


def test_log_axes_use_matplotlibs_log_locators(analysis):
    from matplotlib.ticker import LogLocator

    fig = plots.esd(analysis, 1)
    ax = fig.axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        assert isinstance(axis.get_major_locator(), LogLocator)
    for text in _tick_texts(fig):  # decades and their multiples, never geometric steps like 0.607
        digits = text.replace("$", "").replace("\\mathdefault{", "").replace("}", "")
        assert not re.fullmatch(r"\d+\.\d{3,}", digits), text


def test_log_norm_is_labelled_as_the_squared_frobenius_norm():
    assert "‖W‖$^{2}_{F}$" in plots.LABELS["log_norm"] and "log$_{10}$" in plots.LABELS["log_norm"]
    assert "‖W‖$^{2}_{F}$" in plots.LAYER_LABELS["log_norm"]


def test_no_literal_underscores_become_subscripts(analysis):
    """Every label is either plain text without "_" or mathtext with braced sub/superscripts only."""
    labels = list(plots.LABELS.values()) + list(plots.LAYER_LABELS.values())
    for label in labels:
        plain = re.sub(r"\$[^$]*\$", "", label)
        assert "_" not in plain, label
    fig = plots.alpha_by_layer({"model_a": analysis, "model_b": analysis}, metric="alpha_weighted")
    ax = fig.axes[0]
    assert "_" not in re.sub(r"\$[^$]*\$", "", ax.get_ylabel())
    assert "alpha_weighted" in ax.get_title()  # a metric name is shown verbatim, not mathtext
    fig.canvas.draw()  # mathtext in the labels parses


def test_model_names_label_series_points():
    comparison = hts.compare({f"net_{i}": {"alpha": 5.0 - i, "log_norm": 1.0 + 0.5 * i} for i in range(4)},
                             {f"net_{i}": 70.0 + i for i in range(4)})
    ax = plots.series(comparison).axes[0]
    texts = {t.get_text(): t.xy for t in ax.texts}
    assert set(texts) == {f"net_{i}" for i in range(4)}
    assert texts["net_2"] == (3.0, 72.0)


def test_several_models_one_colour_each_in_the_depth_plot(analysis):
    from matplotlib.colors import to_hex

    ax = plots.alpha_by_layer({"a": analysis, "b": analysis}).axes[0]
    colours = {}
    for c in ax.collections:
        colours.setdefault(c.get_label().split()[0], set()).add(to_hex(c.get_facecolor()[0]))
    assert all(len(v) == 1 for v in colours.values()) and colours["a"] != colours["b"], colours


def test_fonts_are_consistent_across_figures(analysis):
    comparison = hts.compare({f"m{i}": {"alpha": 5.0 - i} for i in range(4)}, {f"m{i}": 70.0 + i for i in range(4)})
    figs = [plots.esd(analysis, 1), plots.ks_distance(analysis, 2), plots.alpha_by_layer(analysis),
            plots.alpha_histogram(analysis), plots.series(comparison)]
    sizes = set()
    for fig in figs:
        ax = fig.axes[0]
        sizes.add((ax.title.get_fontsize(), ax.xaxis.label.get_fontsize(),
                   ax.get_legend().get_texts()[0].get_fontsize(), ax.get_xticklabels()[0].get_fontsize()))
    assert sizes == {(plots.FONT["title"], plots.FONT["label"], plots.FONT["legend"], plots.FONT["ticks"])}
