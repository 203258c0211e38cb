"""Issue 19 item 12: Ctrl-C on `hts analyze` stops the running kernel call at its next safe point (the stop
flag), exits 130 with one line, and does not wait for the layer to finish."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np

import _st_writer as writer


def test_ctrl_c_stops_a_long_layer_quickly(tmp_path):
    path = tmp_path / "big.safetensors"
    rng = np.random.default_rng(0)
    # a tall layer: its Gram product (tiles and slabs, each a safe point) is most of the work, so a stop lands
    # quickly wherever the signal falls (the final 1200x1200 eigensolve is one uninterruptible LAPACK call)
    writer.write(path, {"w.weight": rng.standard_normal((24000, 1200)).astype(np.float32)})
    command = [sys.executable, "-m", "hts", "analyze", str(path), "--threads", "1", "--no-progress"]
    # start-up (interpreter, imports, opening the file) and the whole run, each measured here: the signal must
    # land after start-up (else it is an ordinary KeyboardInterrupt at import) and well before the layer is done
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "hts", "describe", str(path)], capture_output=True, timeout=600)
    startup = time.monotonic() - t0
    t0 = time.monotonic()
    full = subprocess.run(command, capture_output=True, text=True, timeout=600)
    alone = time.monotonic() - t0
    assert full.returncode == 0, full.stderr
    solve = max(alone - startup, 0.5)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(startup + solve / 3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    stopped_after = time.monotonic() - t0
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "interrupted" in err and "Traceback" not in err
    assert stopped_after < 0.6 * solve + 1.0, (stopped_after, startup, alone)
