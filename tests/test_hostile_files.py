"""Files that change or loop underneath hts: a checkpoint rewritten in place while it is analysed, and a folder
with a symlink loop. Each call gives a result or ``hts.ModelFileError``, never another exception or a hang.
(Truncated files and malicious pickles: tests/test_model_files.py; header fuzzing: test_fuzz_safetensors.py.)"""

from __future__ import annotations

import os
import threading

import _st_writer as writer
import numpy as np

import hts


def blobs() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for scale in (1.0, 2.0):
        tensors = {f"l{i}.weight": (rng.standard_normal((160, 96)) * scale).astype(np.float32) for i in range(6)}
        header, data = writer.header_and_data(tensors)
        out.append(writer.encode(header, data))
    return out


def test_analysing_a_file_that_is_being_rewritten(tmp_path):
    path = tmp_path / "model.safetensors"
    versions = blobs()
    path.write_bytes(versions[0])
    stop = threading.Event()

    def rewrite():
        k = 0
        while not stop.is_set():
            blob = versions[k % 2]
            with open(path, "wb") as f:  # in place: truncated to 0, then written in pieces
                for i in range(0, len(blob), 4096):
                    f.write(blob[i:i + 4096])
                    f.flush()
            k += 1

    writer_thread = threading.Thread(target=rewrite, daemon=True)
    writer_thread.start()
    outcomes = {"result": 0, "refused": 0}
    try:
        for _ in range(200):
            try:
                a = hts.analyze(str(path), threads=1)
                assert a.counts["analysed"] + a.counts["failed"] + a.counts["skipped"] == len(a.rows)
                outcomes["result"] += 1
            except hts.ModelFileError:
                outcomes["refused"] += 1
    finally:
        stop.set()
        writer_thread.join(10)
    assert sum(outcomes.values()) == 200
    assert outcomes["refused"] > 0  # the race is really exercised


def test_a_folder_with_a_symlink_loop(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(blobs()[0])
    os.symlink(folder, folder / "loop")
    os.symlink(folder / "loop", folder / "loop2")
    a = hts.analyze(str(folder), threads=1)
    assert a.counts["analysed"] == 6
    assert len(hts.open(str(folder)).table()) == 6
