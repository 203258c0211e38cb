"""Fuzz hts's Flax msgpack reader: by default 100,000 generated hostile checkpoints (tests/_fuzz_flax.py:
nested maps, ndarray and chunked-array extensions, nnx wrappers, with lying counts, lengths, shapes, dtypes and
chunk indices), each opened and every tensor loaded; see bench/_fuzz_run.py for the allowed outcomes.

    python bench/fuzz_flax.py                  # 100,000 inputs, report in bench/results/fuzz_flax.md
    python bench/fuzz_flax.py --count 2000     # quick
"""

from __future__ import annotations

from _fuzz_run import run

import _fuzz_flax  # noqa: E402  (tests/, put on sys.path by _fuzz_run)

if __name__ == "__main__":
    run("flax", "Fuzzing the Flax msgpack reader", lambda src: {"m.msgpack": _fuzz_flax.hostile_flax(src)},
        _fuzz_flax.WIDEN, __doc__)
