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
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        if exact or claimed >= 0:
            # one buffer of the size the metadata declares (exact) or the frame states, filled in place: never
            # more than the limit, no copies. +1: a byte past the limit shows.
            out = bytearray(min(limit if exact else claimed, limit) + 1)
            n = 0
            while n < len(out):
                with memoryview(out) as view, view[n:] as rest:
                    got = reader.readinto(rest)
                if not got:
                    break
                n += got
            if n == len(out) <= limit:  # more frames than the first one states
                del out[n:]
                out += _pieces(reader, limit + 1 - n)
                n = len(out)
        else:
            out = _pieces(reader, limit + 1)
            n = len(out)
    except zstandard.ZstdError as err:
        raise ModelFileError(path, f"corrupt zstd data ({str(err)[:120]})", tensor=tensor) from None
    del out[n:]
    if len(out) > limit:
        raise ModelFileError(path, f"zstd data decompresses to more than the {limit} bytes the metadata "
                                   "allows", tensor=tensor)
    return out


def _pieces(reader, budget: int) -> bytearray:
    """At most ``budget`` bytes from a stream of unknown length: read in pieces, joined once (a buffer grown by
    doubling would keep up to twice the output)."""
    pieces, n = [], 0
    while n < budget:
        piece = reader.read(min(_PIECE, budget - n))
        if not piece:
            break
        pieces.append(piece)
        n += len(piece)
    return bytearray().join(pieces)


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
