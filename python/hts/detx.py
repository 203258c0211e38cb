"""WeightWatcher's ``detX=True`` / ``ERG=True`` columns: the tail whose eigenvalues' product first drops below 1.

The "exact renormalisation group" (ERG) condition of Martin & Mahoney's SETOL theory asks for a tail of the ESD
whose determinant is 1. With the n eigenvalues rescaled to mean 1, λ'_i = λ_i · n / Σλ (ascending),

    detX_num = n − i*,   i* = max{ i in [1, n−1] : Π_{j>=i} λ'_j < 1 }

(the smallest tail, grown from the top, whose product is below 1); when no such i exists, WeightWatcher 0.7.7
keeps detX_num = n and i* = 1 (the index its loop stopped at), and when n < 2 or λ_0 >= λ_{n−1} it reports
detX_num = 0 and i* = 0. Columns (WeightWatcher's names, including its swap):

- ``detX_num`` = ``num_ERG_spikes`` = detX_num;
- ``detX_val`` = λ_{i*} on the layer's own scale; ``detX_val_unrescaled`` = λ'_{i*} (the *rescaled* value);
- ``ERG_gap`` = detX_num − num_pl_spikes (NaN when the power-law fit failed).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["detx_columns", "detx_tail"]


def detx_tail(evals: np.ndarray) -> tuple[int, int]:
    """(detX_num, i*) of the ascending eigenvalues ``evals`` (see the module docstring).

    The products are those WeightWatcher takes, ``np.prod(λ'[i:])``: a running product from the top finds
    the crossing in O(n), and the indices next to it are re-checked with ``np.prod`` so that a product that
    rounds differently in the two orders cannot move the answer.
    """
    ev = np.asarray(evals, dtype=np.float64)
    n = ev.size
    if n < 2 or not ev[0] < ev[-1]:
        return 0, 0
    scaled = (math.sqrt(n) / math.sqrt(float(np.sum(ev)))) ** 2 * ev  # WeightWatcher's (Wscale·Wscale)·λ
    with np.errstate(over="ignore", under="ignore"):
        running = np.cumprod(scaled[::-1])[::-1]  # running[i] = Π_{j>=i} λ'_j, from the top
    below = np.flatnonzero(running[1:] < 1.0)
    guess = int(below[-1]) + 1 if below.size else 1
    for i in range(min(n - 1, guess + 3), 0, -1):  # exact re-check near the crossing, WeightWatcher's order
        if i < guess - 3:
            break
        if np.prod(scaled[i:]) < 1.0:
            return n - i, i
    if below.size:
        return n - guess, guess
    return n, 1


def detx_columns(evals: np.ndarray, num_pl_spikes: float) -> dict:
    """The ``detX=True`` columns of one row from its ascending eigenvalues and its ``num_pl_spikes``."""
    ev = np.asarray(evals, dtype=np.float64)
    num, idx = detx_tail(ev)
    if ev.size == 0:
        nan = float("nan")
        return {"detX_num": 0, "num_ERG_spikes": 0, "ERG_gap": nan, "detX_val": nan, "detX_val_unrescaled": nan}
    scale2 = (math.sqrt(ev.size) / math.sqrt(float(np.sum(ev)))) ** 2
    rescaled = scale2 * float(ev[idx])
    gap = num - num_pl_spikes if num_pl_spikes == num_pl_spikes else float("nan")
    return {"detX_num": num, "num_ERG_spikes": num, "ERG_gap": gap,
            "detX_val": rescaled / scale2, "detX_val_unrescaled": rescaled}
