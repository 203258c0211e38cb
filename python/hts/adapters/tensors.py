"""Array conversions shared by adapters: numpy arrays and torch tensors, without importing torch up front."""

from __future__ import annotations

from typing import Any

import numpy as np


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "dtype")


def is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray) or _is_torch_tensor(value)


def dtype_name(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return value.dtype.name
    return str(value.dtype).replace("torch.", "")


def to_numpy(value: Any) -> np.ndarray:
    """A numpy view of a tensor where possible (CPU float16/32/64 and integer tensors are not copied).

    bfloat16 and 8-bit float tensors are widened to float32 (exact); tensors on an accelerator are copied to
    the CPU; meta tensors (no data) raise ``ValueError``.
    """
    if isinstance(value, np.ndarray):
        return value
    import torch  # already imported by whoever made the tensor

    t = value.detach()
    if t.device.type == "meta":
        raise ValueError("tensor has no data (it is on the 'meta' device)")
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype.is_floating_point and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()
    return t.numpy()
