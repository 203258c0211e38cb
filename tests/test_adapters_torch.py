"""The torch adapter: live modules and state_dicts of tensors (skipped when torch is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import hts
from hts.adapters import inventory

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")


class Conv1D(torch.nn.Module):
    """Like transformers.pytorch_utils.Conv1D (GPT-2): weight stored (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(nx, nf) * 0.1)
        self.bias = torch.nn.Parameter(torch.zeros(nf))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(300, 48)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, groups=32)
        )
        self.attn = torch.nn.MultiheadAttention(48, 4)
        self.c_attn = Conv1D(144, 48)
        self.cls_token = torch.nn.Parameter(torch.randn(1, 48))
        self.ln = torch.nn.LayerNorm(48)
        self.fc = torch.nn.Linear(48, 20)


@pytest.fixture
def net() -> Net:
    torch.manual_seed(0)
    return Net()


def test_ids_names_and_types_follow_named_modules(net):
    inv = inventory(net)
    positions = {name: i for i, (name, _) in enumerate(net.named_modules())}
    for t in inv:
        assert t.layer_id == positions[t.longname]
    by_key = {t.key: t for t in inv}
    assert by_key["emb.weight"].layer_type == "embedding"
    assert by_key["features.0.weight"].layer_type == "conv2d" and by_key["features.0.weight"].name == "0"
    assert by_key["features.1.weight"].skip_reason == "normalization layer"
    assert by_key["attn.out_proj.weight"].layer_type == "dense"  # NonDynamicallyQuantizableLinear
    assert by_key["attn.in_proj_weight"].skip_reason.startswith("packed q/k/v")
    assert by_key["c_attn.weight"].layer_type == "conv1d" and by_key["c_attn.weight"].orientation == "in_out"
    assert by_key["cls_token"].skip_reason and by_key["cls_token"].layer_id == 0
    assert "fc.bias" not in by_key


def test_module_and_its_state_dict_give_the_same_numbers(net):
    live = hts.analyze(net)
    sd = hts.analyze(net.state_dict())
    live_rows = {r["key"]: r for r in live.rows if r["status"] == "success"}
    sd_rows = {r["key"]: r for r in sd.rows if r["status"] == "success"}
    assert set(live_rows) == {"emb.weight", "features.0.weight", "features.3.weight", "attn.out_proj.weight",
                              "c_attn.weight", "fc.weight"}
    assert set(sd_rows) == set(live_rows)
    for key, row in live_rows.items():
        for col in ("alpha", "xmin", "D", "log_norm", "alpha_weighted", "num_evals"):
            assert sd_rows[key][col] == row[col], (key, col)
    # state_dict ids count *.weight keys from 1 (WeightWatcher's reader); module ids are named_modules positions
    assert [r["layer_id"] for r in sd.rows][:3] == [1, 2, 3]


def test_module_matches_numpy_weights(net):
    a = hts.analyze(net, layers=["fc"])
    w = net.fc.weight.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(a.esd("fc"), np.sort(np.linalg.svd(w, compute_uv=False) ** 2), rtol=1e-10)


def test_bfloat16_and_half_models_are_widened(net):
    ref = hts.analyze(net).rows
    for dtype in (torch.bfloat16, torch.float16):
        low = hts.analyze(net.to(dtype)).rows
        for a, b in zip(ref, low):
            assert b["dtype"] == str(dtype).replace("torch.", "") or b["status"] == "skipped"
            if a["status"] == "success":
                assert b["alpha"] == pytest.approx(a["alpha"], rel=0.05)


def test_meta_and_lazy_weights_are_listed_not_crashing():
    with torch.device("meta"):
        meta = torch.nn.Sequential(torch.nn.Linear(20, 30))
    lazy = torch.nn.Sequential(torch.nn.LazyLinear(10))
    for model, reason in ((meta, "meta"), (lazy, "not initialised")):
        a = hts.analyze(model)
        (row,) = a.rows
        assert row["status"] == "skipped" and reason in row["reason"]


def test_torch_conv1d_is_analysed_as_k_slices():
    torch.manual_seed(1)
    conv = torch.nn.Conv1d(16, 40, 5)
    (row,) = hts.analyze(conv).rows
    w = conv.weight.detach().numpy().astype(np.float64)
    expected = np.sort(np.concatenate([np.linalg.svd(w[:, :, k], compute_uv=False) ** 2 for k in range(5)]))
    assert (row["N"], row["M"], row["rf"], row["num_evals"]) == (40, 16, 5, 80)
    np.testing.assert_allclose(hts.analyze(conv).esd(0), expected, rtol=1e-10)
