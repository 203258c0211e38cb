"""``hts.analyze(tuned, base=base)`` against WeightWatcher 0.7.7's ``WeightWatcher(model=tuned,
base_model=base).analyze()``: both analyse ΔW = W_tuned − W_base per layer matched by name. Real weights
(all-MiniLM-L6-v2's encoder, 36 Linear layers) and a seeded heavy-tailed (Student-t) update of every weight."""

from __future__ import annotations

import contextlib
import copy
import io
import warnings

import pytest

import hts

ww = pytest.importorskip("weightwatcher")
torch = pytest.importorskip("torch")


def test_base_model_parity_on_minilm_encoder():
    from _models import minilm_module

    try:
        base = minilm_module().encoder
    except ImportError as err:
        pytest.skip(str(err))
    tuned = copy.deepcopy(base)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.01 * torch.distributions.StudentT(3.0).sample(p.shape))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        theirs = ww.WeightWatcher(model=tuned, base_model=base).analyze()
    state = lambda m: {k: v.detach().numpy() for k, v in m.state_dict().items()}  # noqa: E731
    result = hts.analyze(state(tuned), base=state(base))
    ours = {r["longname"]: r for r in result.rows if r["status"] == "success"}
    assert len(theirs) == len(ours) == 36 and set(theirs.longname) == set(ours)
    assert {r["role"] for r in ours.values()} == {"delta"}
    for row in theirs.to_dict("records"):
        mine = ours[row["longname"]]
        for col in ("alpha", "lambda_max", "log_norm", "log_spectral_norm", "alpha_weighted", "stable_rank",
                    "xmin", "num_pl_spikes"):
            # WeightWatcher subtracts in float32; hts in float64
            assert mine[col] == pytest.approx(row[col], rel=1e-5), (row["longname"], col)
