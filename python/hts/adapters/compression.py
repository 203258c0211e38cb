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
        out = _zlib(codec, data, limit, path, tensor, exact)
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
                out = None
        else:
            out = None
        if out is None:  # of unknown size: counted by a first decoding (nothing kept), then decoded into one
            out = _counted(zstandard, data, limit)  # buffer of that size (pieces joined, or a buffer grown by
            n = limit + 1 if out is None else len(out)  # doubling, would hold up to twice the output at once)
    except zstandard.ZstdError as err:
        raise ModelFileError(path, f"corrupt zstd data ({str(err)[:120]})", tensor=tensor) from None
    if n > limit:
        raise ModelFileError(path, f"zstd data decompresses to more than the {limit} bytes the metadata "
                                   "allows", tensor=tensor)
    del out[n:]
    return out


def _counted(zstandard, data, limit: int) -> bytearray | None:
    """All of ``data`` decoded, None if that is more than ``limit`` bytes: its size counted by a first decoding
    that keeps nothing, then decoded again into one buffer of that size; a stream that fits one piece is
    decoded once."""
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    first = reader.read(min(_PIECE, limit + 1))
    n = len(first)
    while n <= limit:
        got = len(reader.read(min(_PIECE, limit + 1 - n)))
        if not got:
            break
        n += got
    if n > limit:
        return None
    if n == len(first):
        return bytearray(first)
    del first
    out = bytearray(n)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    done = 0
    while done < n:
        with memoryview(out) as view, view[done:] as rest:
            got = reader.readinto(rest)
        if not got:
            break
        done += got
    return out


def _zlib(codec: str, data, limit: int, path: str, tensor: str | None, exact: bool) -> bytearray:
    """Input fed and output taken in pieces of ``_PIECE``: each call holds at most a piece of either (feeding
    the whole input at once would copy what is left of it on every call); exact: into one buffer of the
    declared size."""
    d = zlib.decompressobj(31 if codec == "gzip" else 15)
    out = bytearray(limit + 1) if exact else bytearray()
    n = pos = 0
    tail = b""
    try:
        with memoryview(data) as view:
            while n <= limit and not d.eof:
                if not tail and pos < len(view):
                    tail = view[pos:pos + _PIECE]
                    pos += len(tail)
                before = len(tail)
                piece = d.decompress(tail, min(limit + 1 - n, _PIECE))
                tail = d.unconsumed_tail
                if not piece and len(tail) == before:
                    break  # no progress with all the input given: the stream ends early (truncated, below)
                if exact:
                    out[n:n + len(piece)] = piece
                else:
                    out += piece
                n += len(piece)
            del tail
    except zlib.error as err:
        raise ModelFileError(path, f"corrupt {codec} data ({err})", tensor=tensor) from None
    if n > limit:
        raise ModelFileError(path, f"{codec} data decompresses to more than the {limit} bytes the metadata "
                                   "allows", tensor=tensor)
    if not d.eof:
        raise ModelFileError(path, f"truncated {codec} data", tensor=tensor)
    del out[n:]
    return out
