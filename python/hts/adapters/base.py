"""The record every adapter produces: one weight tensor, described without its data."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: Layer types, as WeightWatcher names them (lower case).
LAYER_TYPES = ("dense", "conv1d", "conv2d", "embedding", "norm", "unknown")

#: ``__slots__`` records where dataclasses can make them (3.10+): a listed tensor costs ~0.1 KB less (no
#: ``__dict__``), which matters for a file of many tiny tensors (docs/formats.md, "Limits").
SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(frozen=True, **SLOTS)
class WeightTensor:
    """One weight tensor of a model, loaded only when ``load()`` is called.

    Attributes
    ----------
    layer_id : int
        WeightWatcher's layer id: the position in ``named_modules()`` for a torch module (root = 0); the
        1-based position among the ``*.weight`` keys for a state_dict or dict of arrays.
    name : str
        Short name (the last component of a module path; the key without ``.weight`` for a mapping).
    longname : str
        Full dotted path (module path, or the key without ``.weight``).
    key : str
        Where the tensor lives in its source (e.g. ``"features.0.weight"``).
    layer_type : str
        One of ``LAYER_TYPES``.
    shape : tuple of int
        Shape as stored.
    dtype : str
        dtype as stored (e.g. ``"float32"``, ``"bfloat16"``).
    orientation : str
        Axis meaning as stored: ``"out_in"`` (torch Linear, Embedding rows × dim), ``"in_out"`` (HF GPT-2
        Conv1D), ``"out_in_kh_kw"`` (torch Conv2d), ``"kh_kw_in_out"`` (Keras Conv2D), ``"out_in_k"``
        (torch Conv1d), ``"matrix"`` (a 2-D array of unknown provenance).
    skip_reason : str
        Non-empty when this tensor is listed but must not be analysed (a norm layer, a packed projection...).
    source : str
        The adapter that produced it.
    groups : int
        For a Conv2D kernel, the convolution's ``groups`` (1: dense; ``in`` channels: depthwise); 0 when it is
        not known (a bare tensor from a file or dict: its shape (out, in/groups, kh, kw) cannot tell).
    quant : str
        The storage type of a format that quantises ("" for the others): GGUF's ggml type (``"F16"``,
        ``"Q4_K"``, ...). ``load`` returns block-quantised values dequantised to float32.
    stored_bytes : int
        Bytes the tensor takes in its file when ``shape`` × the dtype's item size does not tell (quantised
        blocks); -1 otherwise.
    storage : str
        How a chunked, compressed format stores the tensor, for ``hts describe`` (Orbax: ``"zarr2 zstd, chunks
        64x64"``); "" for the others.
    lora : object or None
        For a PEFT LoRA update (``hts.adapters.peft_adapter.LoraTarget``): its factors, so the analysis computes
        the eigenvalues of ΔW = s·B·A from an r × r problem instead of the dense matrix.
    load : callable
        Returns the data as a numpy array (float16/32/64 or integer), in the stored layout.
    """

    layer_id: int
    name: str
    longname: str
    key: str
    layer_type: str
    shape: tuple
    dtype: str
    orientation: str
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    skip_reason: str = ""
    source: str = ""
    groups: int = 0
    quant: str = ""
    stored_bytes: int = -1
    storage: str = ""
    lora: object = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape)) if self.shape else 1  # exact; ~10x faster than np.prod per record
