"""analyze(inverse=, tolerance=, start_ids=): WeightWatcher 0.7.7's options, against its definitions and itself.

- ``inverse=True``: every eigenvalue λ of the layer becomes 1/λ before the fit and the metrics; sv_max, sv_min and
  rank_loss stay W's. The eigenvalues come from an SVD (the Gram matrix would lose the small ones that 1/λ makes
  the largest). WeightWatcher inverts inside its per-slice loop, so a pooled conv layer's slices end up
  inverted an alternating number of times (difference 39): checked explicitly.
- ``tolerance``: weak_rank_loss = #(λ < tolerance).
- ``start_ids``: layer ids from s (a module's root, or a state dict's first tensor, gets s).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hts
from _weightwatcher import weightwatcher_077


def _sd(seed=0):
    rng = np.random.default_rng(seed)
    return {"a.weight": rng.standard_t(3, size=(300, 120)) * 0.05, "n.weight": np.ones(300),
            "b.weight": rng.normal(size=(200, 90)) * 0.05, "c.weight": rng.normal(size=(48, 32, 3, 3)) * 0.1}


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 60), st.integers(8, 60), st.floats(1e-4, 10.0), st.integers(0, 2**32 - 1))
def test_inverse_is_the_fit_and_metrics_of_one_over_lambda(n, m, tol, seed):
    w = np.random.default_rng(seed).standard_t(4, size=(n, m))
    a = hts.analyze({"w.weight": w}, inverse=True, tolerance=tol)
    row = a.analysed[0]
    sv = np.linalg.svd(w, compute_uv=False)
    inv = np.sort(1.0 / sv**2)
    np.testing.assert_allclose(a.esd(row["layer_id"]), inv, rtol=1e-10)
    fit = hts.spectra.fit_power_law(inv)
    assert row["alpha"] == pytest.approx(fit.alpha, rel=1e-12, nan_ok=True)
    metrics = hts.spectra.spectrum_metrics(inv, N=max(n, m), alpha=fit.alpha, tolerance=tol)
    assert row["lambda_max"] == pytest.approx(metrics.lambda_max, rel=1e-12)
    assert row["norm"] == pytest.approx(inv.sum(), rel=1e-10)
    assert row["weak_rank_loss"] == int(np.count_nonzero(inv < tol)) == metrics.weak_rank_loss
    assert row["sv_max"] == pytest.approx(sv.max(), rel=1e-12) and row["sv_min"] == pytest.approx(sv.min(), rel=1e-10)


def test_inverse_options_and_failures():
    sd = _sd()
    a = hts.analyze(sd, inverse=True, mp_fit=True, detX=True)
    assert a.options["inverse"] is True and a.counts["analysed"] == 3
    conv = next(r for r in a.analysed if r["layer_type"] == "conv2d")
    slices = sd["c.weight"].transpose(2, 3, 0, 1).reshape(9, 48, 32)
    expect = np.sort(1.0 / (0.5 * np.linalg.svd(slices, compute_uv=False) ** 2).ravel())  # after the 1/2 scaling
    np.testing.assert_allclose(a.esd(conv["layer_id"]), expect, rtol=1e-10)
    unpooled = hts.analyze(sd, inverse=True, pool=False, layers="conv2d")
    np.testing.assert_allclose(unpooled.esd(conv["layer_id"], slice_id=4),
                               np.sort(1.0 / (4.5 * np.linalg.svd(slices[4], compute_uv=False) ** 2)), rtol=1e-10)
    dead = dict(sd, **{"a.weight": np.vstack([sd["a.weight"][:, :119].T, np.zeros((1, 300))]).T})  # one zero column
    row = next(r for r in hts.analyze(dead, inverse=True).rows if r["key"] == "a.weight")
    assert row["status"] == "failed" and "no inverse" in row["reason"]
    for bad in (dict(vectors=True), dict(randomize=True), dict(normalize=True), dict(precision="float32")):
        with pytest.raises(ValueError, match="inverse=True is not available"):
            hts.analyze(sd, inverse=True, **bad)


def test_tolerance_and_start_ids():
    sd = _sd()
    base = hts.analyze(sd)
    for tol in (0.0, 1e-3, 0.05):
        a = hts.analyze(sd, tolerance=tol)
        for r in a.analysed:
            assert r["weak_rank_loss"] == int(np.count_nonzero(a.esd(r["layer_id"]) < tol))
    assert [r["layer_id"] for r in base.rows] == [1, 2, 3, 4]
    shifted = hts.analyze(sd, start_ids=5, layers=[5, 7])
    assert [r["layer_id"] for r in shifted.rows] == [5, 7] and [r["key"] for r in shifted.rows] == ["a.weight", "b.weight"]
    assert [r["layer_id"] for r in hts.analyze(sd, start_ids=1).rows] == [1, 2, 3, 4]  # a state dict starts at 1
    for bad in (dict(tolerance=-1), dict(tolerance=float("nan")), dict(start_ids=-1), dict(start_ids=1.5)):
        with pytest.raises(ValueError):
            hts.analyze(sd, **bad)


def test_start_ids_on_a_module():
    """The ids of analyze and describe (hts.open(...).rows) with start_ids, and WeightWatcher's describe's."""
    torch = pytest.importorskip("torch", reason="needs torch==2.13.0")
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.ReLU(), torch.nn.Linear(30, 20))
    assert [r["layer_id"] for r in hts.analyze(model).analysed] == [1, 3]
    assert [r["layer_id"] for r in hts.analyze(model, start_ids=1).analysed] == [2, 4]  # the root gets 1
    for s in (0, 1, 5):
        described = [r["layer_id"] for r in hts.open(model).rows(start_ids=s) if r["analysed"]]
        assert described == [r["layer_id"] for r in hts.analyze(model, start_ids=s).analysed]
        with _weightwatcher() as ww:
            assert described == list(ww.WeightWatcher().describe(model=model, start_ids=s).layer_id)
    with pytest.raises(ValueError, match="start_ids"):
        hts.open(model).rows(start_ids=-2)


def test_command_line(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "m.npz"
    np.savez(path, **_sd())
    run = [sys.executable, "-m", "hts", "analyze", str(path), "--format", "json"]
    r = subprocess.run(run + ["--inverse", "--tolerance", "0.5", "--start-ids", "4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    expected = hts.analyze(str(path), inverse=True, tolerance=0.5, start_ids=4)
    assert [x["layer_id"] for x in doc["layers"]] == [r["layer_id"] for r in expected.rows] == [4, 5, 6, 7]
    assert doc["summary"]["alpha"] == pytest.approx(expected.summary["alpha"], rel=1e-12)
    assert [x["weak_rank_loss"] for x in doc["layers"]] == [r["weak_rank_loss"] for r in expected.to_dict()["layers"]]
    assert doc["options"]["inverse"] is True
    r = subprocess.run(run + ["--inverse", "--precision", "float32"], capture_output=True, text=True)
    assert r.returncode == 2 and "--inverse is not available" in r.stderr
    r = subprocess.run(run + ["--start-ids", "-1"], capture_output=True, text=True)
    assert r.returncode == 2 and "must be >= 0" in r.stderr
    r = subprocess.run([sys.executable, "-m", "hts", "describe", str(path), "--format", "json", "--start-ids", "4"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [x["layer_id"] for x in json.loads(r.stdout)["tensors"]] == [4, 5, 6, 7]


# ------------------------------------------------------------------------------------------------------
# WeightWatcher 0.7.7
# ------------------------------------------------------------------------------------------------------
def _weightwatcher():
    return weightwatcher_077()


FLOATS = ("alpha", "xmin", "D", "sigma", "norm", "log_norm", "lambda_max", "spectral_norm", "stable_rank", "entropy",
          "alpha_weighted", "log_alpha_norm", "sv_max", "sv_min")
INTS = ("num_pl_spikes", "matrix_rank", "weak_rank_loss", "rank_loss", "num_evals")


@pytest.mark.parametrize("kind", ["minilm", "lite0-unpooled"])
def test_parity_with_weightwatcher(kind):
    """inverse=True, tolerance=0.5, start_ids=3 on real weights: the same rows (ids shifted by 3), every float
    column within 1e-9 relative (measured ≤ 3e-13), the counts exactly. MiniLM: its first 24 dense layers;
    EfficientNet-Lite0 with pool=False (per slice, where WeightWatcher inverts each slice once)."""
    import _models

    with _weightwatcher() as ww:
        model = _models.minilm_module() if kind == "minilm" else _models.efficientnet_lite_module(0)
        pool = kind == "minilm"
        ids = [r["layer_id"] + 3 for r in hts.open(model).rows(pool=pool)
               if r["analysed"] and r["N"] < 5000][:24]  # not MiniLM's 30522-row embedding (seconds of SVD)
        theirs = ww.WeightWatcher().analyze(model=model, inverse=True, tolerance=0.5, start_ids=3, layers=ids,
                                            pool=pool)
    ours = hts.analyze(model, inverse=True, tolerance=0.5, start_ids=3, layers=ids, pool=pool).details
    ours = ours[ours.status != "skipped"]
    key = ["layer_id"] + ([] if pool else ["slice_id"])
    merged = theirs.merge(ours, on=key, suffixes=("_ww", "_hts"), validate="one_to_one")
    assert len(merged) == len(theirs) == len(ours) >= 19
    for col in FLOATS:
        np.testing.assert_allclose(merged[f"{col}_hts"].astype(float), merged[f"{col}_ww"].astype(float),
                                   rtol=1e-9, atol=1e-300, err_msg=col)
    for col in INTS:
        assert (merged[f"{col}_hts"].astype(int) == merged[f"{col}_ww"].astype(int)).all(), col


def test_pooled_conv_inverse_differs_as_documented():
    """Difference 39: WeightWatcher re-inverts the pooled ESD after each slice, so slice i of rf ends up inverted
    rf − i times; hts inverts every eigenvalue once. Shown on its λ_max and norm."""
    torch = pytest.importorskip("torch", reason="needs torch==2.13.0")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(24, 40, 3))
    with _weightwatcher() as ww:
        theirs = ww.WeightWatcher().analyze(model=model, inverse=True).iloc[0]
    w = model[0].weight.detach().double().numpy()
    lam = [0.5 * np.linalg.svd(w[:, :, i, j], compute_uv=False) ** 2 for i in range(3) for j in range(3)]
    mixed = np.concatenate([1.0 / x if (9 - i) % 2 else x for i, x in enumerate(lam)])
    assert theirs["lambda_max"] == pytest.approx(mixed.max(), rel=1e-9)
    assert theirs["norm"] == pytest.approx(mixed.sum(), rel=1e-9)
    ours = hts.analyze(model, inverse=True).analysed[0]
    assert ours["norm"] == pytest.approx(np.sum(1.0 / np.concatenate(lam)), rel=1e-9)
    assert not math.isclose(ours["norm"], theirs["norm"], rel_tol=1e-3)
