"""Fuzz hts's Keras reader: by default 100,000 generated hostile files (tests/_fuzz_keras.py: .keras zips,
Keras 3 .weights.h5 and legacy .h5 written by h5py, with lying names, attributes, datasets, links, configs,
zip members and truncation), each opened and every tensor loaded; see bench/_fuzz_run.py for
the allowed outcomes.

    python bench/fuzz_keras.py                 # 100,000 inputs, report in bench/results/fuzz_keras.md
    python bench/fuzz_keras.py --count 2000    # quick
"""

from __future__ import annotations

from _fuzz_run import run

import _fuzz_keras  # noqa: E402  (tests/, put on sys.path by _fuzz_run)

if __name__ == "__main__":
    run("keras", "Fuzzing the Keras reader", _fuzz_keras.hostile_keras, _fuzz_keras.WIDEN, __doc__)
