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
