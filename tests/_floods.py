"""Large hostile files shared by the memory tests (tests/test_reader_memory.py, tests/test_output_memory.py)."""

from __future__ import annotations

import struct

import numpy as np


def write_empty_safetensors_flood(path, n: int) -> None:
    """A safetensors file of ``n`` empty F32 tensors with the shortest names (base-36 numbers): the cheapest
    entry a header can hold per tensor (~50 bytes)."""
    entries = ",".join(f'"{np.base_repr(i, 36)}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'
                       for i in range(n))
    raw = ("{" + entries + "}").encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def write_keras_flood(path, n: int) -> None:
    """A Keras 3 ``.weights.h5`` file whose one layer holds ``n`` 1×1 float32 datasets, in HDF5's newest (most
    compact) format: ~300 bytes of file per tensor, the cheapest a Keras weights file lists."""
    import h5py

    one = np.ones((1, 1), np.float32)
    with h5py.File(path, "w", libver="latest") as f:
        variables = f.create_group("layers").create_group("dense").create_group("vars")
        for i in range(n):
            variables.create_dataset(str(i), data=one)
