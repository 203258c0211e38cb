"""PyTorch checkpoints (``.pt``, ``.pth``, ``.bin``) read safely: ``torch.load(weights_only=True)`` only.

``weights_only=True`` unpickles tensors, containers and plain values and refuses anything else, so a
checkpoint cannot run code while it is read (a pickle that tries raises ``ModelFileError``, never executes).
Zip-format checkpoints whose members are all *stored* (what ``torch.save`` writes) are memory-mapped
(``mmap=True``): tensors are read when analysed, one at a time. A zip with deflate-compressed members (re-zipped,
or written by other tools) is never mapped — mapped compressed bytes would be analysed as weights — but read
through the decompressor, whole, after its declared sizes are checked (``MAX_INFLATION``); encrypted members and
other compression methods are refused. Legacy (pre-1.6, non-zip) files are loaded whole. Nesting under ``state_dict``/``model`` and ``module.``
prefixes are unwrapped (see ``mapping``). Tensors that share storage (tied weights saved together) are listed
once: the later keys are skipped with the name of the first.

Refused before torch sees them, with one line and no torch warning on stderr: TorchScript archives
(``torch.jit.save``: they hold code, not a state dict) and pickles of protocol 4 or 5 (``pickle_protocol=4``:
framed pickles, which torch's safe loader cannot read).
"""

from __future__ import annotations

import os
import pickle
import struct
import zipfile
import zlib

from ..errors import ModelFileError
from . import limits
from .base import WeightTensor
from .mapping import _unwrap, from_mapping

__all__ = ["from_torch_checkpoint", "load_checkpoint"]


#: A compressed zip checkpoint may declare at most this many uncompressed bytes per byte of file (+ 64 MiB):
#: float weights deflate by a few percent, so more is a decompression bomb, refused before anything is inflated.
MAX_INFLATION = 8
_INFLATION_SLACK = 64 * 2**20


def _zip_members_are_stored(path: str) -> bool:
    """True for a zip checkpoint whose members are all stored (safe to memory-map), False for a legacy
    (non-zip) file or a zip with compressed members (read through the decompressor instead). Encrypted
    members, compression methods other than deflate, and declared sizes that would inflate the file more than
    ``MAX_INFLATION``-fold raise ``ModelFileError``."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        size = os.path.getsize(path)
        archive = zipfile.ZipFile(path)
    except OSError as err:
        raise ModelFileError(path, f"cannot read: {err.strerror or err}") from err
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise ModelFileError(path, f"not a readable PyTorch checkpoint: broken zip directory ({err})") from None
    with archive:
        return _check_zip_members(path, archive, size)


def _check_zip_members(path: str, archive: zipfile.ZipFile, size: int) -> bool:
    """``_zip_members_are_stored`` for an open archive of ``size`` bytes."""
    infos = archive.infolist()
    names = [i.filename for i in infos]
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise ModelFileError(path, "a TorchScript archive (torch.jit.save), not a state-dict checkpoint: hts does "
                                   "not load TorchScript; save model.state_dict() with torch.save and analyse that")
    storages = sum("/data/" in i.filename for i in infos)
    if storages > limits.MAX_TENSORS:
        raise ModelFileError(path, f"{storages} tensor storages: more than the {limits.MAX_TENSORS} tensors a file "
                                   "may hold")
    encrypted = [i.filename for i in infos if i.flag_bits & 0x1]
    if encrypted:
        raise ModelFileError(path, f"zip member {encrypted[0]!r} is encrypted; hts cannot read it")
    compressed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if not compressed:
        _check_zip_count(path, archive, infos, size)
        return True
    odd = [i for i in compressed if i.compress_type != zipfile.ZIP_DEFLATED]
    if odd:
        raise ModelFileError(path, f"zip member {odd[0].filename!r} uses compression method "
                                   f"{odd[0].compress_type}; only stored and deflate members are read")
    declared = sum(i.file_size for i in infos)
    if declared > MAX_INFLATION * size + _INFLATION_SLACK:
        raise ModelFileError(path, f"compressed members declare {declared} bytes from a {size}-byte file (more "
                                   f"than {MAX_INFLATION}x): refused as a decompression bomb")
    _check_zip_count(path, archive, infos, size)
    return False


def _persistent_ids(stream, limit: int) -> int:
    """The ``BINPERSID``/``PERSID`` opcodes of one pickle (one per tensor: its storage), counted without building
    any object, stopping past ``limit``."""
    import pickletools

    count = 0
    for opcode, _, _ in pickletools.genops(stream):
        if opcode.name in ("BINPERSID", "PERSID"):
            count += 1
            if count > limit:
                break
    return count


def _check_zip_count(path: str, archive: zipfile.ZipFile, infos: list, size: int) -> None:
    """Count the tensors of a zip checkpoint's ``data.pkl`` (storages may be shared by many tensors, so the
    storage members alone do not bound it) and refuse a flood before torch builds it. ``archive``: the
    checkpoint, already open (its directory is parsed once)."""
    pkl = [i for i in infos if i.filename.endswith("data.pkl")]
    if len(pkl) != 1:
        return  # torch.load says what is wrong
    if pkl[0].compress_size > size:  # zipfile would allocate the claimed size before finding the file short
        raise ModelFileError(path, f"zip member {pkl[0].filename} claims {pkl[0].compress_size} bytes in a "
                                   f"{size}-byte file: the zip directory is damaged")
    limit = max(limits.MAX_TENSORS, limits.torch_tensor_budget(size, "zip"))
    try:
        with archive.open(pkl[0]) as f:
            count = _persistent_ids(f, limit)
    except (OSError, ValueError, EOFError, KeyError, IndexError, struct.error, UnicodeDecodeError,
            zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error):
        return  # not a well-formed pickle: torch.load says what is wrong
    if count > limits.MAX_TENSORS:
        raise ModelFileError(path, f"more than the {limits.MAX_TENSORS} tensors a file may hold (counted before "
                                   "loading)")
    _check_density(path, count, size, "zip")


def _check_pickle_protocol(path: str) -> None:
    """Refuse pickles of protocol 4 or 5 (they start with ``\\x80\\x04``/``\\x80\\x05`` and are framed):
    torch's weights-only unpickler cannot read them and would only warn and fail."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = [i for i in archive.infolist() if i.filename.endswith("data.pkl")]
                if not pkl:
                    return
                with archive.open(pkl[0]) as f:
                    head = f.read(2)
        else:
            with open(path, "rb") as f:
                head = f.read(2)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError, NotImplementedError):
        return  # torch.load reports it
    if len(head) == 2 and head[0] == 0x80 and head[1] >= 4:
        raise ModelFileError(path, f"pickle protocol {head[1]} (saved with pickle_protocol={head[1]}): torch's "
                                   "safe loader (weights_only) reads protocols up to 3; re-save it with "
                                   "torch.save's default protocol")


def _check_legacy_count(path: str) -> None:
    """Count the tensors of a legacy (pre-1.6, non-zip) checkpoint before torch builds them: its main pickle
    (the fourth of the file's pickles) loads each tensor's storage through one persistent id, so its
    ``BINPERSID``/``PERSID`` opcodes are counted, without building any object, up to ``MAX_TENSORS``."""
    import pickletools

    count = 0
    try:
        with open(path, "rb") as f:
            if zipfile.is_zipfile(f):
                return
            f.seek(0)
            for _ in range(3):
                for _ in pickletools.genops(f):
                    pass
            count = _persistent_ids(f, limits.MAX_TENSORS)
    except (OSError, ValueError, EOFError, KeyError, IndexError, struct.error, UnicodeDecodeError):
        return  # not a well-formed legacy checkpoint: torch.load says what is wrong
    if count > limits.MAX_TENSORS:
        raise ModelFileError(path, f"more than the {limits.MAX_TENSORS} tensors a file may hold (a legacy pickle, "
                                   "counted before loading)")
    _check_density(path, count, os.path.getsize(path), "legacy")


def _check_density(path: str, count: int, size: int, kind: str) -> None:
    """Refuse a flood of tiny tensors that torch.load would turn into more memory than the bound allows
    (``limits.torch_tensor_budget``), before torch builds any of them."""
    budget = limits.torch_tensor_budget(size, kind)
    if count > budget:
        raise ModelFileError(path, f"{count} tensors in a {size}-byte checkpoint: torch.load would build "
                                   f"~{limits.TORCH_BYTES_PER_TENSOR[kind]} bytes of objects for each, more than "
                                   f"hts allows for a file this size (at most {budget} tensors: 4 × the file's size "
                                   "+ 8 MiB); save the state dict as safetensors, which hts reads without that cost")


def load_checkpoint(path: str):
    """``torch.load`` with ``weights_only=True`` (memory-mapped when the format allows), errors named."""
    try:
        import torch
    except ImportError as err:
        raise ModelFileError(path, "reading a PyTorch checkpoint needs torch: pip install torch==2.13.0") from err
    mmap = _zip_members_are_stored(path)
    _check_pickle_protocol(path)
    if not mmap:
        _check_legacy_count(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False: never repeat that; keep only what it refused.
        detail = str(err).split("WeightsUnpickler error:", 1)[-1].strip().split("\n\n")[0].strip()[:200]
        if "weights_only" in detail or not detail:
            detail = "unsupported pickle content"
        raise ModelFileError(path, "refused: not a plain PyTorch checkpoint (its pickle holds objects or opcodes "
                                   "other than tensors and plain data, or is damaged), and hts never runs code "
                                   f"from a file ({detail})") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, IndexError, KeyError, TypeError,
            AttributeError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(path, f"not a readable PyTorch checkpoint: {first}") from None


def from_torch_checkpoint(path: str | os.PathLike) -> list[WeightTensor]:
    path = os.fspath(path)
    obj = load_checkpoint(path)
    try:
        pairs = _unwrap(obj) if isinstance(obj, dict) else []
    except (AttributeError, TypeError):
        pairs = []
    if not pairs:
        raise ModelFileError(path, f"holds no tensors (a {type(obj).__name__}; expected a state_dict, possibly "
                                   "nested under 'state_dict' or 'model')")
    return from_mapping(pairs, source="torch-checkpoint")  # tied tensors counted once (``shared``)


def from_torch_index(index_path: str | os.PathLike) -> list[WeightTensor]:
    """Sharded ``.bin`` checkpoints listed by a ``pytorch_model.bin.index.json`` (each shard memory-mapped)."""
    from .safetensors_model import read_index

    index_path = os.fspath(index_path)
    weight_map = read_index(index_path)
    from .safetensors_file import natural_key

    values: dict = {}
    # module order: shards by file name (``-00001-of-…`` first), each in its own state-dict order (what
    # torch.save kept), not the index's alphabetical order
    for shard in sorted(set(weight_map.values()), key=natural_key):
        if not os.path.isfile(shard):
            raise ModelFileError(index_path, f"shard {os.path.basename(shard)!r} listed in the index is missing")
        obj = load_checkpoint(shard)
        pairs = dict(_unwrap(obj)) if isinstance(obj, dict) else {}
        wanted = [name for name, where in weight_map.items() if where == shard]
        missing = [name for name in wanted if name not in pairs]
        if missing:
            raise ModelFileError(shard, "a tensor the index assigns to this shard is not in it", tensor=missing[0])
        wanted_set = set(wanted)
        values.update((name, value) for name, value in pairs.items() if name in wanted_set)
    ordered = list(values.items())
    return from_mapping(ordered, source="torch-sharded")
