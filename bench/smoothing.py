"""SVD smoothing / sharpness: hts.svd_smoothing / hts.svd_sharpness (an edited copy, exact LAPACK truncation) vs
WeightWatcher 0.7.7's SVDSmoothing / SVDSharpness (in place; scikit-learn's randomized TruncatedSVD), on MiniLM
(all 37 analysable layers, the 30522 × 384 embedding included) and EfficientNet-Lite0 (its 34 layers that are not
depthwise: WeightWatcher's TruncatedSVD raises on 1-column slices).

    python bench/smoothing.py [--quick | --smoke] [--out bench/results/smoothing.md]

Each row also gives how far each tool's edited weights are from the originals (Σ over layers of ‖W − W'‖_F, relative
to WeightWatcher's): the exact truncation is the closest rank-k matrix (Eckart–Young), so hts's is never larger.
Times are single runs on a shared machine (indicative). Nothing is asserted.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
import warnings

import numpy as np

from _common import bench_dir, once, parse_mode, write_standalone
from _report import Section, Table, ratio


def _models(mode: str) -> list:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import _models

    import hts

    out = []
    lite = _models.efficientnet_lite_module(0)
    ids = [r["layer_id"] for r in hts.open(lite).rows() if r["analysed"]
           and not (r["layer_type"] == "conv2d" and r["M"] == 1)]
    out.append(("EfficientNet-Lite0 (34 layers)", lite, ids[:6] if mode == "smoke" else ids))
    if mode != "smoke":
        out.append(("MiniLM (37 layers)", _models.minilm_module(), None))
    return out


def _distance(before: dict, after: dict, keys) -> float:
    return float(sum(np.linalg.norm((after[k].double() - before[k].double()).numpy()) for k in keys))


def run(mode: str) -> Section:
    import hts
    from hts.smoothing import smoothing_plan

    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import weightwatcher as ww
        logging.getLogger("weightwatcher").setLevel(logging.CRITICAL + 1)
    except ImportError:
        ww = None
    table = Table("Smoothing and sharpening a whole model (one run each, seconds)",
                  [("model", "text"), ("call", "text"), ("hts", "s"), ("WeightWatcher", "s"), ("WW / hts", "x"),
                   ("‖ΔW‖ hts / WW", "r")])
    for name, model, ids in _models(mode):
        before = model.state_dict()
        for call, kw in (("SVDSmoothing detX", dict(method="detX")), ("SVDSmoothing svd 0.8", dict(method="svd")),
                         ("SVDSharpness", None)):
            if kw is None:
                ours_t = once(lambda: hts.svd_sharpness(model, layers=ids))
                ours = hts.svd_sharpness(model, layers=ids)
            else:
                ours_t = once(lambda: hts.svd_smoothing(model, layers=ids, **kw))
                ours = hts.svd_smoothing(model, layers=ids, **kw)
            keys = [p["key"] for p in smoothing_plan(model, layers=ids, method="svd")]
            ww_t = dist = None
            if ww is not None and mode != "smoke":
                theirs = copy.deepcopy(model)
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    np.random.seed(0)
                    if kw is None:
                        ww_t = once(lambda: ww.WeightWatcher().SVDSharpness(model=theirs, layers=ids or []))
                    else:
                        ww_t = once(lambda: ww.WeightWatcher().SVDSmoothing(model=theirs, layers=ids or [], **kw))
                ww_d = _distance(before, theirs.state_dict(), keys)
                dist = ratio(_distance(before, ours.state_dict(), keys), ww_d) if ww_d else None
            table.add(name, call, ours_t, ww_t, ratio(ww_t, ours_t), dist)
    table.notes = ("hts copies the model, analyses it (detX / MP fit) and edits the copy with a full float64 SVD "
                   "per matrix; WeightWatcher edits in place with a randomized TruncatedSVD (float32 full SVD to "
                   "remove components). SVDSharpness permutes at random (hts seeded, WeightWatcher after "
                   "np.random.seed(0)); the ‖ΔW‖ ratio is 1.00 when both removed the same traps. A trap is itself a "
                   "random event: on Lite0 WeightWatcher's draw put one MP spike in _blocks.3._expand_conv (1 of "
                   "12 permutations does) and hts's seed 0 did not, hence 0.00 there. Timed on a shared 2-core "
                   "machine: indicative only.")
    return Section("smoothing", "SVD smoothing and sharpness", tables=[table])


def main() -> None:
    mode, out = parse_mode(__doc__.splitlines()[0], os.path.join(bench_dir(), "results", "smoothing.md"))
    write_standalone(run(mode), mode, out)


if __name__ == "__main__":
    main()
