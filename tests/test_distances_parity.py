"""``hts.distances`` against WeightWatcher 0.7.7's ``distances(model_1, model_2, method)`` (raw, euclidean, cka),
per layer and for the model average, on real weights: EfficientNet-Lite0 (Conv2D kernels, depthwise and 1×1,
and the classifier) against a seeded perturbation of it, and all-MiniLM-L6-v2 against a real LoRA fine-tune of it
merged by peft."""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import numpy as np
import pytest

import hts

ww = pytest.importorskip("weightwatcher")
torch = pytest.importorskip("torch")


def _ww_distances(m1, m2, method):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        avg, _, df = ww.WeightWatcher().distances(m1, m2, method=method)
    return float(avg), {name: float(v) for name, v in zip(df.longname, df.delta_W)}


def _state(module):
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _compare(m1, m2, expect_layers):
    ours = hts.distances(_state(m1), _state(m2), esd=False)
    rows = {r["key"].removesuffix(".weight"): r for r in ours.rows if r["status"] == "success"}
    for method in ("raw", "euclidean", "cka"):
        avg, theirs = _ww_distances(m1, m2, method)
        assert len(theirs) == expect_layers
        for name, value in theirs.items():
            assert rows[name][method] == pytest.approx(value, rel=1e-5, abs=1e-7), (method, name)
        assert np.mean([rows[n][method] for n in theirs]) == pytest.approx(avg, rel=1e-5)


def test_efficientnet_lite0_against_a_perturbed_copy():
    from _models import efficientnet_lite_module

    try:
        m1 = efficientnet_lite_module(0)
    except ImportError as err:
        pytest.skip(str(err))
    m2 = copy.deepcopy(m1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m2.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    _compare(m1, m2, expect_layers=50)


def test_minilm_against_its_merged_lora_fine_tune(peft_adapter):
    from _models import minilm_module

    case = peft_adapter("minilm", r=4, lora_alpha=8, target_modules=["query", "value"])
    tuned = minilm_module()
    tuned.load_state_dict({k: torch.from_numpy(v).float() for k, v in case.merged_state.items()})
    # the encoder (36 Linear layers): WeightWatcher's cka forms W·Wᵀ, 30522² for the word embeddings
    _compare(minilm_module().encoder, tuned.encoder, expect_layers=36)


def test_cka_of_tall_and_wide_matrices_against_the_formula(rng):
    """The memory-safe cka equals the formula with the full products, for tall, wide and square matrices."""
    from hts.weight_distances import matrix_distance

    for shape in ((40, 7), (7, 40), (12, 12)):
        w1 = rng.standard_normal(shape)
        w2 = w1 + 0.3 * rng.standard_normal(shape)
        want = np.linalg.norm(w1.T @ w2) / np.sqrt(np.linalg.norm(w1.T @ w1) * np.linalg.norm(w2 @ w2.T))
        assert matrix_distance(w1, w2, "cka") == pytest.approx(want, rel=1e-12)
