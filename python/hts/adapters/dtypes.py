"""Decoding stored dtypes numpy cannot read natively (bfloat16, 8-bit floats) into float32, exactly.

bfloat16 is the upper half of a float32: widen by a 16-bit shift. The 8-bit floats are decoded through a
256-entry table built from their definitions:
- F8_E4M3 (the "fn" variant, OCP FP8): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; S.1111.111
  is NaN; subnormals (exponent 0) are m/8 · 2^-6.
- F8_E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE-like: exponent 31 is ±inf (m = 0) or NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHUNK_ELEMENTS", "FLOAT8_TABLES", "bf16_to_float32", "float8_to_float32"]

#: Elements converted per step, so a conversion never needs more than the output plus a small buffer.
CHUNK_ELEMENTS = 1 << 22


def _float8_table(exp_bits: int, man_bits: int, bias: int, ieee_special: bool) -> np.ndarray:
    table = np.empty(256, dtype=np.float32)
    top = (1 << exp_bits) - 1
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        e = (code >> man_bits) & top
        m = code & ((1 << man_bits) - 1)
        if ieee_special and e == top:
            value = float("inf") if m == 0 else float("nan")
        elif not ieee_special and e == top and m == (1 << man_bits) - 1:
            value = float("nan")
        elif e == 0:
            value = m / (1 << man_bits) * 2.0 ** (1 - bias)
        else:
            value = (1 + m / (1 << man_bits)) * 2.0 ** (e - bias)
        table[code] = sign * value
    return table


FLOAT8_TABLES = {
    "F8_E4M3": _float8_table(4, 3, 7, ieee_special=False),
    "F8_E5M2": _float8_table(5, 2, 15, ieee_special=True),
}


def bf16_to_float32(raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 values of bfloat16 bit patterns given as uint16 (exact); written into ``out`` (a C-contiguous
    float32 array of raw's shape) when given, so no temporary is allocated."""
    if out is None:
        out = np.empty(raw.shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != raw.shape or not out.flags.c_contiguous:
        raise ValueError("bf16_to_float32: out must be a C-contiguous float32 array of the input's shape")
    bits = out.view(np.uint32)
    bits[...] = raw
    bits <<= 16
    return out


def float8_to_float32(raw: np.ndarray, kind: str) -> np.ndarray:
    """float32 values of 8-bit float codes given as uint8 (exact); ``kind`` is "F8_E4M3" or "F8_E5M2"."""
    return FLOAT8_TABLES[kind][raw]
