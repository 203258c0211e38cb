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
    writer.write(path, {"w.weight": rng.standard_normal((6000, 3000)).astype(np.float32)})
    # how long the layer takes alone (the stop must come well before it would have finished)
    t0 = time.monotonic()
    full = subprocess.run([sys.executable, "-m", "hts", "analyze", str(path), "--threads", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    alone = time.monotonic() - t0
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "-m", "hts", "analyze", str(path), "--threads", "1", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(min(1.5, alone / 3))
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    stopped_after = time.monotonic() - t0
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert stopped_after < max(0.6 * alone, 1.0), (stopped_after, alone)
