"""PEFT LoRA adapters: a folder (or its weights file) with ``adapter_config.json`` beside
``adapter_model.safetensors`` / ``adapter_model.bin``.

The factors are never listed as layers of their own. Each target module ``P`` (keys
``base_model.model.P.lora_A.weight`` (r × in) and ``base_model.model.P.lora_B.weight`` (out × r)) becomes one
tensor, the update ΔW = s·B·A (``hts.lora``: s = lora_alpha/r, rsLoRA lora_alpha/√r, rank/alpha patterns,
fan_in_fan_out), with key ``P.weight`` (the base weight it updates), loaded densely on demand and carrying its
factors so ``hts.analyze`` takes the low-rank path (eigenvalues from an r × r problem). Embedding LoRA
(``lora_embedding_A`` r × num_embeddings, ``lora_embedding_B`` dim × r) gives ΔW = s·(B·A)ᵀ. ``modules_to_save``
copies are full weights, listed as such. What is not supported is listed with the reason, never dropped:
DoRA (``use_dora``: ΔW is not s·B·A, it also rescales by a magnitude vector), conv LoRA (4-D factors), a
factor without its partner, and any other key (``skip_reason``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from .base import WeightTensor

__all__ = ["ADAPTER_CONFIG", "LoraTarget", "PeftAdapter", "find_adapter", "from_peft", "read_adapter"]

ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")

_PREFIX = "base_model.model."
_FACTOR = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_A|lora_B)(?:\.[^.]+)?\.weight$")
_EMBED = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?$")
_DORA = re.compile(r"\.lora_magnitude_vector(\.[^.]+)?(\.weight)?$")


@dataclass(frozen=True)
class LoraTarget:
    """One LoRA-updated module: ``module`` (dotted path without PEFT's prefix), the factors' loaders, the
    scale and whether the stored base weight is in × out (fan_in_fan_out) or an embedding (num × dim)."""

    module: str
    load_a: Callable[[], np.ndarray]
    load_b: Callable[[], np.ndarray]
    a_shape: tuple
    b_shape: tuple
    rank: int
    lora_alpha: float
    scale: float
    embedding: bool = False
    fan_in_fan_out: bool = False
    factor_bytes: int = -1  # bytes the two factors take in the file (-1: not known)

    @property
    def base_key(self) -> str:
        return f"{self.module}.weight"

    @property
    def shape(self) -> tuple:
        """Shape of ΔW in the base weight's stored layout."""
        if self.embedding:  # A: r × num, B: dim × r; weight num × dim
            return (self.a_shape[1], self.b_shape[0])
        out, inp = self.b_shape[0], self.a_shape[1]
        return (inp, out) if self.fan_in_fan_out else (out, inp)

    def factors(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(B, A, s) with s·B·A = ΔW in (out × in) orientation (embeddings: s·B·A = ΔWᵀ)."""
        return np.asarray(self.load_b()), np.asarray(self.load_a()), self.scale

    def delta(self) -> np.ndarray:
        """ΔW in the base weight's stored layout, float64."""
        from ..lora import dense_update

        b, a, s = self.factors()
        return dense_update(b, a, s, fan_in_fan_out=self.fan_in_fan_out or self.embedding)


@dataclass(frozen=True)
class PeftAdapter:
    path: str  # the weights file
    config: dict
    targets: list  # LoraTarget
    full: list  # (module key, shape, dtype, loader): modules_to_save and other full weights
    unsupported: list  # (key, shape, dtype, reason)


def find_adapter(path: str) -> str | None:
    """The adapter weights file when ``path`` is a PEFT adapter folder or its weights file, else None."""
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(folder, ADAPTER_CONFIG)):
        return None
    if os.path.isdir(path):
        for name in WEIGHT_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ModelFileError(path, f"{ADAPTER_CONFIG} but no {' or '.join(WEIGHT_FILES)}")
    return path if os.path.basename(path) in WEIGHT_FILES else None


def _raw_tensors(path: str) -> dict:
    """key -> (shape, dtype, loader) of every tensor in the adapter's weights file."""
    if path.endswith(".safetensors"):
        from .safetensors_file import read_header

        header = read_header(path)
        return {n: (tuple(t.shape), t.dtype_name, header.loader(n))
                for n, t in header.tensors.items()}
    try:
        import torch
    except ImportError as err:
        raise ModelFileError(path, "an adapter_model.bin needs torch to read (pip install torch)") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure names the file
        raise ModelFileError(path, f"cannot read the adapter weights: {str(err)[:200]}") from None
    out = {}
    for n, t in state.items():
        if hasattr(t, "shape"):
            out[n] = (tuple(t.shape), str(t.dtype).replace("torch.", ""),
                      (lambda t=t: t.detach().float().numpy() if t.dtype.is_floating_point else t.numpy()))
    return out


def read_adapter(path: str) -> PeftAdapter:
    """The LoRA targets, full weights and unsupported tensors of an adapter (folder or weights file)."""
    from ..lora import LoraSettings

    weights = find_adapter(path)
    if weights is None:
        raise ModelFileError(path, f"not a PEFT adapter (no {ADAPTER_CONFIG} beside {' or '.join(WEIGHT_FILES)})")
    config_path = os.path.join(os.path.dirname(os.path.abspath(weights)), ADAPTER_CONFIG)
    from .folders import read_json_object

    config = read_json_object(config_path)
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise ModelFileError(config_path, f"peft_type {peft_type!r}: only LoRA adapters are supported")
    try:
        settings = LoraSettings.from_config(config)
    except ValueError as err:
        raise ModelFileError(config_path, str(err)) from None
    raw = _raw_tensors(weights)
    if not raw:
        raise ModelFileError(weights, "holds no tensors")
    pairs: dict = {}
    full, unsupported = [], []
    for key, (shape, dtype, load) in raw.items():
        short = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        m = _FACTOR.match(short) or _EMBED.match(short)
        if _DORA.search(short):
            unsupported.append((key, shape, dtype, "DoRA magnitude vector: DoRA updates (use_dora) are not "
                                                   "supported (ΔW is not s·B·A)"))
        elif m:
            pairs.setdefault(m.group("module"), {})[m.group("kind")[-1]] = (key, shape, dtype, load,
                                                                            "embedding" in m.group("kind"))
        elif short.endswith(".weight") or len(shape) >= 2:
            full.append((short, shape, dtype, load))
        else:
            unsupported.append((key, shape, dtype, "not a LoRA factor or weight matrix (a bias or vector)"))
    targets = []
    for module, parts in pairs.items():
        if set(parts) != {"A", "B"}:
            for key, shape, dtype, _, _ in parts.values():
                unsupported.append((key, shape, dtype, f"LoRA factor of {module} without its partner "
                                                       f"({'lora_B' if 'A' in parts else 'lora_A'} missing)"))
            continue
        (ka, sa, da, la, emb), (kb, sb, db, lb, _) = parts["A"], parts["B"]
        if len(sa) != 2 or len(sb) != 2:
            for key, shape, dtype in ((ka, sa, da), (kb, sb, db)):
                unsupported.append((key, shape, dtype, "conv LoRA (4-D factors) is not supported"))
            continue
        rank = sb[1] if not emb else sa[0]
        if (sa[0] if not emb else sb[1]) != rank:
            raise ModelFileError(weights, f"{module}: LoRA factors do not chain (lora_A {sa}, lora_B {sb})")
        r, alpha = settings.rank_and_alpha(module)
        scale = settings.scale(module, rank)
        if settings.use_dora:
            for key, shape, dtype in ((ka, sa, da), (kb, sb, db)):
                unsupported.append((key, shape, dtype, "DoRA (use_dora) is not supported: ΔW is not s·B·A"))
            continue
        from ..inventory import _itemsize

        stored = (int(np.prod(sa)) * _itemsize(da) + int(np.prod(sb)) * _itemsize(db)) if _itemsize(da) else -1
        targets.append(LoraTarget(module, la, lb, sa, sb, rank, alpha, scale, embedding=emb, factor_bytes=stored,
                                  fan_in_fan_out=settings.fan_in_fan_out and not emb))
    return PeftAdapter(weights, config, targets, full, unsupported)


def from_peft(path: str) -> tuple[list[WeightTensor], str, dict]:
    """(tensors, the weights file, adapter config): one tensor per LoRA target (ΔW, see the module
    docstring), the full weights (modules_to_save), and the unsupported tensors listed as skipped."""
    from dataclasses import replace

    from .mapping import Entry, from_entries

    adapter = read_adapter(path)
    out = []
    layer_id = 0
    for t in adapter.targets:
        layer_id += 1
        kind = "embedding" if t.embedding else ("conv1d" if t.fan_in_fan_out else "dense")
        out.append(WeightTensor(
            layer_id=layer_id, name=f"{t.module.rsplit('.', 1)[-1]}.lora_delta", longname=f"{t.module}.lora_delta",
            key=t.base_key, layer_type=kind, shape=t.shape, dtype="float64",
            orientation="in_out" if t.fan_in_fan_out else "out_in", load=t.delta, source="peft",
            lora=t, stored_bytes=t.factor_bytes))
    full = from_entries([Entry(key, shape, dtype, load, "") for key, shape, dtype, load in adapter.full],
                        source="peft (modules_to_save: full weight)")
    for t in full:
        layer_id += 1
        out.append(replace(t, layer_id=layer_id))
    for key, shape, dtype, reason in adapter.unsupported:
        layer_id += 1
        out.append(WeightTensor(layer_id=layer_id, name=key.rsplit(".", 1)[-1], longname=key, key=key,
                                layer_type="unknown", shape=shape, dtype=dtype, orientation="matrix",
                                load=lambda: np.zeros(0), skip_reason=reason, source="peft"))
    return out, adapter.path, adapter.config
