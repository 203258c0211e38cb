"""``hts.analyze``: one row of spectral metrics per weight matrix and a model summary.

Flow: adapters (an inventory of lazily loaded tensors) → selection and size gates (from shapes only) →
batches of layers whose slices go through the threaded eigenvalue kernel together → per-layer power-law
fits (in the calling thread; with ``randomize`` the shuffled ESDs of the batch come from one more threaded
native call first) → rows → ``Analysis``. Nothing here formats output.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import closing
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import spectra
from ._native import _core
from ._json import jsonable
from ._stop import StopCheck
from ._threads import resolve_threads
from .adapters import WeightTensor
from .detx import detx_columns
from .vectors import vector_columns
from .fit_tests import DEFAULT_REPLICATES, fit_test_columns
from .fitting import FIX_FINGERS, LayerFit, fit_layer, normalize_fit
from .inventory import open_model
from .matrices import CONV_METHODS, LayerPlan, plan_layer, skip_reason, stack
from .analysis_rows import AnalysisRows, RowsBuilder
from .metrics import COLUMNS, layer_row, rank_loss, skipped_row
from .screening import nonfinite_reason, unsupported_dtype_reason
from .selection import layer_entries, renumber, select

__all__ = ["SUMMARY_METRICS", "Analysis", "analyze"]


def _is_finite_number(value: Any) -> bool:
    """True for a real number that is neither NaN nor ±inf (None and strings are not)."""
    try:
        return math.isfinite(value)
    except TypeError:
        return False

logger = logging.getLogger(__name__)

#: The reason of a row whose tensor data could not be read (its file is broken or changed): it starts with this.
UNREADABLE = "could not load weights"

#: WeightWatcher's summary: the plain mean of these columns over the analysed rows.
SUMMARY_METRICS = ("log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank")

#: Loaded weights per kernel batch; larger layers go alone.
BATCH_BYTES = 256 * 2**20
#: The most decoded weight bytes of the batch being solved and the one read ahead, together (``_Prefetcher``).
READ_AHEAD_BYTES = 384 * 2**20

#: The ``precision`` choices of ``analyze``.
PRECISIONS = ("float64", "float32", "auto")

#: With precision="float32", a layer is redone in float64 when its fitted xmin is below this × λ_max,
#: where float32's absolute eigenvalue error (~(N+M)·6e-8·λ_max) could move the fit.
FLOAT32_REDO_BELOW = 1e-4

#: With precision="auto", layers whose smaller side (the Gram's order) is at least this go in float32 (with
#: the float64 redo rule above); smaller ones, where float32 saves little time, stay in float64.
AUTO_FLOAT32_MIN_SIDE = 1024

#: With randomize_precision="float32", shuffled slices whose smaller side is below this are still done in
#: float64: they cost little, and the narrowest are where a shuffle barely moves the ESD (an N×1 slice's only
#: eigenvalue is its squared norm, which no shuffle changes), so round-off would be all that differed.
RANDOM_FLOAT32_MIN_SIDE = 32

ProgressCallback = Callable[[int, int, str], Any]


class Analysis:
    """The result of ``hts.analyze``: plain data, JSON-serialisable.

    Attributes
    ----------
    rows : sequence of dict
        One dict per analysed matrix (per slice with ``pool=False``) and per skipped tensor, in model order,
        with the columns of ``details``: a read-only ``hts.analysis_rows.AnalysisRows`` (indexing, slices,
        iteration, ``==`` with a list; ``list(rows)`` for a list). For a file read lazily (safetensors,
        ``.npz``, Flax, Orbax) the row of a skipped tensor is made when it is used, a new equal dict each
        time, so that a flood of skipped tensors costs a few dozen bytes each (docs/formats.md, "Limits").
    options : dict
        The options the analysis ran with.
    """

    def __init__(self, rows: Iterable[dict], esds: dict, options: dict) -> None:
        self.rows = rows if isinstance(rows, AnalysisRows) else AnalysisRows(rows)
        self._esds = esds
        self.options = options

    # -- tables ---------------------------------------------------------------------------------------
    @property
    def details(self):
        """pandas DataFrame, one row per analysed matrix and per skipped tensor (``status == "skipped"``).

        WeightWatcher's columns (layer_id, name, longname, layer_type, N, M, Q, rf, num_evals, alpha, xmin,
        xmax, D, sigma, num_pl_spikes, alpha_weighted, log_alpha_norm, norm, log_norm, spectral_norm,
        log_spectral_norm, lambda_max, stable_rank, matrix_rank, rank_loss, weak_rank_loss, entropy, sv_max,
        sv_min, has_esd, status, warning; slice_id with pool=False; num_fingers, raw_alpha with
        fix_fingers; Lambda with fit="TPL"/"E_TPL"), then hts's: reason (why skipped or failed), key, shape (as stored), dtype, conv_method,
        num_fit (eigenvalues fitted), precision, time (seconds, the layer's share of the batch).
        """
        try:
            import pandas as pd
        except ImportError as err:  # pragma: no cover - pandas is a dependency
            raise ImportError("Analysis.details needs pandas: pip install pandas") from err
        from ._frames import CHUNK_ROWS, table

        if len(self.rows) > CHUNK_ROWS:  # made a chunk at a time: never a dict per row all at once
            return pd.concat(list(self.detail_frames()), ignore_index=True)
        columns = self.detail_columns()
        df = table(list(self.rows), columns)
        if "slice_id" in columns:
            df["slice_id"] = df["slice_id"].astype("Int64")
        return df

    def detail_frames(self, *, skipped: bool = True, chunk: int | None = None) -> Iterator:
        """``details`` (``skipped=False``: without the skipped rows) as consecutive DataFrames of at most
        ``chunk`` rows (``hts._frames.CHUNK_ROWS``), with the whole table's columns and column types: what the
        command line writes a long table from without holding every row. One frame, ``details`` itself, when
        every row fits in one chunk."""
        from ._frames import CHUNK_ROWS, Scan, frames

        chunk = chunk or CHUNK_ROWS
        if len(self.rows) <= chunk:
            df = self.details
            yield df if skipped else df[df.status != "skipped"]
            return
        scan = Scan(weighted=self.rows.weighted_sample())
        columns = _detail_columns(scan.seen)
        rows = self.rows if skipped else self.analysed
        for df in frames(rows, columns, scan.types(columns), chunk=chunk):
            yield df.assign(slice_id=df["slice_id"].astype("Int64")) if "slice_id" in columns else df

    def detail_columns(self) -> list[str]:
        """The columns of ``details``, in order."""
        return _detail_columns({c for row, _ in self.rows.weighted_sample() for c in row})

    @property
    def analysed(self) -> list[dict]:
        """The rows of analysed matrices (status "success" or "failed")."""
        return [r for r in self.rows.held if r["status"] != "skipped"]

    @property
    def summary(self) -> dict:
        """WeightWatcher's model summary: for each of log_norm, alpha, alpha_weighted, log_alpha_norm,
        log_spectral_norm, stable_rank (and mp_softrank with mp_fit), the mean

            summary[k] = (1/|S_k|) · Σ_{r ∈ S_k} r[k],   S_k = {rows r : status(r) = "success", r[k] finite}

        With ``base=`` the rows have a ``role`` and S_k holds the update rows only (role "delta" or
        "lora_delta"), not the base and merged weights beside them (``summary_by_role`` has those).

        Unlike WeightWatcher, failed rows and non-finite values (a NaN fit, the −inf log norm of an all-zero
        layer) are left out, so one broken layer cannot turn the model's summary into NaN or −inf. A metric
        with no finite value on any successful row is NaN.
        """
        rows = self.rows.held  # a compact skipped row has no role and no metric
        if any("role" in r for r in rows):
            rows = [r for r in rows if r.get("role") in UPDATE_ROLES]
        keys = list(SUMMARY_METRICS) + (["mp_softrank"] if self.options.get("mp_fit") else [])
        return _mean_columns(rows, keys)

    @property
    def summary_by_role(self) -> dict:
        """With ``base=`` (rows with a ``role``): ``summary``'s means for each role's rows ("delta" /
        "lora_delta": the updates, "base": W, "merged": W + s·B·A), and (with a base) "change": the mean over
        the update rows of each ``delta_k = k(tuned) − k(base)`` column (``hts.diff.CHANGE_METRICS``). Empty
        when no row has a role (a LoRA adapter's update rows have role "lora_delta" even without a base)."""
        held = self.rows.held  # a compact skipped row has no role
        roles = [role for role in dict.fromkeys(r.get("role") for r in held) if role]
        if not roles:
            return {}
        keys = list(SUMMARY_METRICS) + (["mp_softrank"] if self.options.get("mp_fit") else [])
        out = {role: _mean_columns([r for r in held if r.get("role") == role], keys) for role in roles}
        updates = [r for r in held if r.get("role") in UPDATE_ROLES]
        changes = [k for k in dict.fromkeys(k for r in updates for k in r) if k.startswith("delta_")]
        if changes:  # an adapter analysed without its base has no changes
            out["change"] = _mean_columns(updates, changes)
        return out

    @property
    def unreadable(self) -> list[dict]:
        """The failed rows whose tensor data could not be read (not a failed fit: the file itself is broken,
        truncated or changed while read). The command line exits with status 1 when there are any."""
        return [r for r in self.rows.held
                if r["status"] == "failed" and str(r.get("reason", "")).startswith(UNREADABLE)]

    @property
    def counts(self) -> dict:
        """How many rows were analysed, failed, skipped, and labelled over-/under-trained.

        With ``base=`` (rows with a ``role``) the over-/under-trained labels are counted, like ``summary``, over
        the update rows only: a base or merged row's label says nothing about the fine-tune."""
        rows = self.rows.held  # a compact skipped row has no role and warning ""
        labelled = [r for r in rows if r.get("role") in UPDATE_ROLES] if any("role" in r for r in rows) else rows
        return {
            "analysed": sum(r["status"] == "success" for r in rows),
            "failed": sum(r["status"] == "failed" for r in rows),
            "skipped": self.rows.skipped_count,
            "over_trained": sum(r["warning"] == "over-trained" for r in labelled),
            "under_trained": sum(r["warning"] == "under-trained" for r in labelled),
        }

    def esd(self, layer: int | str, slice_id: int | None = None, *, randomized: bool = False, scaled: bool = True,
            model: Any = None) -> np.ndarray:
        """The ascending eigenvalues of a layer (by layer_id or longname).

        Parameters
        ----------
        layer
            A layer_id or longname.
        slice_id
            With ``pool=False``: one slice's eigenvalues (default: all slices pooled).
        randomized
            After ``randomize=True``: the ESD of the shuffled weights instead.
        scaled
            True (default): the values the row was fitted on — conv slices × ½ pooled (× kh·kw/2 per slice),
            ÷ N with ``normalize=True``, 1/λ with ``inverse=True``, σ(X) with ``intra=True``. False: the plain
            eigenvalues λ = σ(W)² of the layer's matrices, with none of these (WeightWatcher's ``get_ESD``,
            which leaves out the conv scaling that its ``analyze`` applies); for an ``intra`` row, σ(X).
        model
            The model that was analysed: needed only for a layer that is not in the result (skipped for its
            size, tied, or left out by ``layers``), whose ESD is then computed with this analysis' options
            (``hts.layer_esd.layer_esd``).

        Raises
        ------
        KeyError
            No such analysed layer and no ``model`` (or no such layer in ``model``).
        """
        kind = "random" if randomized else "esd"
        matches = [k for k in self._esds if k[3] == kind and (k[0] == layer or k[1] == layer)]
        if not matches and model is not None and not randomized:
            return self._computed_esd(model, layer, slice_id, scaled)
        if not matches:
            known = ", ".join(f"{k[0]}:{k[1]}" for k in list(self._esds)[:10] if k[3] == "esd")
            hint = "; pass model= for a layer that was not analysed" if not randomized else ""
            raise KeyError(f"no analysed layer {layer!r} (analysed: {known}{', ...' if len(self._esds) > 10 else ''})"
                           f"{hint}")
        if len({(k[0], k[1]) for k in matches}) > 1:
            raise KeyError(f"{layer!r} names several layers; use the layer_id")
        if slice_id is not None:
            matches = [k for k in matches if k[2] == slice_id]
            if not matches:
                raise KeyError(f"layer {layer!r} has no slice {slice_id}")
        parts = [self._esds[k] if scaled else self._unscaled(k) for k in matches]
        return parts[0].copy() if slice_id is not None else np.sort(np.concatenate(parts))

    def _unscaled(self, key) -> np.ndarray:
        entry = self._esds.get((*key[:3], "scale"))
        if entry is None:
            raise ValueError(f"layer {key[1]!r}: the unscaled ESD is not known for this result; use "
                             f"hts.layer_esd.layer_esd(model, {key[0]}, scaled=False)")
        factor, inverted = entry
        values = self._esds[key]
        return np.sort((1.0 / values if inverted else values) / factor)

    def _computed_esd(self, model, layer, slice_id, scaled) -> np.ndarray:
        from .layer_esd import layer_esd

        opts = self.options
        if opts.get("intra") or opts.get("base") is not None:
            raise ValueError("an intra=True or base= result holds pair / update ESDs only; for one layer of a model "
                             "use hts.layer_esd.layer_esd(model, layer)")
        return layer_esd(model, layer, slice_id=slice_id, scaled=scaled, pool=opts.get("pool", True),
                         conv_method=opts.get("conv_method", "slices"), conv_input_size=opts.get("conv_input_size"),
                         normalize=opts.get("normalize", False), inverse=opts.get("inverse", False),
                         start_ids=opts.get("start_ids", 0))

    # -- serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything as plain JSON types (NaN and ±inf become None)."""
        by_role = self.summary_by_role
        return jsonable({"options": self.options, "summary": self.summary, "counts": self.counts,
                          **({"summary_by_role": by_role} if by_role else {}), "layers": self.rows})

    def json_parts(self, indent: int | None = None) -> Iterator[str]:
        """``to_json(indent=indent)``'s text in parts, one row after another: joined, the same text, made
        without holding every row's JSON (what ``hts analyze --format json`` writes)."""
        from ._json import json_parts

        by_role = self.summary_by_role
        head = jsonable({"options": self.options, "summary": self.summary, "counts": self.counts,
                         **({"summary_by_role": by_role} if by_role else {})})
        return json_parts(head, "layers", (jsonable(r) for r in self.rows), indent=indent, allow_nan=False)

    def to_json(self, path: str | None = None, **kwargs) -> str:
        """JSON text of ``to_dict()`` (strict: no NaN); written to ``path`` when given. With no keyword but
        ``indent`` it is made one row at a time (``json_parts``), without ``to_dict()``'s copy of every row."""
        if set(kwargs) <= {"indent"}:
            text = "".join(self.json_parts(indent=kwargs.get("indent")))
        else:
            text = json.dumps(self.to_dict(), allow_nan=False, **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_html(self, path: str | None = None, **kwargs) -> str:
        """A self-contained HTML report (``hts.report.html.analysis_html``; keywords ``title``, ``source``,
        ``worst``); written to ``path`` when given. Needs matplotlib (``pip install 'hts[plot]'``)."""
        from .report.html import analysis_html

        text = analysis_html(self, **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def __repr__(self) -> str:
        c = self.counts
        s = self.summary
        return (f"<hts.Analysis: {c['analysed']} analysed, {c['failed']} failed, {c['skipped']} skipped; "
                f"alpha={s['alpha']:.3f} alpha_weighted={s['alpha_weighted']:.3f}>")


#: The ``role`` of the update rows of a base-vs-tuned analysis (``hts.diff``): the summary is over these.
UPDATE_ROLES = ("delta", "lora_delta")


def _detail_columns(present) -> list[str]:
    """``details``' columns, given the keys present in the rows."""
    extra = sorted(set(present) - set(COLUMNS) - {"slice_id"})
    head, tail = list(COLUMNS[: COLUMNS.index("has_esd")]), list(COLUMNS[COLUMNS.index("has_esd"):])
    if "slice_id" in present:
        head.insert(head.index("longname") + 1, "slice_id")
    return head + extra + tail


def _mean_columns(rows: list[dict], keys: Iterable[str]) -> dict:
    """For each key, the mean of its finite values over the successful rows (NaN when there is none)."""
    ok = [r for r in rows if r["status"] == "success"]
    out = {}
    for key in keys:
        values = [float(r[key]) for r in ok if _is_finite_number(r.get(key))]
        out[key] = float(np.mean(values)) if values else float("nan")
    return out


def _mp_columns(pooled: np.ndarray, plan: LayerPlan) -> dict:
    """WeightWatcher's mp_fit columns (NaN, num_spikes 0, when the fit fails)."""
    fit = spectra.marchenko_pastur_fit(pooled, N=plan.N, M=plan.M, threads=1)
    return {"num_spikes": fit.num_spikes, "sigma_mp": fit.sigma_mp, "mp_softrank": fit.mp_softrank,
            "W_scale": fit.W_scale, "bulk_max": fit.bulk_max, "bulk_min": fit.bulk_min}


def _replicates(fit_tests) -> int:
    """0 (off), DEFAULT_REPLICATES for True, or the positive int given."""
    if fit_tests is True:
        return DEFAULT_REPLICATES
    if fit_tests is False or fit_tests is None:
        return 0
    if not isinstance(fit_tests, int) or fit_tests < 1:
        raise ValueError(f"fit_tests must be a bool or a positive number of replicates, got {fit_tests!r}")
    return fit_tests


def _check_options(conv_method, conv_input_size, min_evals, max_evals, max_N, precision, fix_fingers,
                   randomize, seed, randomize_precision):
    if randomize and conv_method == "fft":
        raise ValueError("randomize=True is not available with conv_method='fft'")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    if conv_method not in CONV_METHODS:
        raise ValueError(f"conv_method must be one of {CONV_METHODS}, got {conv_method!r}")
    if conv_input_size is not None:
        size = tuple(conv_input_size) if not isinstance(conv_input_size, int) else (conv_input_size,) * 2
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"conv_input_size must be an int or (n1, n2), got {conv_input_size!r}")
        conv_input_size = size
    if not (0 <= min_evals < max_evals):
        raise ValueError(f"need 0 <= min_evals < max_evals, got {min_evals}, {max_evals}")
    if max_N < max_evals:
        raise ValueError(f"max_N ({max_N}) must be >= max_evals ({max_evals})")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if randomize_precision not in ("float64", "float32"):
        raise ValueError(f"randomize_precision must be 'float64' or 'float32', got {randomize_precision!r}")
    if fix_fingers not in FIX_FINGERS:
        raise ValueError(f"fix_fingers must be one of {FIX_FINGERS}, got {fix_fingers!r}")
    return conv_input_size


def _check_ww_options(tolerance, inverse, start_ids, *, precision, normalize, vectors, randomize) -> None:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < math.inf:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if isinstance(start_ids, bool) or not isinstance(start_ids, int) or start_ids < 0:
        raise ValueError(f"start_ids must be an int >= 0 (WeightWatcher: layer ids start at 0 or 1), got {start_ids!r}")
    if inverse:
        clash = [name for name, on in (("vectors", vectors), ("randomize", randomize), ("normalize", normalize),
                                       (f"precision={precision!r}", precision != "float64")) if on]
        if clash:
            raise ValueError(f"inverse=True is not available with {', '.join(clash)}")


def analyze(
    model: Any,
    *,
    layers: Iterable | int | str | None = None,
    pool: bool = True,
    conv_method: str = "slices",
    conv_input_size: int | tuple | None = None,
    normalize: bool = False,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_N: int = 50000,
    precision: str = "float64",
    fix_fingers: str | None = None,
    xmin_max: float | None = None,
    fit: str = "PL",
    mp_fit: bool = False,
    detX: bool = False,
    ERG: bool = False,
    fit_tests: bool | int = False,
    vectors: bool = False,
    tolerance: float = 1e-6,
    inverse: bool = False,
    start_ids: int = 0,
    intra: bool = False,
    sparsify: bool = True,
    randomize: bool = False,
    randomize_precision: str = "float32",
    seed: int = 0,
    threads: int | None = None,
    progress: ProgressCallback | bool | None = None,
    cancel: Any = None,
    time_budget: float | None = None,
    base: Any = None,
) -> Analysis:
    """Spectral metrics of every weight matrix of ``model``, as WeightWatcher 0.7.7 computes them.

    Parameters
    ----------
    model
        A ``torch.nn.Module``; a PyTorch state_dict; a dict (or list of pairs) name → numpy array; a path to a
        model file or folder (safetensors, sharded safetensors, ``.pt``/``.pth``/``.bin``, ``.npy``/``.npz``,
        a Hugging Face folder); an ``hts.open(...)`` inventory (e.g. with ``split_fused=True``).
    layers
        Which layers (WeightWatcher's filter): layer ids, negative ids to exclude, layer types
        ("dense", "conv2d", ...), names / longnames, "-name" to exclude. Default: all.
    pool
        Conv2D: one row per layer from the pooled slice ESDs (default), or one row per slice.
    conv_method
        Conv2D spectrum: "slices" (WeightWatcher's kh·kw slices, scaled by 1/2 pooled and kh·kw/2 per
        slice), "stacked" (one (kh·kw·out)×in matrix), "fft" (exact singular values of the convolution
        operator on a periodic ``conv_input_size`` input, default the kernel size).
    conv_input_size
        Input size n or (n1, n2) for ``conv_method="fft"``.
    normalize
        Use X = WᵀW / N (the seed paper's convention): eigenvalues and norms scale by 1/N; the fit is made
        on the unnormalised eigenvalues and its xmin/xmax rescaled, so alpha does not change.
    min_evals, max_evals, max_N
        Size gates: a layer is skipped (listed with the reason) when its number of eigenvalues (M·rf pooled,
        M per slice) is outside [min_evals, max_evals] or its larger side N exceeds max_N.
    precision
        "float64" (default, as WeightWatcher), "float32" (faster; a layer whose fitted xmin falls below
        1e-4·λ_max, where float32's error could matter, is redone in float64) or "auto": float32 with that
        redo rule for layers whose smaller side is at least ``AUTO_FLOAT32_MIN_SIDE`` (1024), float64 for
        the others. The ``precision`` column says which one each row got.
    fix_fingers
        None, "clip_xmax": refit with the largest eigenvalues removed, or "xmin_peak": search xmin only up
        to ``xmin_max`` (default 1.5 × the peak of the log-ESD histogram); see ``hts.fitting.fit_layer``.
    xmin_max
        The upper end of the xmin search of ``fix_fingers="xmin_peak"`` (ignored otherwise).
    fit
        "PL" (the power law), "TPL" (the truncated power law x^(−alpha) e^(−Lambda x), WeightWatcher's
        ``fit="TPL"``: alpha, xmin, D of that fit, a ``Lambda`` column, sigma NaN) or "E_TPL" (TPL with the
        xmin_peak search); see ``hts.tpl``. WeightWatcher's names power_law / truncated_power_law work too.
    detX, ERG
        (The same switch.) Add WeightWatcher's detX columns: detX_num = num_ERG_spikes, detX_val,
        detX_val_unrescaled, ERG_gap (see ``hts.detx``).
    fit_tests
        Add goodness-of-fit columns (``hts.fit_tests``): pl_pvalue (bootstrap, True = 1000 replicates or the
        int given, seeded by ``seed``), R_/p_ of the likelihood-ratio tests against exponential, stretched
        exponential, lognormal and truncated power law, best_fit and fit_verdict. About 0.5 ms per replicate
        per 1000 eigenvalues (bench/results/goodness.md).
    vectors
        Add WeightWatcher's eigenvector localisation columns {bulk,tail}_{mean,var}_{vec_entropy,loc_ratio,
        part_ratio} (see ``hts.vectors``; a full eigendecomposition per matrix).
    tolerance
        weak_rank_loss counts the eigenvalues below this (WeightWatcher's ``tolerance``, default 1e-6).
    inverse
        Analyse the inverse ESD: every eigenvalue λ of the layer (after the conv scaling) is replaced by 1/λ
        before the fit and the metrics (WeightWatcher's ``inverse=True``; sv_max, sv_min and rank_loss stay
        those of W). A layer with an eigenvalue exactly 0 fails (it has no inverse). Needs
        ``precision="float64"`` and ``normalize=False``; not with ``vectors`` or ``randomize``.
    start_ids
        WeightWatcher's ``start_ids``: 0 (default) keeps the usual layer ids (a torch module's root is 0, the
        first tensor of a state dict or file is 1); s > 0 numbers from s (the root, or the first tensor, gets
        id s). The ``layers`` filter takes the renumbered ids.
    intra, sparsify
        WeightWatcher's ``intra=True``: instead of one row per layer, one row per pair of consecutive analysable
        layers, the spectrum of X = W0·S·W1 / (‖W0‖‖W1‖ + √‖S‖) (S a random 0/1 mask seeded by ``seed``;
        ``sparsify=False``: X = W0·W1 / (‖W0‖‖W1‖)); its "eigenvalues" are the singular values of X (see
        ``hts.intra``). Not with ``randomize``, ``vectors`` or ``conv_method`` other than "slices".
    mp_fit
        Add WeightWatcher's Marchenko–Pastur bulk fit columns: num_spikes, sigma_mp, mp_softrank, W_scale,
        bulk_max, bulk_min (see ``spectra.marchenko_pastur_fit``); the summary then has mp_softrank.
    randomize
        Add the ESD of the element-shuffled weights and WeightWatcher's columns from it: rand_distance
        (Jensen–Shannon), ww_softrank, ww_maxdist, max_rand_eval and the MP fit of the shuffled ESD
        (rand_num_spikes = num_traps, rand_sigma_mp, ...); see ``spectra.randomization_metrics``.
        Not available with ``conv_method="fft"``.
    randomize_precision
        Precision of the shuffled weights' eigenvalues: "float32" (default; 1.7-3× faster on layers 384 and
        more wide) or "float64". The shuffled ESD is one random draw: its seed-to-seed spread in the randomize
        columns is orders of magnitude larger than float32's round-off (~1e-7·λ_max); the MP-fit columns
        move by at most the fit's own Nelder–Mead tolerance (docs/differences-from-weightwatcher.md, row 26).
        Slices narrower than ``RANDOM_FLOAT32_MIN_SIDE`` (32) stay in float64. The layer's own ESD follows
        ``precision``.
    seed
        Seed of the shuffles (randomize): the same seed gives the same numbers, whatever the threads.
    threads
        Native threads (default: every core this process may use, capped by OMP_NUM_THREADS). With more
        than one, a worker reads and decodes the next kernel batch while the current one is solved (one
        batch ahead at most); ``threads=1`` reads and solves in turn, in the calling thread.
    progress
        ``True``: a progress bar on stderr (tqdm when installed and stderr is a terminal or a Jupyter kernel,
        else a line every 10 s); ``False`` or None (default): quiet. A callable is called as ``progress(done, total, longname)``
        after each analysed layer, in the calling thread; if it returns ``False`` (exactly False; None and
        other values go on) the analysis stops as ``cancel`` does.
    cancel
        A ``threading.Event`` (or anything with ``is_set()``; it may be polled from hts's worker threads):
        once set, the analysis stops at the next layer or kernel-batch boundary and raises ``hts.Cancelled``
        (its message and ``done``/``total`` say how many layers were finished). A running kernel batch
        (at most ``BATCH_BYTES`` of weights, or one larger layer) is not interrupted.
    time_budget
        Seconds the call may take; when they run out the analysis stops as with ``cancel``.
    base
        A base model (anything ``model`` may be): the rows are then those of the update W_model − W_base per
        tensor matched by name, with the change of each metric, or for a PEFT adapter ``model`` the update
        s·B·A, W and W + s·B·A side by side (``hts.diff``).

    Returns
    -------
    Analysis

    Raises
    ------
    hts.Cancelled
        When ``cancel``, ``progress`` or ``time_budget`` stopped the analysis; no partial result is returned.
    """
    if base is not None:
        options = {k: v for k, v in locals().items() if k not in ("model", "base")}
        from .diff import analyze_with_base

        return analyze_with_base(model, base, **options)
    stop = StopCheck(cancel, time_budget)
    conv_input_size = _check_options(conv_method, conv_input_size, min_evals, max_evals, max_N, precision,
                                     fix_fingers, randomize, seed, randomize_precision)
    fit = normalize_fit(fit, fix_fingers)
    _check_ww_options(tolerance, inverse, start_ids, precision=precision, normalize=normalize, vectors=vectors,
                      randomize=randomize)
    if intra and (randomize or vectors or inverse or conv_method != "slices"):
        raise ValueError("intra=True is not available with randomize, vectors, inverse or conv_method other than "
                         "'slices'")
    n_threads = resolve_threads(threads)
    if layers is not None:
        layers = layer_entries(layers)  # TypeError now for a malformed filter (e.g. layers=3.5)
    options = dict(layers=layers,
                   pool=pool, conv_method=conv_method, conv_input_size=conv_input_size, normalize=normalize,
                   min_evals=min_evals, max_evals=max_evals, max_N=max_N, precision=precision,
                   fix_fingers=fix_fingers, xmin_max=xmin_max, **({"fit": fit} if fit != "PL" else {}),
                   mp_fit=mp_fit, detX=bool(detX or ERG),
                   fit_tests=fit_tests, vectors=vectors, tolerance=tolerance, inverse=inverse, start_ids=start_ids,
                   **({"intra": True, "sparsify": bool(sparsify)} if intra else {}),
                   randomize=randomize,
                   randomize_precision=randomize_precision, seed=seed, threads=n_threads,
                   hts_version=spectra.kernel_info()["version"])
    tensors = select(renumber(open_model(model).tensors, start_ids), layers)

    slots = RowsBuilder(tensors)  # rows per tensor position; skipped ones compact for a lazy listing
    work: list[tuple[int, WeightTensor, LayerPlan]] = []
    for i, t in enumerate(tensors):  # a lazy listing makes one record at a time: only the analysed ones are kept
        reason = t.skip_reason
        plan = None
        if not reason:
            plan = plan_layer(t, pool=pool, conv_method=conv_method, conv_input_size=conv_input_size,
                              normalize=normalize)
            reason = skip_reason(plan, pool=pool, min_evals=min_evals, max_evals=max_evals, max_N=max_N)
        if reason:
            logger.info("layer %s %r skipped: %s", t.layer_id, t.longname, reason)
            slots.skip(i, t, reason, plan)
        else:
            work.append((i, t, plan))

    esds: dict = {}
    runner = _Runner(pool=pool, precision=precision, fix_fingers=fix_fingers, threads=n_threads, mp_fit=mp_fit,
                     randomize=randomize, randomize_precision=randomize_precision, seed=seed,
                     xmin_max=xmin_max, fit=fit, detX=bool(detX or ERG), fit_tests=_replicates(fit_tests),
                     vectors=vectors, tolerance=tolerance, inverse=inverse)
    done, total = 0, len(work)
    shown = None
    if progress is True:  # a tqdm bar on a terminal (log lines elsewhere), closed when the call ends
        from ._progress import make_progress

        shown = progress = make_progress(True)
    elif progress is False:
        progress = None
    try:
        if intra:
            return _intra_analysis(runner, work, slots, sparsify=sparsify, seed=seed, options=options, stop=stop,
                                   progress=progress)
        with _Prefetcher(runner, list(_batches(work)), stop, enabled=n_threads != 1) as batches:
            for batch, loaded in batches:
                stop.check(done, total)
                with closing(runner.run(batch, stop, loaded)) as results:  # closing: no worker outlives a Cancelled
                    for i, t, rows, layer_esds in results:
                        slots.put(i, rows)
                        esds.update(layer_esds)
                        done += 1
                        if progress is not None and progress(done, total, t.longname) is False:
                            stop.decline()
                        stop.check(done, total)
        stop.check(done, total)
    finally:
        if shown is not None:
            shown.close()
    return Analysis(slots.build(), esds, options)


def _intra_analysis(runner, work, slots, *, sparsify, seed, options, stop: StopCheck, progress) -> Analysis:
    """``analyze(intra=True)``: the pair rows of ``hts.intra`` in place of the layer rows (skipped tensors stay).
    ``stop`` is checked and ``progress`` called after each layer, as in ``analyze``."""
    from .intra import intra_rows

    total = len(work)

    def step(done: int, longname: str) -> None:
        if progress is not None and progress(done, total, longname) is False:
            stop.decline()
        stop.check(done, total)

    def row_of(t, plan, evals):
        (row,), _, _ = runner._rows(t, plan, evals[None], redo=True)
        row["precision"] = "float64"
        return row

    stop.check(0, total)
    pairs, esds = intra_rows(work, sparsify=sparsify, seed=seed, row_of=row_of, step=step)
    for i, row in pairs:
        slots.put(i, [row])
    return Analysis(slots.build(), esds, options)


class _Prefetcher:
    """Bounded read-ahead over the batches: while batch k is being solved (the kernel releases the GIL), one
    worker thread reads and decodes batch k + 1 — at most one batch ahead, and only when the decoded weights of
    both batches fit in ``READ_AHEAD_BYTES`` together (beside an LLM's 32000×4096 embedding nothing is read
    ahead; two 11008×4096 MLP matrices are), so the weights held never exceed the largest batch or
    ``READ_AHEAD_BYTES``, whichever is larger. Iterating yields ``(batch, loaded)``
    with ``loaded`` the batch's ``_Runner.load`` result (None when disabled: the runner reads it itself).
    Leaving the ``with`` block (also on ``Cancelled`` or an error) waits for a read in progress, so no thread
    outlives the call."""

    def __init__(self, runner, batches: list, stop: StopCheck, *, enabled: bool) -> None:
        self.runner, self.batches, self.stop = runner, batches, stop
        self.enabled = enabled and len(batches) > 1
        self.pool = None

    def __enter__(self):
        if self.enabled:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hts-prefetch")
        return self._iterate()

    def _iterate(self):
        if self.pool is None:
            for batch in self.batches:
                yield batch, None
            return
        ahead = self.pool.submit(self.runner.load, self.batches[0], self.stop)
        for k, batch in enumerate(self.batches):
            got = ahead.result()
            if got is _READ_LATER:  # not read ahead: the runner reads it itself
                yield batch, None
                continue
            if got is None:  # stopped while reading: the caller's stop.check raises
                yield batch, None
                return
            if k + 1 < len(self.batches) and \
                    _decoded_bytes(batch) + _decoded_bytes(self.batches[k + 1]) <= READ_AHEAD_BYTES:
                ahead = self.pool.submit(self.runner.load, self.batches[k + 1], self.stop)
            elif k + 1 < len(self.batches):  # too large to hold beside this one: read when its turn comes
                ahead = _Ready(_READ_LATER)
            yield batch, got

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


_READ_LATER = object()


class _Ready:
    """A finished future holding ``value`` (a batch that is not read ahead)."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


def _decoded_bytes(batch: list) -> int:
    """Bytes of a batch's weights once decoded: float64 stays 8 bytes an element, every narrower type (BF16,
    F16, quantised) is decoded to float32."""
    return sum(item[1].size * (8 if str(item[1].dtype) in ("float64", "F64", "int64", "I64") else 4) for item in batch)


def _batches(work: list) -> Iterable[list]:
    batch, size = [], 0
    for item in work:
        nbytes = item[1].size * 8
        if batch and size + nbytes > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += nbytes
    if batch:
        yield batch


def _lora_eigenvalues(t: WeightTensor, plan: LayerPlan) -> np.ndarray:
    """The M eigenvalues of ΔWᵀΔW of a LoRA update from its factors (``hts.lora.lowrank_eigenvalues``)."""
    from .lora import lowrank_eigenvalues

    b, a, scale = t.lora.factors()
    return lowrank_eigenvalues(b, a, scale, size=plan.M)


class _Runner:
    """Runs batches of layers through the kernel; one instance per ``analyze`` call (no shared state)."""

    def __init__(self, *, pool, precision, fix_fingers, threads, mp_fit, randomize, randomize_precision, seed,
                 xmin_max=None, fit="PL", detX=False, fit_tests=0, vectors=False, tolerance=1e-6, inverse=False):
        self.mp_fit = mp_fit
        self.fit = fit
        self.tolerance = tolerance
        self.inverse = inverse
        self.vectors = vectors
        self.fit_tests = fit_tests
        self.xmin_max = xmin_max
        self.detX = detX
        self.randomize = randomize
        self.randomize_precision = randomize_precision
        self.seed = seed
        self.pool = pool
        self.precision = precision
        self.fix_fingers = fix_fingers
        self.threads = threads

    def load(self, batch, stop: StopCheck):
        """Read and decode every tensor of the batch: ``(loaded, failed, raw, seconds)``, or None once ``stop``
        says so. Unreadable or unsupported tensors go to ``failed`` with the reason (logged)."""
        t0 = time.perf_counter()
        loaded, failed, raw = [], [], {}
        for i, t, plan in batch:
            if stop.reason():
                return None
            if t.lora is not None and not self.randomize:  # a LoRA update: eigenvalues from its factors
                loaded.append((i, t, plan, None))
                continue
            try:
                w = t.load()
                reason = unsupported_dtype_reason(w)
                if not reason:
                    loaded.append((i, t, plan, stack(t, plan, w)))
                    raw[i] = w
            except (ValueError, TypeError, RuntimeError, OSError) as err:
                reason = f"{UNREADABLE}: {err}"
            if reason:
                logger.warning("layer %s %r: %s", t.layer_id, t.longname, reason)
                failed.append((i, t, plan, reason))
        return loaded, failed, raw, time.perf_counter() - t0

    def run(self, batch, stop: StopCheck, prefetched=None):
        """Yield ``(index, tensor, rows, esds)`` per layer of the batch, in order; returns early (yielding
        nothing more) once ``stop`` says so, leaving no job running. ``prefetched``: the batch's ``load``
        result when it was read ahead (None: read it now)."""
        t0 = time.perf_counter()
        got = self.load(batch, stop) if prefetched is None else prefetched
        if got is None or stop.reason():
            return
        loaded, failed, raw, read_seconds = got
        if prefetched is not None:  # the reading happened earlier: count its own time, not the wait for it
            t0 -= read_seconds
        try:
            with stop.native() as flag:  # the kernel gives up at its next safe point once stop says so
                evals = self._eigenvalues(loaded, failed, raw, flag)
        except _core.Stopped:
            return
        raw.clear()
        shuffled = [{} for _ in loaded]
        if self.randomize:
            shuffled = self._randomized(loaded, stop)
            if shuffled is None:
                return
        load_and_eig = time.perf_counter() - t0
        costs = [plan.N * plan.M * plan.M * plan.rf for _, _, plan, _ in loaded]
        total_cost = float(sum(costs)) or 1.0

        for i, t, plan, reason in failed:
            row = skipped_row(t, reason, plan)
            row.update(status="failed", has_esd=False)
            yield i, t, [row], {}
        jobs = [(item, ev, rand, load_and_eig * c / total_cost)
                for item, ev, rand, c in zip(loaded, evals, shuffled, costs)]
        # Fits, randomize metrics and rows cost ~0.1-1 ms a layer: in this thread, since Python worker threads
        # would only queue on the GIL (measured 2x slower on EfficientNet-Lite0's 50 layers with 2 threads;
        # with randomize the shuffled ESDs now come from the batch call, so the same holds).
        for job in jobs:
            result = self._finish(job, stop)
            if result is None:  # stopped before this layer
                return
            yield result

    def layer_precision(self, plan) -> str:
        """The precision of one layer's eigenvalues: ``precision``, or with "auto" float32 for layers whose
        smaller side is at least ``AUTO_FLOAT32_MIN_SIDE`` and float64 for the others."""
        if self.precision != "auto":
            return self.precision
        return "float32" if min(plan.N, plan.M) >= AUTO_FLOAT32_MIN_SIDE else "float64"

    def _eigenvalues(self, loaded: list, failed: list, raw: dict, flag=None) -> list:
        """Eigenvalues of every loaded layer: conv-operator (fft) layers one by one, the others in one kernel
        call per precision. A layer the kernel refuses (non-finite or overflowing values) is moved from ``loaded`` to
        ``failed``; ``raw`` (index -> the array as loaded) serves to count its non-finite entries."""
        evals: dict = {}
        refused: dict = {}
        for k, item in enumerate(loaded):
            if item[2].method == "fft":
                try:
                    evals[k] = self._fft_eigenvalues(item, self.layer_precision(item[2]), flag)
                except ValueError as err:
                    refused[k] = str(err).split(": ", 1)[-1]
            elif item[3] is None:
                try:
                    evals[k] = _lora_eigenvalues(item[1], item[2])
                except (ValueError, TypeError, RuntimeError, OSError) as err:
                    refused[k] = f"{UNREADABLE}: {err}"
        dense = [k for k, item in enumerate(loaded) if item[2].method != "fft" and item[3] is not None]
        if self.inverse:  # 1/λ needs the small eigenvalues to full relative accuracy: an SVD, not the Gram
            for k in dense:
                if flag is not None and flag.is_set():  # each SVD is one LAPACK call: stop between them
                    raise _core.Stopped("stopped: the caller's stop flag was set")
                arr = np.asarray(loaded[k][3], dtype=np.float64)
                if not np.isfinite(arr).all():
                    refused[k] = "weights are not finite"
                    continue
                sv = np.linalg.svd(arr if arr.ndim == 3 else arr[None], compute_uv=False)
                evals[k] = np.sort(sv * sv, axis=-1)
            dense = []
        for precision in ("float64", "float32"):
            batch = [k for k in dense if self.layer_precision(loaded[k][2]) == precision]
            while batch:
                try:
                    out = spectra.eigenvalues([loaded[k][3] for k in batch], precision=precision,
                                              threads=self.threads, name="<batch>", stop=flag)
                except spectra.BatchItemError as err:
                    refused[batch.pop(err.index)] = err.detail
                    continue
                evals.update(zip(batch, out))
                break
        for k, detail in sorted(refused.items()):
            i, t, plan, _ = loaded[k]
            message = (nonfinite_reason(raw[i]) if i in raw else "") or detail
            failed.append((i, t, plan, message))
            logger.warning("layer %s %r: %s", t.layer_id, t.longname, message)
        loaded[:] = [item for k, item in enumerate(loaded) if k not in refused]
        return [evals[k] for k in sorted(evals)]

    def _fft_eigenvalues(self, item, precision, flag=None):
        _, t, plan, kernel = item
        return spectra.conv_operator_eigenvalues(kernel, input_size=plan.fft_size, precision=precision,
                                                 threads=self.threads, name=t.longname, groups=plan.groups,
                                                 stop=flag)

    def _finish(self, job, stop: StopCheck):
        if stop.reason():
            return None
        (i, t, plan, array), ev, rand, eig_time = job
        t0 = time.perf_counter()
        per_slice = np.atleast_2d(np.asarray(ev, dtype=np.float64)) * plan.scale
        rows, esds, precision = self._rows(t, plan, per_slice, redo=array is None)  # LoRA: float64 already
        if precision == "float32" and any(
            r["status"] == "success" and r["xmin"] < FLOAT32_REDO_BELOW * r["lambda_max"] for r in rows
        ):
            try:
                with stop.native() as flag:  # a large layer's redo is interruptible too
                    if plan.method == "fft":
                        ev64 = spectra.conv_operator_eigenvalues(array, input_size=plan.fft_size, threads=1,
                                                                 name=t.longname, groups=plan.groups, stop=flag)
                    else:
                        ev64 = spectra.eigenvalues(array, threads=1, stop=flag)
            except _core.Stopped:
                return None
            rows, esds, precision = self._rows(t, plan, np.atleast_2d(ev64) * plan.scale, redo=True)
        if self.randomize:
            self._add_randomized(t, plan, rand, rows, esds)
        if self.vectors and plan.method != "fft":
            stack3 = array if array.ndim == 3 else array[None]
            for r in rows:
                sid = r.get("slice_id")
                part = stack3 if sid is None else stack3[sid:sid + 1]
                scaled = (per_slice if sid is None else per_slice[sid:sid + 1]).ravel()
                r.update(vector_columns(part, scaled, r["xmin"] * plan.normalizer))
        elapsed = eig_time + time.perf_counter() - t0
        for r in rows:
            r["time"] = elapsed / len(rows)
            r["precision"] = precision
            if t.lora is not None:  # which update this row is: ΔW = lora_scale · B·A of rank lora_rank
                r.update(role="lora_delta", lora_rank=t.lora.rank, lora_scale=t.lora.scale)
        return i, t, rows, esds

    def _rows(self, t, plan, per_slice, redo=False):
        groups = [(None, per_slice)] if self.pool else [(s, per_slice[s:s + 1]) for s in range(per_slice.shape[0])]
        rows, esds = [], {}
        for slice_id, evs in groups:
            kept = evs
            if self.inverse:
                if not evs.all():
                    reason = f"inverse=True: {evs.size - np.count_nonzero(evs)} eigenvalues are 0 (no inverse)"
                    row = skipped_row(t, reason, plan)
                    row.update(status="failed", has_esd=False, **({} if slice_id is None else {"slice_id": slice_id}))
                    rows.append(row)
                    continue
                evs = 1.0 / evs
            raw = np.sort(evs.ravel())
            lf = self._fit(raw, plan)
            if plan.normalizer != 1.0:
                evs, pooled = evs / plan.normalizer, raw / plan.normalizer
            else:
                pooled = raw
            row = layer_row(t, plan, evs, pooled, lf, elapsed=0.0, tolerance=self.tolerance)
            row["rf"] = plan.rf
            if self.inverse:  # WeightWatcher's sv_max, sv_min, rank_loss are those of W, not of the inverse
                sv = np.sqrt(kept.ravel())
                row.update(sv_max=float(sv.max()), sv_min=float(sv.min()), rank_loss=rank_loss(kept, plan.N))
            if plan.method == "fft" and not t.groups:
                note = ("conv groups unknown (a bare tensor, not a module): the operator was computed as a dense "
                        "convolution, groups=1")
                row["reason"] = f"{row['reason']}; {note}" if row["reason"] else note
            if slice_id is not None:
                row["slice_id"] = slice_id
            if self.mp_fit:
                row.update(_mp_columns(pooled, plan))
            if self.detX:
                row.update(detx_columns(pooled, row["num_pl_spikes"]))
            if self.fit_tests:
                row.update(fit_test_columns(raw, lf.fit.xmin * plan.normalizer, replicates=self.fit_tests,
                                            seed=self.seed))
            if self.fit != "PL":
                row["Lambda"] = lf.Lambda * plan.normalizer  # a rate: scales inversely with the eigenvalues
            if self.fix_fingers == "clip_xmax":
                row["num_fingers"] = lf.num_fingers
                row["raw_alpha"] = lf.raw_alpha
                row["fingers_removed"] = lf.fingers_removed
            rows.append(row)
            esds[(t.layer_id, t.longname, slice_id, "esd")] = pooled
            esds[(t.layer_id, t.longname, slice_id, "scale")] = (plan.scale / plan.normalizer, self.inverse)
        return rows, esds, "float64" if redo else self.layer_precision(plan)

    def _randomized(self, loaded: list, stop: StopCheck) -> list | None:
        """The randomized ESDs of every loaded layer: ``{slice_id: (rand_evals, single_rand_evals)}`` per layer
        (slice_id None when pooled), or None once ``stop`` says so.

        WeightWatcher's randomize step per row: the shuffled slices (5 replicas below 100 eigenvalues) for the
        MP fit and max_rand_eval, and a single replica for the distance and soft rank (a fresh one when there
        are 5; each seeded from ``seed``, the tensor and the slice). The shuffles and their eigenvalues (in
        ``randomize_precision``) come from one native call for the whole batch, which spreads them over the
        threads. The numbers do not depend on ``threads``: each shuffle depends only on its seed, and each
        matrix's eigenvalues only on the matrix.
        """
        requests = []  # (layer position, slice_id, what, factor, slices, seed, replicas)
        for pos, (i, t, plan, array) in enumerate(loaded):
            stack3 = array if array.ndim == 3 else array[None]
            for sid in [None] if self.pool else range(stack3.shape[0]):
                slices = stack3 if sid is None else stack3[sid:sid + 1]
                base = (self.seed * 0x9E3779B97F4A7C15 + 4 * (i * 65536 + (sid or 0))) % 2**64
                replicas = 5 if slices.shape[0] * min(slices.shape[1:]) < 100 else 1
                factor = plan.scale / plan.normalizer
                requests.append((pos, sid, "rand", factor, slices, base, replicas))
                # WeightWatcher draws a second, fresh shuffle for the distance; with one replica the first one
                # is an equally random draw, so it is reused (half the work on large layers).
                if replicas > 1:
                    requests.append((pos, sid, "one", factor, slices, (base + 1) % 2**64, 1))
        try:
            with stop.native() as flag:  # the kernel gives up at its next safe point once stop says so
                evals = self._shuffled_eigenvalues([r[4:7] for r in requests], flag)
        except _core.Stopped:
            return None
        out: list[dict] = [{} for _ in loaded]
        for (pos, sid, what, factor, *_), ev in zip(requests, evals):
            values = np.sort(np.asarray(ev, dtype=np.float64).ravel()) * factor
            entry = out[pos].setdefault(sid, {})
            entry[what] = values
        return [{sid: (e["rand"], e.get("one", e["rand"])) for sid, e in layer.items()} for layer in out]

    def _shuffled_eigenvalues(self, requests: list, flag=None) -> list:
        """``spectra.randomized_eigenvalue_batch`` of the ``(slices, seed, replicas)`` requests: one call in
        ``randomize_precision``, except that slices whose smaller side is below ``RANDOM_FLOAT32_MIN_SIDE`` go
        to a float64 call, and so does a request the float32 kernel refuses (float64 weights beyond float32's
        range)."""
        evals: dict = {}
        f32 = self.randomize_precision == "float32"
        groups: dict = {"float32": [], "float64": []}
        for k, (slices, _, _) in enumerate(requests):
            wide = min(slices.shape[-2:]) >= RANDOM_FLOAT32_MIN_SIDE
            groups["float32" if f32 and wide else "float64"].append(k)
        for precision, todo in groups.items():
            while todo:
                try:
                    out = spectra.randomized_eigenvalue_batch(
                        [requests[k][0] for k in todo], seeds=[requests[k][1] for k in todo],
                        replicas=[requests[k][2] for k in todo], precision=precision, threads=self.threads,
                        name="<randomized batch>", stop=flag)
                except spectra.BatchItemError as err:
                    if precision == "float64":
                        raise
                    groups["float64"].append(todo.pop(err.index))
                    continue
                evals.update(zip(todo, out))
                break
        return [evals[k] for k in range(len(requests))]

    def _add_randomized(self, t, plan, rand: dict, rows, esds) -> None:
        """WeightWatcher's randomize columns of each row from its randomized ESDs (see ``_randomized``)."""
        for row in rows:
            sid = row.get("slice_id")
            rand_evals, one = rand[sid]
            pooled = esds[(t.layer_id, t.longname, sid, "esd")]
            cols = spectra.randomization_metrics(pooled, rand_evals, N=plan.N, M=plan.M, single_rand_evals=one,
                                                 threads=1)
            cols.pop("rand_mp_status", None)
            row.update(cols)
            esds[(t.layer_id, t.longname, sid, "random")] = rand_evals

    def _fit(self, pooled: np.ndarray, plan: LayerPlan) -> LayerFit:
        """Fit the ESD before normalisation (so neither the 1e-5 threshold nor alpha moves), then rescale."""
        lf = fit_layer(pooled, fix_fingers=self.fix_fingers, xmin_max=self.xmin_max, fit=self.fit)
        if plan.normalizer == 1.0:
            return lf
        f = lf.fit
        fit = spectra.PowerLawFit(**{**f.__dict__, "xmin": f.xmin / plan.normalizer,
                                     "xmax": f.xmax / plan.normalizer})
        return LayerFit(fit, lf.raw_alpha, lf.num_fingers, lf.fingers_removed, lf.Lambda)
