"""Hostile weight matrices: each gets a documented status and reason on its own row (docs/serving.md), and
the rest of the model is analysed exactly as without it. Nothing raises."""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pytest

import hts
from hts import spectra

FIT_TOO_FEW = "fewer than 2 eigenvalues above"


def _nan_inf(rng):
    w = rng.standard_t(3, size=(300, 100))
    w[3, 4] = np.nan
    w[7, 1] = np.inf
    w[8, 8] = -np.inf
    w[9, 9] = np.nan
    return w


def _conv_nan(rng):
    w = rng.standard_normal((32, 16, 3, 3))
    w[5, 2, 1, 1] = np.nan
    return w


def _float16_inf(rng):
    w = rng.standard_normal((40, 30)).astype(np.float16)
    w[0, :] = np.inf  # what a float16 export of too-large weights leaves
    return w


#: name -> (builder, expected status, regex the reason must match)
CASES = {
    "nan-inf": (_nan_inf, "failed",
                r"^non-finite weights: 2 NaN, 1 \+Inf, 1 -Inf among 30000 entries \(first at \[3, 4\]\)$"),
    "conv-nan": (_conv_nan, "failed", r"^non-finite weights: 1 NaN, 0 \+Inf, 0 -Inf among 4608 entries "
                                      r"\(first at \[5, 2, 1, 1\]\)$"),
    "float16-inf": (lambda r: _float16_inf(r), "failed", r"^non-finite weights: 0 NaN, 30 \+Inf, 0 -Inf among 1200"),
    "all-zero": (lambda r: np.zeros((200, 100)), "failed", FIT_TOO_FEW),
    "conv-all-zero": (lambda r: np.zeros((32, 16, 3, 3)), "failed", FIT_TOO_FEW),
    "rank-1": (lambda r: np.outer(r.standard_normal(200), r.standard_normal(100)), "failed", FIT_TOO_FEW),
    "constant": (lambda r: np.full((200, 100), 0.37), "failed", FIT_TOO_FEW),
    "conv-constant": (lambda r: np.ones((32, 16, 3, 3)), "failed", "no xmin candidate"),
    "denormal-f64": (lambda r: r.standard_normal((200, 100)) * 1e-310, "failed", FIT_TOO_FEW),
    "denormal-f32": (lambda r: (r.standard_normal((200, 100)) * 1e-40).astype(np.float32), "failed", FIT_TOO_FEW),
    "overflow-f64": (lambda r: r.standard_normal((200, 100)) * 1e200, "failed",
                     r"squared singular values overflow float64"),
    "1xN": (lambda r: r.standard_normal((1, 5000)), "skipped", r"too few eigenvalues: M = 1 < min_evals = 8"),
    "Nx1": (lambda r: r.standard_normal((5000, 1)), "skipped", r"too few eigenvalues: M = 1 < min_evals = 8"),
    "aspect-8x50000": (lambda r: r.standard_normal((8, 50000)), "success", r"^$"),
    "aspect-40000x10": (lambda r: r.standard_normal((40000, 10)), "success", r"^$"),
    "aspect-16x100000": (lambda r: r.standard_normal((16, 100000)), "skipped", r"N = 100000 > max_N = 50000"),
    "embedding-50000": (lambda r: r.standard_normal((50000, 64)).astype(np.float32), "success", r"^$"),
    "boolean": (lambda r: r.random((50, 40)) > 0.5, "failed", r"unsupported dtype bool \(boolean\)"),
    "complex": (lambda r: np.ones((50, 40), np.complex64), "failed", r"unsupported dtype complex64 \(complex\)"),
    "empty": (lambda r: np.zeros((0, 40)), "skipped", r"too few eigenvalues: M = 0"),
    "conv-empty": (lambda r: np.zeros((16, 0, 3, 3)), "skipped", r"too few eigenvalues: M·rf = 0"),
}


@pytest.fixture(scope="module")
def neighbours() -> dict:
    rng = np.random.default_rng(7)
    return {
        "before.weight": rng.standard_t(3, size=(300, 120)),
        "conv.weight": rng.standard_normal((48, 16, 3, 3)) * 0.1,
        "after.weight": rng.standard_t(4, size=(80, 256)).astype(np.float32),
    }


def without_time(rows):
    return [{k: v for k, v in r.items() if k not in ("time", "layer_id")} for r in rows]


def assert_same_rows(a, b):
    for x, y in zip(without_time(a), without_time(b)):
        assert x.keys() == y.keys()
        for k in x:
            same = x[k] == y[k] or (isinstance(x[k], float) and math.isnan(x[k]) and math.isnan(y[k]))
            assert same, (x["longname"], k, x[k], y[k])


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_layer_gets_its_status_and_the_rest_is_analysed(case, neighbours, rng, caplog):
    build, status, reason = CASES[case]
    model = dict(neighbours)
    model = {"before.weight": model["before.weight"], "bad.weight": build(rng),
             "conv.weight": model["conv.weight"], "after.weight": model["after.weight"]}
    with caplog.at_level(logging.WARNING, logger="hts"):
        a = hts.analyze(model, threads=2)
    rows = {r["longname"]: r for r in a.rows}
    bad = rows["bad"]
    assert bad["status"] == status, bad["reason"]
    assert re.search(reason, bad["reason"]), bad["reason"]
    if reason.startswith(("^non-finite", "unsupported")):
        assert "'bad'" in caplog.text and bad["reason"] in caplog.text  # named in the log too
    if status == "success":
        assert math.isfinite(bad["alpha"]) and bad["alpha"] > 1
    else:
        assert math.isnan(bad["alpha"]) and bad["warning"] == ""
    clean = hts.analyze({k: v for k, v in model.items() if k != "bad.weight"}, threads=2)
    assert_same_rows([r for r in a.rows if r["longname"] != "bad"], clean.rows)
    a.to_json()  # strict JSON whatever the row holds
    assert a.details.shape[0] == 4


OPTION_SETS = [
    dict(mp_fit=True, randomize=True), dict(fix_fingers="clip_xmax"), dict(precision="float32"), dict(pool=False),
    dict(conv_method="fft"), dict(conv_method="stacked"), dict(normalize=True),
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_hostile_layer_at_once_under_every_option(options, neighbours):
    rng = np.random.default_rng(3)
    small = {k: v for k, v in CASES.items() if not k.startswith(("aspect", "embedding"))}
    model = {**neighbours, **{f"{name}.weight": build(rng) for name, (build, _, _) in small.items()}}
    a = hts.analyze(model, threads=2, **options)
    assert a.to_json()
    rows = [r for r in a.rows if r["name"] in ("before", "conv", "after")]
    assert rows and all(r["status"] == "success" for r in rows)
    clean = hts.analyze(neighbours, threads=2, **options)
    assert_same_rows(rows, clean.rows)
    statuses = {r["name"]: r["status"] for r in a.rows}
    assert statuses["nan-inf"] == statuses["boolean"] == statuses["overflow-f64"] == "failed"
    assert statuses["1xN"] == "skipped"


def test_a_model_where_every_layer_is_hostile():
    a = hts.analyze({"a.weight": np.full((10, 10), np.nan), "b.weight": np.zeros((20, 10)) > 0})
    assert [r["status"] for r in a.rows] == ["failed", "failed"]
    assert a.counts == {"analysed": 0, "failed": 2, "skipped": 0, "over_trained": 0, "under_trained": 0}
    assert math.isnan(a.summary["alpha"])


def test_float32_overflow_of_the_largest_eigenvalue_is_caught(rng):
    """Every Gram diagonal entry fits in float32 but λ_max (up to their sum) does not: an error, not +inf."""
    w = (rng.standard_normal((200, 100)) * 1e18).astype(np.float32)
    assert np.isfinite((w.astype(np.float64) ** 2).sum(axis=0).astype(np.float32)).all()
    with pytest.raises(ValueError, match="overflow float32"):
        spectra.eigenvalues(w, precision="float32")
    row = hts.analyze({"w.weight": w}, precision="float32").rows[0]
    assert row["status"] == "failed" and "precision='float64'" in row["reason"]
    assert hts.analyze({"w.weight": w}).rows[0]["status"] == "success"  # float64 accumulation is fine


def test_hostile_torch_module_weights():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Embedding(50000, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 32))
    with torch.no_grad():
        net[1].weight[0, 0] = float("nan")
        net[2].weight.zero_()
    a = hts.analyze(net, threads=2)
    rows = {r["longname"]: r for r in a.rows}
    assert rows["0"]["status"] == "success" and rows["0"]["N"] == 50000
    assert rows["1"]["status"] == "failed" and rows["1"]["reason"].startswith("non-finite weights: 1 NaN")
    assert rows["2"]["status"] == "failed" and FIT_TOO_FEW in rows["2"]["reason"]
