"""Bounded decompression: zstd (the ``orbax`` extra's ``zstandard``, imported on first use) and zlib/gzip
(stdlib). Output never exceeds the size the caller says the data may have, whatever the compressed stream
claims, so a decompression bomb costs at most that much memory; anything else that goes wrong is a
``ModelFileError`` naming the file and the tensor.
"""

from __future__ import annotations

import io
import zlib

from ..errors import ModelFileError

__all__ = ["decompress", "zstandard_module"]

_PIECE = 1 << 18


def zstandard_module(path: str):
    """The ``zstandard`` module, or a ModelFileError naming the extra that installs it."""
    try:
        import zstandard
    except ImportError:
        raise ModelFileError(path, "zstd-compressed data needs the 'zstandard' package: "
                                   "pip install 'hts[orbax]'") from None
    return zstandard


def decompress(codec: str, data: bytes | memoryview, limit: int, path: str, *, tensor: str | None = None,
               exact: bool = False) -> bytearray:
    """``data`` decompressed with ``codec`` ("zstd", "zlib", "gzip"); at most ``limit`` bytes, exactly
    ``limit`` when ``exact``."""
    if codec == "zstd":
        out = _zstd(data, limit, path, tensor, exact)
    elif codec in ("zlib", "gzip"):
        out = _zlib(codec, data, limit, path, tensor)
    else:
        raise ModelFileError(path, f"unknown compression {codec!r}", tensor=tensor)
    if exact and len(out) != limit:
        raise ModelFileError(path, f"{codec} data decompresses to {len(out)} bytes, {limit} expected",
                             tensor=tensor)
    return out


def _zstd(data, limit: int, path: str, tensor: str | None, exact: bool) -> bytearray:
    zstandard = zstandard_module(path)
    try:
        claimed = zstandard.frame_content_size(bytes(data[:18]))
    except zstandard.ZstdError:
        raise ModelFileError(path, "zstd data has no valid frame header", tensor=tensor) from None
    if claimed > limit:  # -1: not stated in the header
        raise ModelFileError(path, f"zstd frame claims {claimed} bytes, more than the {limit} the metadata "
                                   "allows", tensor=tensor)
    # exact: one buffer of the size the metadata declares, filled in place (never more, no copies); otherwise
    # the size the frame states, or growing by doubling, up to the limit. +1: a byte past the limit shows.
    out = bytearray(min(limit if exact else claimed if claimed >= 0 else _PIECE, limit) + 1)
    n = 0
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        while True:
            if n == len(out):
                if n > limit:
                    break
                out.extend(bytes(min(n, limit + 1 - n)))  # unknown size: grow by doubling, up to the limit
            with memoryview(out) as view, view[n:] as rest:
                got = reader.readinto(rest)  # into the buffer: no second copy of the output
            if not got:
                break
            n += got
    except zstandard.ZstdError as err:
        raise ModelFileError(path, f"corrupt zstd data ({str(err)[:120]})", tensor=tensor) from None
    del out[n:]
    if len(out) > limit:
        raise ModelFileError(path, f"zstd data decompresses to more than the {limit} bytes the metadata "
                                   "allows", tensor=tensor)
    return out


def _zlib(codec: str, data, limit: int, path: str, tensor: str | None) -> bytearray:
    d = zlib.decompressobj(31 if codec == "gzip" else 15)
    out = bytearray()
    try:
        pending = bytes(data)
        while len(out) <= limit and not d.eof:
            piece = d.decompress(pending, min(limit + 1 - len(out), _PIECE))
            if not piece and len(d.unconsumed_tail) == len(pending):
                break  # no progress: the input ends before the stream does (truncated, below)
            out += piece  # with all input taken, a next call may still return output zlib holds back
            pending = d.unconsumed_tail
    except zlib.error as err:
        raise ModelFileError(path, f"corrupt {codec} data ({err})", tensor=tensor) from None
    if len(out) > limit:
        raise ModelFileError(path, f"{codec} data decompresses to more than the {limit} bytes the metadata "
                                   "allows", tensor=tensor)
    if not d.eof:
        raise ModelFileError(path, f"truncated {codec} data", tensor=tensor)
    return out
