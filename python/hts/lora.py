"""LoRA updates: the scale of each target, the dense update ΔW = s·B·A, and its eigenvalues from an r×r problem.

A LoRA target (a Linear of weight W, out × in) is updated by ΔW = s·B·A with B (out × r) and A (r × in), and

    s = lora_alpha / r          (PEFT's default)
    s = lora_alpha / √r         (use_rslora=True)

where r and lora_alpha are the target's entries of ``rank_pattern`` / ``alpha_pattern`` when one of their keys
matches its module name (PEFT's rule: the key equals the name or is a dotted suffix of it, or matches as a
regular expression), else the config's ``r`` / ``lora_alpha``. With ``fan_in_fan_out`` (GPT-2's Conv1D,
stored in × out) the update in the stored layout is (s·B·A)ᵀ.

Low-rank eigenvalues: the non-zero eigenvalues of X = ΔWᵀΔW are the squared singular values of s·B·A. With the
thin QR factorisations B = Q_B·R_B and Aᵀ = Q_A·R_A (Q with orthonormal columns, R r × r),

    s·B·A = Q_B · (s·R_B·R_Aᵀ) · Q_Aᵀ,

so the singular values of s·B·A are those of the r × r matrix s·R_B·R_Aᵀ: O((out + in)·r²) work instead of
O(out·in·min(out, in)) for the dense product, and no out × in matrix is ever formed. The other
min(out, in) − r eigenvalues are exactly zero.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LoraSettings", "dense_update", "lowrank_eigenvalues", "lowrank_singular_values"]


@dataclass(frozen=True)
class LoraSettings:
    """The parts of a PEFT ``LoraConfig`` (adapter_config.json) that decide each target's update."""

    r: int = 8
    lora_alpha: float = 8.0
    use_rslora: bool = False
    fan_in_fan_out: bool = False
    rank_pattern: dict = field(default_factory=dict)
    alpha_pattern: dict = field(default_factory=dict)
    use_dora: bool = False
    modules_to_save: tuple = ()

    @classmethod
    def from_config(cls, config: dict) -> "LoraSettings":
        """From the JSON object of an adapter_config.json (``ValueError`` for values of the wrong type)."""
        def number(key, default, kind):
            value = config.get(key, default)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{key} must be a positive number, got {value!r}")
            return kind(value)

        def mapping(key):
            value = config.get(key) or {}
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be an object, got {type(value).__name__}")
            return dict(value)

        return cls(r=number("r", 8, int), lora_alpha=number("lora_alpha", 8, float),
                   use_rslora=bool(config.get("use_rslora", False)),
                   fan_in_fan_out=bool(config.get("fan_in_fan_out", False)),
                   rank_pattern=mapping("rank_pattern"), alpha_pattern=mapping("alpha_pattern"),
                   use_dora=bool(config.get("use_dora", False)),
                   modules_to_save=tuple(config.get("modules_to_save") or ()))

    def rank_and_alpha(self, module: str) -> tuple[int, float]:
        """(r, lora_alpha) of the target module ``module`` (its dotted path), patterns applied."""
        r = _pattern_value(self.rank_pattern, module, self.r)
        alpha = _pattern_value(self.alpha_pattern, module, self.lora_alpha)
        return int(r), float(alpha)

    def scale(self, module: str, rank: int | None = None) -> float:
        """s = lora_alpha / r, or lora_alpha / √r with rsLoRA. ``rank`` (the stored factors' rank) is used
        when the patterns do not name the module."""
        r, alpha = self.rank_and_alpha(module)
        if rank is not None and not _matching_key(self.rank_pattern, module):
            r = rank
        return alpha / math.sqrt(r) if self.use_rslora else alpha / r


def _matching_key(pattern: dict, module: str) -> str | None:
    """PEFT's lookup: the first key that equals ``module``, is a dotted suffix of it, or fully matches it as a
    regular expression."""
    for key in pattern:
        if module == key or module.endswith("." + key):
            return key
    for key in pattern:
        try:
            if re.fullmatch(key, module) or re.fullmatch(rf"(.*\.)?{key}", module):
                return key
        except re.error:
            continue
    return None


def _pattern_value(pattern: dict, module: str, default):
    key = _matching_key(pattern, module)
    return default if key is None else pattern[key]


def dense_update(B: np.ndarray, A: np.ndarray, scale: float, *, fan_in_fan_out: bool = False) -> np.ndarray:
    """ΔW = scale·B·A (out × in) in float64; its transpose (in × out, the stored layout) with fan_in_fan_out."""
    delta = scale * (np.asarray(B, dtype=np.float64) @ np.asarray(A, dtype=np.float64))
    return delta.T if fan_in_fan_out else delta


def lowrank_singular_values(B: np.ndarray, A: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Singular values of scale·B·A (descending, length r = B.shape[1]), from the r × r core s·R_B·R_Aᵀ."""
    B = np.asarray(B, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    if B.ndim != 2 or A.ndim != 2 or B.shape[1] != A.shape[0]:
        raise ValueError(f"LoRA factors do not chain: B {B.shape}, A {A.shape} (need B out×r, A r×in)")
    if not (np.isfinite(B).all() and np.isfinite(A).all()):
        raise ValueError("LoRA factors hold NaN or infinite values")
    r = B.shape[1]
    if r == 0:
        return np.zeros(0)
    # QR needs at least r rows for an r × r R; a factor with fewer rows than r contributes its own rank.
    r_b = np.linalg.qr(B, mode="r") if B.shape[0] >= r else B
    r_a = np.linalg.qr(A.T, mode="r") if A.shape[1] >= r else A.T
    core = scale * (r_b @ r_a.T)
    return np.linalg.svd(core, compute_uv=False)


def lowrank_eigenvalues(B: np.ndarray, A: np.ndarray, scale: float = 1.0, *, size: int | None = None) -> np.ndarray:
    """Eigenvalues of X = (s·B·A)ᵀ(s·B·A) restricted to its min(out, in) = M largest, ascending.

    ``size`` (default M = min(B.shape[0], A.shape[1])) is how many to return: the r squared singular values of
    ``lowrank_singular_values`` and size − r exact zeros (the rank of s·B·A is at most r).
    """
    sv = lowrank_singular_values(B, A, scale)
    m = min(B.shape[0], A.shape[1]) if size is None else size
    ev = np.sort(sv * sv)[::-1][:m]
    out = np.zeros(m)
    out[m - ev.size:] = ev[::-1]
    return out
