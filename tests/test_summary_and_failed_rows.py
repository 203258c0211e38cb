"""Issue 18 items 1 and 4: the model summary is a mean over finite values of successful rows, and rows where
nothing was computed carry NaN counts rather than a 0 that reads as a measurement."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import hts
from hts.analysis import SUMMARY_METRICS


def _weights(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "a.weight": rng.standard_t(3, size=(300, 120)),
        "dead.weight": np.zeros((200, 80)),  # all zero: the fit fails and log norms are −inf
        "b.weight": rng.standard_t(4, size=(256, 100)),
        "tiny.weight": rng.normal(size=(6, 3)),  # too few eigenvalues: listed, skipped
    }


def test_one_all_zero_layer_does_not_blank_the_summary():
    a = hts.analyze(_weights())
    rows = {r["longname"]: r for r in a.rows}
    assert rows["dead"]["status"] == "failed"
    assert rows["dead"]["log_norm"] == -math.inf  # the row itself says what it is
    ok = [r for r in a.rows if r["status"] == "success"]
    assert {r["longname"] for r in ok} == {"a", "b"}
    for key in SUMMARY_METRICS:
        assert math.isfinite(a.summary[key]), key
        assert a.summary[key] == pytest.approx(float(np.mean([r[key] for r in ok])), rel=1e-12)
    doc = json.loads(a.to_json())
    assert all(v is not None for v in doc["summary"].values())


def test_summary_of_only_broken_layers_is_nan_not_minus_inf():
    a = hts.analyze({"dead.weight": np.zeros((64, 32)), "also_dead.weight": np.zeros((50, 20))})
    assert all(r["status"] == "failed" for r in a.rows)
    assert all(math.isnan(v) for v in a.summary.values())


def test_failed_and_skipped_rows_have_nan_counts():
    a = hts.analyze(_weights())
    rows = {r["longname"]: r for r in a.rows}
    dead = rows["dead"]
    # the fit failed: no power-law spikes were counted, but the rank was computed (an all-zero matrix has rank 0)
    assert math.isnan(dead["num_pl_spikes"])
    assert dead["matrix_rank"] == 0 and dead["rank_loss"] == 80
    skipped = [r for r in a.rows if r["status"] == "skipped"]
    assert skipped, "the tiny layer must be listed as skipped"
    for r in skipped:
        for col in ("num_pl_spikes", "matrix_rank", "rank_loss", "weak_rank_loss"):
            assert math.isnan(r[col]), (r["longname"], col)
    good = rows["a"]
    assert good["num_pl_spikes"] >= 1 and good["matrix_rank"] == 120 and good["rank_loss"] == 0
