"""Fuzz hts's Orbax checkpoint reader: by default 100,000 generated hostile checkpoint folders
(tests/_fuzz_orbax.py: OCDBT manifests, B+tree nodes and data files, or one zarr folder per array; zarr v2/v3
metadata, compressed, CRC-checked and sharded chunks; with lying varints, counts, lengths, offsets, paths, JSON
and chunk bytes), each opened and every tensor loaded; see bench/_fuzz_run.py for the allowed outcomes.

    python bench/fuzz_orbax.py --count 20000 --seed 1 --out bench/results/fuzz_orbax_1.md   # one <10-min chunk
    python bench/fuzz_orbax.py --count 2000                                              # quick
"""

from __future__ import annotations

from _fuzz_run import run

import _fuzz_orbax  # noqa: E402  (tests/, put on sys.path by _fuzz_run)

if __name__ == "__main__":
    run("orbax", "Fuzzing the Orbax checkpoint reader", _fuzz_orbax.hostile_orbax, _fuzz_orbax.WIDEN, __doc__,
        _fuzz_orbax.PER_TENSOR)
