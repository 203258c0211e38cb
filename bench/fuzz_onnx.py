"""Fuzz hts's ONNX reader: by default 100,000 generated hostile models (tests/_fuzz_onnx.py: initializers,
Constant nodes, external data, QDQ / QLinear / MatMulInteger chains, with a few lying fields), each opened and
every tensor loaded; see bench/_fuzz_run.py for the allowed outcomes.

    python bench/fuzz_onnx.py                  # 100,000 inputs, report in bench/results/fuzz_onnx.md
    python bench/fuzz_onnx.py --count 2000     # quick
"""

from __future__ import annotations

from _fuzz_run import run

import _fuzz_onnx  # noqa: E402  (tests/, put on sys.path by _fuzz_run)

if __name__ == "__main__":
    run("onnx", "Fuzzing the ONNX reader", _fuzz_onnx.hostile_onnx, _fuzz_onnx.WIDEN, __doc__)
