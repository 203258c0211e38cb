"""analyze(intra=True) (``hts.intra``): spectra of products of consecutive layers, as WeightWatcher 0.7.7 computes
them — against the definition in numpy and against WeightWatcher itself (the seeded mask draws the same numbers as
WeightWatcher after ``np.random.seed``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import hts
from _weightwatcher import weightwatcher_077
from hts.intra import align


def _sd():
    rng = np.random.default_rng(0)
    return {"a.weight": rng.standard_t(3, size=(200, 100)) * 0.1,  # out × in, torch layout
            "norm.weight": np.ones(200),
            "b.weight": rng.standard_t(3, size=(150, 200)) * 0.1,
            "tiny.weight": rng.normal(size=(4, 3)),  # gated out: not in the chain
            "c.weight": rng.standard_t(3, size=(77, 99)) * 0.1,  # shares nothing with b: a skipped pair
            "d.weight": rng.standard_t(3, size=(60, 77)) * 0.1}


def _by_hand(w0, w1, rng, sparsify):
    w0, w1 = align(w0, w1)
    norm = np.linalg.norm(w0) * np.linalg.norm(w1)
    if sparsify:
        s = rng.randint(2, size=w1.shape[0] ** 2).reshape(w1.shape[0], -1)
        x = w0 @ s @ w1 / (norm + np.sqrt(np.linalg.norm(s)))
    else:
        x = w0 @ w1 / norm
    return np.sort(np.linalg.svd(x, compute_uv=False))


@pytest.mark.parametrize("sparsify", [True, False])
def test_pairs_follow_the_definition(sparsify):
    sd = _sd()
    a = hts.analyze(sd, intra=True, sparsify=sparsify, seed=11, mp_fit=True)
    rows = {r["key"]: r for r in a.rows}
    assert rows["norm.weight"]["status"] == rows["tiny.weight"]["status"] == "skipped"
    assert "a.weight" not in rows or rows["a.weight"]["status"] == "skipped"  # the first layer only starts the chain
    rng = np.random.RandomState(11)
    ab = _by_hand(sd["a.weight"], sd["b.weight"], rng, sparsify)  # (100 × 200)·S·(200 × 150)
    r = rows["b.weight"]
    assert r["name"] == "1 X 3" and r["longname"] == "a X b" and r["intra_of"] == "a.weight"
    assert (r["N"], r["M"], r["num_evals"]) == (150, 100, 100)
    np.testing.assert_allclose(a.esd(3), ab[-150:], rtol=1e-12)
    fit = hts.spectra.fit_power_law(ab)
    assert r["alpha"] == pytest.approx(fit.alpha, rel=1e-12) and r["xmin"] == pytest.approx(fit.xmin, rel=1e-12)
    assert r["norm"] == pytest.approx(ab.sum(), rel=1e-12) and r["sv_max"] == pytest.approx(np.sqrt(ab[-1]), rel=1e-12)
    assert "num_spikes" in r
    bad = rows["c.weight"]
    assert bad["status"] == "skipped" and "share no dimension" in bad["reason"] and bad["name"] == "3 X 5"
    cd = _by_hand(sd["c.weight"], sd["d.weight"], rng, sparsify)  # the chain goes on after the skipped pair
    np.testing.assert_allclose(a.esd(6), cd[-60:], rtol=1e-12)
    assert a.options["intra"] is True and a.options["sparsify"] is sparsify
    assert "intra" not in hts.analyze(sd).options


def test_conv_pairs_and_option_errors():
    rng = np.random.default_rng(1)
    sd = {"x.weight": rng.normal(size=(32, 16, 3, 3)), "y.weight": rng.normal(size=(48, 32, 1, 1))}
    row = hts.analyze(sd, intra=True, sparsify=False).analysed[0]
    w0 = sd["x.weight"][:, :, 0, 0]  # the first slice, turned tall (32 × 16)
    ev = _by_hand(w0, sd["y.weight"][:, :, 0, 0], None, False) * np.sqrt(0.5)  # √½: the second layer is a Conv2D
    assert row["num_evals"] == 16
    np.testing.assert_allclose(hts.analyze(sd, intra=True, sparsify=False).esd(2), ev[-32:], rtol=1e-12)
    for bad in (dict(randomize=True), dict(vectors=True), dict(inverse=True), dict(conv_method="fft")):
        with pytest.raises(ValueError, match="intra=True is not available"):
            hts.analyze(sd, intra=True, **bad)


def test_command_line(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **_sd())
    cmd = [sys.executable, "-m", "hts", "analyze", str(path), "--format", "json", "--intra", "--seed", "4"]
    r = subprocess.run(cmd + ["--no-sparsify"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    expected = hts.analyze(str(path), intra=True, sparsify=False, seed=4)
    assert [x["name"] for x in doc["layers"]] == [x["name"] for x in expected.rows]
    assert doc["summary"]["alpha"] == pytest.approx(expected.summary["alpha"], rel=1e-12)
    r = subprocess.run(cmd + ["--vectors"], capture_output=True, text=True)
    assert r.returncode == 2 and "--intra is not available" in r.stderr
    r = subprocess.run(cmd[:-3] + ["--no-sparsify"], capture_output=True, text=True)
    assert r.returncode == 2 and "needs --intra" in r.stderr


# ------------------------------------------------------------------------------------------------------
# WeightWatcher 0.7.7
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,sparsify", [("minilm", False), ("lite0", True)])
def test_parity_with_weightwatcher(kind, sparsify):
    """The same pairs (WeightWatcher's rows, its trailing space stripped from the name), the same counts, alpha and D
    within 1e-9 relative when the mask is the same (lite0: measured 1e-14); the scale columns within 2e-6: WeightWatcher
    multiplies float32 weights (sparsify=False) and takes ‖W‖ in float32 (measured ≤ 1.2e-6). MiniLM's first 13
    dense layers (12 pairs), Lite0's first 40 layers (depthwise convs and 1×1 convs: the √½ and the top-M rule)."""
    import _models

    with weightwatcher_077() as ww:
        model = _models.minilm_module() if kind == "minilm" else _models.efficientnet_lite_module(0)
        ids = [r["layer_id"] for r in hts.open(model).rows() if r["analysed"] and r["N"] < 5000][:13 if kind == "minilm" else 40]
        np.random.seed(7)
        theirs = ww.WeightWatcher().analyze(model=model, intra=True, sparsify=sparsify, layers=ids)
    ours = hts.analyze(model, intra=True, sparsify=sparsify, layers=ids, seed=7).details
    ours = ours[ours.status != "skipped"]
    merged = theirs.merge(ours, on="layer_id", suffixes=("_ww", "_hts"), validate="one_to_one")
    assert len(merged) == len(theirs) == len(ours) >= 12
    assert (merged.name_ww.str.strip() == merged.name_hts).all()
    for col in ("N", "M", "num_evals", "matrix_rank", "rank_loss", "weak_rank_loss"):
        assert (merged[f"{col}_ww"].astype(int) == merged[f"{col}_hts"].astype(int)).all(), col
    ok = merged.status_ww == "success"
    assert (ok == (merged.status_hts == "success")).all()
    assert (merged.num_pl_spikes_ww[ok].astype(int) == merged.num_pl_spikes_hts[ok].astype(int)).all()
    fit_rtol = 1e-9 if sparsify else 2e-6
    for col, rtol in (("alpha", fit_rtol), ("D", max(fit_rtol, 1e-12)), ("xmin", 2e-6), ("norm", 2e-6),
                      ("lambda_max", 2e-6), ("stable_rank", 2e-6), ("entropy", 2e-6), ("log_alpha_norm", 5e-6)):
        np.testing.assert_allclose(merged[f"{col}_hts"][ok].astype(float), merged[f"{col}_ww"][ok].astype(float),
                                   rtol=rtol, atol=1e-12, err_msg=col)
