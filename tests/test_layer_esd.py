"""Analysis.esd(layer, scaled=, model=) and hts.layer_esd.layer_esd: the ESD of any layer, raw or scaled, analysed or
skipped — against numpy's SVD and against WeightWatcher 0.7.7's get_ESD (which has no conv scaling)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import pytest

import hts
from hts.layer_esd import layer_esd


def _sd():
    rng = np.random.default_rng(0)
    return {"a.weight": rng.standard_t(3, size=(120, 60)),
            "small.weight": rng.normal(size=(40, 5)),  # M = 5 < min_evals: skipped, has an ESD on request
            "n.weight": np.ones(120),  # not a matrix
            "c.weight": rng.normal(size=(24, 16, 3, 3))}


def _sv2(w):
    return np.sort(np.linalg.svd(w, compute_uv=False) ** 2)


def test_scaled_and_raw_for_analysed_and_skipped_layers():
    sd = _sd()
    slices = sd["c.weight"].transpose(2, 3, 0, 1).reshape(9, 24, 16)
    conv_raw = np.sort(np.concatenate([_sv2(s) for s in slices]))
    for pool, factor in ((True, 0.5), (False, 4.5)):
        a = hts.analyze(sd, pool=pool)
        np.testing.assert_allclose(a.esd(4, scaled=False), conv_raw, rtol=1e-10)
        np.testing.assert_allclose(a.esd(4), conv_raw * factor, rtol=1e-10)
        np.testing.assert_allclose(a.esd(1, scaled=False), _sv2(sd["a.weight"]), rtol=1e-10)
        if not pool:
            np.testing.assert_allclose(a.esd(4, slice_id=2, scaled=False), _sv2(slices[2]), rtol=1e-10)
        # a skipped layer: computed from the model on request, with the analysis' options
        with pytest.raises(KeyError, match="pass model="):
            a.esd("small")
        np.testing.assert_allclose(a.esd("small", model=sd), _sv2(sd["small.weight"]), rtol=1e-10)
        np.testing.assert_allclose(layer_esd(sd, "c", pool=pool), conv_raw * factor, rtol=1e-10)
    normalized = hts.analyze(sd, normalize=True)
    np.testing.assert_allclose(normalized.esd(1) * 120, normalized.esd(1, scaled=False), rtol=1e-12)
    np.testing.assert_allclose(normalized.esd(4, model=sd), normalized.esd(4), rtol=1e-10)
    inv = hts.analyze(sd, inverse=True)
    np.testing.assert_allclose(inv.esd(1, scaled=False), _sv2(sd["a.weight"]), rtol=1e-10)
    np.testing.assert_allclose(inv.esd(4), np.sort(1 / (0.5 * conv_raw)), rtol=1e-10)
    np.testing.assert_allclose(inv.esd("small", model=sd), np.sort(1 / _sv2(sd["small.weight"])), rtol=1e-10)
    with pytest.raises(KeyError, match="no layer 1"):
        layer_esd(sd, 1, start_ids=7)
    np.testing.assert_allclose(layer_esd(sd, 8, start_ids=7), _sv2(sd["small.weight"]), rtol=1e-10)
    with pytest.raises(ValueError, match="no ESD"):
        layer_esd(sd, "n")
    with pytest.raises(ValueError, match="no slice 9"):
        layer_esd(sd, "c", slice_id=9)


def test_randomized_and_intra_raw():
    sd = _sd()
    a = hts.analyze(sd, randomize=True, randomize_precision="float64")
    np.testing.assert_allclose(a.esd(4, randomized=True, scaled=False) * 0.5, a.esd(4, randomized=True), rtol=1e-12)
    rng = np.random.default_rng(2)
    conv = {"x.weight": rng.normal(size=(32, 16, 1, 1)), "y.weight": rng.normal(size=(48, 32, 1, 1))}
    b = hts.analyze(conv, intra=True, sparsify=False)
    np.testing.assert_allclose(b.esd(2, scaled=False) * np.sqrt(0.5), b.esd(2), rtol=1e-12)
    with pytest.raises(ValueError, match="intra=True"):
        b.esd(1, model=conv)
    tuned = {k: v + 0.01 for k, v in conv.items()}
    with pytest.raises(ValueError, match="base= result"):  # rows of W_tuned − W_base: no single-model ESD
        hts.analyze(tuned, base=conv, min_evals=40).esd("x", model=tuned)


def test_raw_esd_matches_weightwatcher_get_esd():
    """WeightWatcher's get_ESD (no conv scaling) on EfficientNet-Lite0: conv 3×3 (pooled slices), depthwise, 1×1 and
    the classifier, within 1e-9 relative to λ_max."""
    import _models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("torch", reason="needs torch==2.13.0")
        ww = pytest.importorskip("weightwatcher", reason="needs the compare extra")
    if ww.__version__ != "0.7.7":
        pytest.skip(f"parity is defined against weightwatcher 0.7.7, found {ww.__version__}")
    model = _models.efficientnet_lite_module(0)
    a = hts.analyze(model, layers=[1, 6, 9, 183])
    logger = logging.getLogger("weightwatcher")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            theirs = {i: np.sort(ww.WeightWatcher().get_ESD(model=model, layer=i)) for i in (1, 6, 9, 183)}
    finally:
        logger.setLevel(level)
    for i, ref in theirs.items():
        mine = a.esd(i, scaled=False)
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-9 * ref.max(), err_msg=str(i))
        assert np.allclose(layer_esd(model, i, scaled=False), ref, rtol=0, atol=1e-9 * ref.max())
