"""Issue 18 item 3: tied weights (one storage under two names) are counted once by every reader — a live
module, ``model.state_dict()``, what ``torch.load`` returns, a checkpoint file, a dict of numpy arrays — so the
same weights give the same summary whichever way they reach hts."""

from __future__ import annotations

import numpy as np
import pytest

import hts

torch = pytest.importorskip("torch")


class TinyLM(torch.nn.Module):
    def __init__(self, vocab=200, d=64, tie=True):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(vocab, d)
        self.block = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.GELU(), torch.nn.Linear(2 * d, d))
        self.lm_head = torch.nn.Linear(d, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.embed_tokens.weight
        with torch.no_grad():  # heavy-tailed weights (torch's global seed, set by the callers)
            for p in self.parameters():
                if p.dim() > 1:
                    p.copy_(torch.distributions.StudentT(3.0).sample(p.shape) * 0.1)


def _rows(a):
    return {r["key"]: r for r in a.rows}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyLM()


def _check(a, *, weights=3):
    rows = _rows(a)
    head = rows["lm_head.weight"]
    assert head["status"] == "skipped" and "tied to embed_tokens.weight" in head["reason"], head["reason"]
    assert rows["embed_tokens.weight"]["status"] == "success"
    assert a.counts["analysed"] == weights


def test_every_reader_counts_a_tied_head_once(model, tmp_path):
    live = hts.analyze(model)
    _check(live)
    state = model.state_dict()
    assert state["lm_head.weight"].data_ptr() == state["embed_tokens.weight"].data_ptr()
    from_state = hts.analyze(state)
    _check(from_state)
    path = tmp_path / "tied.pt"
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    from_load = hts.analyze(loaded)
    _check(from_load)
    from_file = hts.analyze(str(path))
    _check(from_file)
    for other in (from_state, from_load, from_file):
        assert other.summary == pytest.approx(live.summary, rel=1e-12)


def test_an_untied_head_is_analysed(tmp_path):
    torch.manual_seed(1)
    m = TinyLM(tie=False)
    a = hts.analyze(m)
    assert _rows(a)["lm_head.weight"]["status"] == "success" and a.counts["analysed"] == 4
    assert hts.analyze(m.state_dict()).counts["analysed"] == 4


def test_numpy_arrays_sharing_memory():
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(120, 60))
    fused = rng.standard_t(3, size=(90, 60))
    a = hts.analyze({"emb.weight": w, "head.weight": w, "q.weight": fused[:45], "k.weight": fused[45:],
                     "copy.weight": w.copy()})
    rows = _rows(a)
    assert rows["head.weight"]["status"] == "skipped" and "tied to emb.weight" in rows["head.weight"]["reason"]
    # distinct views of one buffer are distinct matrices; an equal copy is a different tensor
    assert all(rows[k]["status"] == "success" for k in ("emb.weight", "q.weight", "k.weight", "copy.weight"))
    # a transposed view of the same memory is a different view (not deduplicated): both analysed
    b = hts.analyze({"a.weight": w, "b.weight": w.T})
    assert b.counts["analysed"] == 2
