"""hts.analyze on dicts of numpy arrays, checked against an independent numpy computation per layer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _reference import ww_fit_power_law, ww_metrics, ww_rank_loss

import hts


def svd_evals(w: np.ndarray) -> np.ndarray:
    return np.linalg.svd(w, compute_uv=False) ** 2


def expected_layer(slices: list[np.ndarray], scale: float, N: int) -> dict:
    """What WeightWatcher 0.7.7 reports for one (pooled) layer, from numpy's SVD and the reference fit."""
    per_slice = [svd_evals(s) * scale for s in slices]
    evals = np.sort(np.concatenate(per_slice))
    fit = ww_fit_power_law(evals)
    out = {**ww_metrics(evals, N, fit["alpha"]), **fit}
    out["rank_loss"] = ww_rank_loss([np.sqrt(e) for e in per_slice], N)
    out["num_evals"] = evals.size
    return out


def check_row(row: dict, exp: dict) -> None:
    for key in ("alpha", "xmin", "D", "sigma"):
        assert row[key] == pytest.approx(exp[key], rel=1e-6), key
    for key in ("norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
                "stable_rank", "entropy", "lambda_max"):
        assert row[key] == pytest.approx(exp[key], rel=1e-9), key
    for key in ("num_pl_spikes", "matrix_rank", "weak_rank_loss", "rank_loss", "num_evals"):
        assert row[key] == exp[key], key


@pytest.fixture
def model(rng) -> dict:
    return {
        "embed.weight": rng.standard_t(3, size=(500, 64)),
        "block.ln.weight": np.ones(64),
        "block.fc1.weight": rng.standard_t(4, size=(256, 64)) / 8,
        "block.fc1.bias": np.zeros(256),
        "block.fc2.weight": rng.standard_normal((64, 256)).astype(np.float32),
        "conv.weight": rng.standard_normal((48, 16, 3, 3)) * 0.1,
        "dw.weight": rng.standard_normal((16, 1, 3, 3)),
        "tiny.weight": rng.standard_normal((4, 4)),
    }


def test_dict_model_matches_reference_layer_by_layer(model):
    a = hts.analyze(model)
    rows = {r["longname"]: r for r in a.rows}
    assert [r["layer_id"] for r in a.rows] == [1, 2, 3, 4, 5, 6, 7]  # every *.weight key counts, from 1
    assert rows["block.ln"]["status"] == "skipped" and "1-D" in rows["block.ln"]["reason"]
    assert rows["tiny"]["status"] == "skipped" and "min_evals" in rows["tiny"]["reason"]
    for name in ("embed", "block.fc1", "block.fc2"):
        w = model[f"{name}.weight"].astype(np.float64)
        check_row(rows[name], expected_layer([w], 1.0, max(w.shape)))
    conv = model["conv.weight"]
    check_row(rows["conv"], expected_layer([conv[:, :, i, j] for i in range(3) for j in range(3)], 0.5, 48))
    dw = model["dw.weight"]  # depthwise: M = 1, 9 eigenvalues -> the small-sample fitter
    check_row(rows["dw"], expected_layer([dw[:, :, i, j] for i in range(3) for j in range(3)], 0.5, 16))
    assert rows["conv"]["rf"] == 9 and rows["conv"]["M"] == 16 and rows["conv"]["N"] == 48


def test_summary_is_the_mean_over_analysed_rows(model):
    a = hts.analyze(model)
    analysed = [r for r in a.rows if r["status"] == "success"]
    for key in hts.analysis.SUMMARY_METRICS:
        assert a.summary[key] == pytest.approx(np.mean([r[key] for r in analysed]), rel=1e-12)


def test_unpooled_conv_rows_per_slice_scaled_by_rf_over_two(model):
    a = hts.analyze({"conv.weight": model["conv.weight"]}, pool=False)
    assert [r["slice_id"] for r in a.rows] == list(range(9))
    conv = model["conv.weight"]
    for r in a.rows:
        i, j = divmod(r["slice_id"], 3)
        check_row(r, expected_layer([conv[:, :, i, j]], 4.5, 48))
    assert a.details["slice_id"].tolist() == list(range(9))
    np.testing.assert_allclose(a.esd("conv", slice_id=4), np.sort(svd_evals(conv[:, :, 1, 1]) * 4.5), rtol=1e-12)


def test_esd_returns_the_fitted_eigenvalues(model):
    a = hts.analyze(model)
    w = model["block.fc1.weight"]
    np.testing.assert_allclose(a.esd("block.fc1"), np.sort(svd_evals(w)), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(a.esd(3), a.esd("block.fc1"))
    with pytest.raises(KeyError, match="no analysed layer 'tiny'"):
        a.esd("tiny")


def test_normalize_scales_norms_but_not_alpha(model):
    plain = hts.analyze(model)
    norm = hts.analyze(model, normalize=True)
    for p, q in zip(plain.rows, norm.rows):
        if p["status"] != "success":
            continue
        assert q["alpha"] == p["alpha"] and q["D"] == p["D"] and q["num_pl_spikes"] == p["num_pl_spikes"]
        assert q["lambda_max"] == pytest.approx(p["lambda_max"] / p["N"], rel=1e-14)
        assert q["xmin"] == pytest.approx(p["xmin"] / p["N"], rel=1e-14)
        assert q["log_norm"] == pytest.approx(p["log_norm"] - math.log10(p["N"]), rel=1e-12)


def test_stacked_conv_method(model):
    conv = model["conv.weight"]
    a = hts.analyze({"conv.weight": conv}, conv_method="stacked")
    stacked = conv.transpose(2, 3, 0, 1).reshape(9 * 48, 16)
    (row,) = a.rows
    assert (row["N"], row["M"], row["rf"]) == (432, 16, 1)
    check_row(row, expected_layer([stacked], 1.0, 432))


def test_size_gates_list_skipped_layers_with_reasons(rng):
    model = {"a.weight": rng.standard_normal((60, 30)), "b.weight": rng.standard_normal((70, 40))}
    a = hts.analyze(model, min_evals=35)
    assert [r["status"] for r in a.rows] == ["skipped", "success"]
    assert a.rows[0]["reason"] == "too few eigenvalues: M = 30 < min_evals = 35"
    a = hts.analyze(model, max_evals=35, max_N=100)
    assert a.rows[1]["reason"] == "too many eigenvalues: M = 40 > max_evals = 35"
    a = hts.analyze(model, max_evals=50, max_N=65)
    assert a.rows[1]["reason"] == "N = 70 > max_N = 65"


def test_a_layer_with_nan_fails_alone(rng, caplog):
    model = {"a.weight": rng.standard_normal((60, 30)), "b.weight": rng.standard_normal((70, 40)),
             "c.weight": rng.standard_normal((50, 20))}
    model["b.weight"][3, 4] = np.nan
    with caplog.at_level("WARNING", logger="hts"):
        a = hts.analyze(model)
    assert [r["status"] for r in a.rows] == ["success", "failed", "success"]
    assert a.rows[1]["reason"] == "non-finite weights: 1 NaN, 0 +Inf, 0 -Inf among 2800 entries (first at [3, 4])"
    assert "'b'" in caplog.text
    assert math.isnan(a.rows[1]["alpha"]) and a.counts["failed"] == 1
    assert math.isfinite(a.summary["alpha"])


def test_layer_filters(model):
    ids = lambda a: [r["layer_id"] for r in a.rows]  # noqa: E731
    assert ids(hts.analyze(model, layers=[3, 6])) == [3, 6]
    assert ids(hts.analyze(model, layers=[-1, -2])) == [3, 4, 5, 6, 7]
    assert ids(hts.analyze(model, layers="conv2d")) == [5, 6]
    assert ids(hts.analyze(model, layers=["block.fc1", "embed"])) == [1, 3]
    assert ids(hts.analyze(model, layers=["-embed"])) == [2, 3, 4, 5, 6, 7]
    # keep and exclude entries mix: kept first, then excluded (WeightWatcher refuses the mix; docs row 27)
    assert ids(hts.analyze(model, layers=["dense", -2])) == [i for i in ids(hts.analyze(model, layers="dense"))
                                                             if i != 2]
    with pytest.raises(TypeError, match="layers must be"):
        hts.analyze(model, layers=3.5)


def test_results_are_json_serialisable_and_strict(model):
    model = dict(model)
    model["zero.weight"] = np.zeros((30, 20))  # a failed fit: NaN alpha, -inf log_norm
    a = hts.analyze(model)
    data = json.loads(a.to_json())
    assert data["counts"]["failed"] == 1
    zero = [r for r in data["layers"] if r["longname"] == "zero"][0]
    assert zero["alpha"] is None and zero["log_norm"] is None and zero["status"] == "failed"
    assert data["options"]["pool"] is True


def test_thread_count_and_precision(model):
    one = hts.analyze(model, threads=1).rows
    two = hts.analyze(model, threads=2).rows
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert json.dumps(strip(one), default=str) == json.dumps(strip(two), default=str)
    f32 = hts.analyze(model, precision="float32").rows
    for a, b in zip(one, f32):
        if a["status"] == "success":
            assert b["precision"] in ("float32", "float64")
            assert b["lambda_max"] == pytest.approx(a["lambda_max"], rel=1e-5)
            assert b["alpha"] == pytest.approx(a["alpha"], rel=1e-3)


def test_progress_callback(model):
    seen = []
    hts.analyze(model, progress=lambda done, total, name: seen.append((done, total, name)))
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5] and all(s[1] == 5 for s in seen)


def test_fix_fingers_clip_xmax(rng):
    # A random (MP-like) bulk plus two huge outliers gives a spuriously large alpha; clipping removes it.
    w = rng.standard_normal((400, 200))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    s[:2] *= [12.0, 9.0]
    model = {"fc.weight": (u * s) @ vt}
    raw = hts.analyze(model).rows[0]
    clipped = hts.analyze(model, fix_fingers="clip_xmax").rows[0]
    assert clipped["raw_alpha"] == raw["alpha"]
    if clipped["num_fingers"]:
        assert clipped["alpha"] + 1.0 < raw["alpha"]
        assert clipped["fingers_removed"] == clipped["num_fingers"] + 1
    else:
        assert clipped["alpha"] == raw["alpha"]


def test_bad_options_and_models(model):
    with pytest.raises(ValueError, match="conv_method"):
        hts.analyze(model, conv_method="svd")
    with pytest.raises(ValueError, match="min_evals"):
        hts.analyze(model, min_evals=20, max_evals=10)
    with pytest.raises(ValueError, match="fix_fingers"):
        hts.analyze(model, fix_fingers="clip_xmin")
    with pytest.raises(TypeError, match="cannot analyse an object of type builtins.int"):
        hts.analyze(42)
    with pytest.raises(ValueError, match="no arrays"):
        hts.analyze({"epoch": 3})


def test_list_of_pairs_and_nested_state_dict(model):
    a = hts.analyze(list(model.items()))
    b = hts.analyze({"state_dict": model, "epoch": 7})
    c = hts.analyze({"module." + k: v for k, v in model.items()})
    for other in (b, c):
        assert [r["alpha"] for r in other.rows if r["status"] == "success"] == [
            r["alpha"] for r in a.rows if r["status"] == "success"
        ]
        assert [r["longname"] for r in other.rows] == [r["longname"] for r in a.rows]


def test_even_slice_conv_keeps_n_larger_and_sv_min_is_the_true_minimum(rng):
    """WeightWatcher swaps N and M for 2×2 kernels with out < in, and reports max-of-minima as sv_min."""
    conv = rng.standard_normal((16, 32, 2, 2))
    (row,) = hts.analyze({"c.weight": conv}).rows
    assert (row["N"], row["M"], row["Q"], row["rf"]) == (32, 16, 2.0, 4)
    pooled = np.concatenate([svd_evals(conv[:, :, i, j]) * 0.5 for i in range(2) for j in range(2)])
    assert row["sv_min"] == pytest.approx(np.sqrt(pooled.min()), rel=1e-9)
    assert row["sv_max"] == pytest.approx(np.sqrt(pooled.max()), rel=1e-12)


def test_fft_conv_method_is_the_convolution_operator_spectrum(rng):
    conv = rng.standard_normal((24, 12, 3, 3))
    a = hts.analyze({"c.weight": conv}, conv_method="fft", conv_input_size=(5, 4))
    (row,) = a.rows
    assert (row["N"], row["M"], row["rf"], row["num_evals"], row["conv_method"]) == (24, 12, 20, 240, "fft")
    expected = np.sort(hts.spectra.conv_operator_eigenvalues(conv, input_size=(5, 4)).ravel())
    np.testing.assert_array_equal(a.esd("c"), expected)
    # Parseval: the operator's eigenvalues sum to n1·n2·‖K‖_F² (no WeightWatcher scaling applied).
    assert row["norm"] == pytest.approx(20 * np.sum(conv**2), rel=1e-12)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        hts.analyze({"c.weight": conv}, conv_method="fft", conv_input_size=2)


def test_mp_fit_and_randomize_columns(model):
    a = hts.analyze(model, mp_fit=True, randomize=True, seed=7)
    rows = [r for r in a.rows if r["status"] == "success"]
    for r in rows:
        for col in ("num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min", "rand_distance",
                    "ww_softrank", "ww_maxdist", "max_rand_eval", "rand_num_spikes", "num_traps", "rand_sigma_mp"):
            assert col in r, col
        assert 0 <= r["rand_distance"] <= math.sqrt(math.log(2))
        assert r["num_traps"] == r["rand_num_spikes"]
        mp = hts.spectra.marchenko_pastur_fit(a.esd(r["layer_id"]), N=r["N"], M=r["M"])
        assert r["sigma_mp"] == mp.sigma_mp or (math.isnan(r["sigma_mp"]) and mp.status == "failed")
        rand = a.esd(r["layer_id"], randomized=True)
        assert r["max_rand_eval"] == rand[-1]
        assert rand.size == (5 if r["num_evals"] < 100 else 1) * r["num_evals"]
    assert a.summary["mp_softrank"] == pytest.approx(np.nanmean([r["mp_softrank"] for r in rows]), rel=1e-12)
    again = hts.analyze(model, mp_fit=True, randomize=True, seed=7, threads=1)
    other = hts.analyze(model, randomize=True, seed=8)
    same = [(r["rand_distance"], r["max_rand_eval"]) for r in again.rows if r["status"] == "success"]
    assert same == [(r["rand_distance"], r["max_rand_eval"]) for r in rows]
    assert [r["max_rand_eval"] for r in other.rows if r["status"] == "success"] != [x[1] for x in same]
    json.loads(a.to_json())


def test_randomized_esd_of_random_weights_resembles_the_esd(rng):
    """Seed paper, Fig. 1: shuffling an i.i.d. matrix changes nothing; shuffling a trained-like one does."""
    w = rng.standard_normal((400, 200))
    a = hts.analyze({"w.weight": w}, randomize=True)
    assert a.rows[0]["rand_distance"] < 0.02
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    s[:5] *= 8  # strong learned-like spikes
    b = hts.analyze({"w.weight": (u * s) @ vt}, randomize=True)
    assert b.rows[0]["ww_softrank"] < 0.5 and b.rows[0]["rand_distance"] > a.rows[0]["rand_distance"]


def test_randomize_options(model):
    with pytest.raises(ValueError, match="not available with conv_method='fft'"):
        hts.analyze(model, randomize=True, conv_method="fft")
    with pytest.raises(ValueError, match="seed"):
        hts.analyze(model, randomize=True, seed=-1)
