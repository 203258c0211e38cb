"""WeightWatcher 0.7.7 ``peft=True`` parity on a real adapter (MiniLM, r = 16, lora_alpha = r so s = 1: the
quantity WeightWatcher computes, B·A without the scale, is then the same; docs/differences-from-weightwatcher.md
rows 34-35)."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import hts

ww = pytest.importorskip("weightwatcher")
peft = pytest.importorskip("peft")
torch = pytest.importorskip("torch")


def test_peft_true_parity(tmp_path):
    from _models import minilm_module

    torch.manual_seed(0)
    model = peft.get_peft_model(minilm_module(), peft.LoraConfig(r=16, lora_alpha=16, target_modules=["query"],
                                                                  init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        details = ww.WeightWatcher(model=model).analyze(peft=True)
    theirs = {name.split("base_model.model.", 1)[-1].split(".lora_BA", 1)[0]: row
              for name, row in zip(details.longname, details.to_dict("records")) if ".lora_BA" in name}
    assert len(theirs) == 6
    ours = {r["longname"][: -len(".lora_delta")]: r for r in hts.analyze(tmp_path / "adapter").rows
            if r["longname"].endswith(".lora_delta")}
    assert set(ours) == set(theirs)
    for module, mine in ours.items():
        w = theirs[module]
        for col in ("alpha", "lambda_max", "log_norm", "log_spectral_norm", "alpha_weighted", "stable_rank"):
            assert mine[col] == pytest.approx(w[col], rel=1e-5), (module, col)
        assert mine["num_pl_spikes"] == w["num_pl_spikes"]


def test_peft_with_base_parity(tmp_path):
    """``peft='with_base'``: WeightWatcher's W row and its W + B·A row (``lora_W_plus_AB``) against hts's base and
    merged rows of ``hts.analyze(adapter, base=...)`` (s = 1, so W + s·B·A is the same matrix). The W rows agree
    in every column; for W + B·A WeightWatcher keeps only the r largest eigenvalues (its truncated SVD), so only
    λ_max is the same quantity (hts's merged ESD is checked in full against peft's merge in test_lora.py)."""
    from _models import minilm_dir, minilm_module

    torch.manual_seed(0)
    model = peft.get_peft_model(minilm_module(), peft.LoraConfig(r=16, lora_alpha=16, target_modules=["query"],
                                                                  init_lora_weights=False))
    model.save_pretrained(tmp_path / "adapter")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        details = ww.WeightWatcher(model=model).analyze(peft="with_base")
    theirs = {}
    for name, row in zip(details.longname, details.to_dict("records")):
        name = name.split("base_model.model.", 1)[-1]
        if name.endswith(".lora_W_plus_AB.default"):
            theirs[name[: -len(".lora_W_plus_AB.default")] + ".merged"] = row
        elif name.endswith("attention.self.query"):
            theirs[name + ".base"] = row
    assert len(theirs) == 12
    result = hts.analyze(tmp_path / "adapter", base=minilm_dir() / "model.safetensors")
    ours = {r["longname"]: r for r in result.rows if r["role"] in ("base", "merged")}
    assert set(ours) == set(theirs)
    for name, mine in ours.items():
        w = theirs[name]
        if name.endswith(".base"):  # W: the same matrix, the same full spectrum
            for col in ("alpha", "lambda_max", "log_norm", "log_spectral_norm", "alpha_weighted", "stable_rank",
                        "xmin", "num_pl_spikes"):
                assert mine[col] == pytest.approx(w[col], rel=1e-5), (name, col)
        else:  # W + B·A: WeightWatcher keeps only its r = 16 largest eigenvalues (difference 35), hts all 384
            assert w["num_evals"] == 16 and mine["num_evals"] == 384
            assert mine["lambda_max"] == pytest.approx(w["lambda_max"], rel=1e-5)
