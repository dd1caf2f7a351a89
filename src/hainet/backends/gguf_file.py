"""Reading a GGUF file's header: metadata keys, tensor table, alignment.

Parsed with ``struct`` over an ``mmap``: the ``gguf`` package's reader builds a
numpy view for every vocabulary entry (9 s for the bundled model's 262k tokens),
while this takes 0.05 s.  The quantizer (``quantize.py``) uses it to plan and write
the F16 base and to check what a variant ended up with.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hainet.backends.base import missing_dependency
from hainet.backends.llamacpp import check_gguf
from hainet.errors import BackendError, BackendUnavailable

__all__ = ["GgufInfo", "TensorInfo", "gguf_info"]

_HEADER = struct.Struct("<4sIQQ")
_GGUF_DEFAULT_ALIGNMENT = 32
_ALIGNMENT_KEY = "general.alignment"
# GGUF value types: fixed sizes of the scalars, then string (8) and array (9).
_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
_U64 = struct.Struct("<Q")
_FILE_TYPE_KEY = "general.file_type"


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_dependency("llama-cpp-python", "llama", exc) from None
    return llama_cpp


def _gguf() -> Any:
    try:
        import gguf
        import gguf.quants
    except ImportError as exc:
        raise BackendUnavailable(
            f"the gguf package is not installed ({exc})", hint="pip install 'gguf==0.19.0'"
        ) from None
    return gguf


@cache
def _ftypes() -> Mapping[str, int]:
    lc = _llama_cpp()
    found = {
        attr.removeprefix("LLAMA_FTYPE_MOSTLY_").lower(): int(getattr(lc, attr))
        for attr in dir(lc)
        if attr.startswith("LLAMA_FTYPE_MOSTLY_")
    }
    if hasattr(lc, "LLAMA_FTYPE_ALL_F32"):
        found["f32"] = int(lc.LLAMA_FTYPE_ALL_F32)
    return MappingProxyType(dict(sorted(found.items())))


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    """ggml order: the row length (``ne0``) first."""
    ggml_type: int
    offset: int
    """From the start of the data section."""

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n


@dataclass(frozen=True, slots=True)
class _KeyValue:
    start: int
    value_at: int
    end: int
    vtype: int


@dataclass(frozen=True)
class GgufInfo:
    """What :func:`gguf_info` reads from a GGUF header (no tensor data is read)."""

    path: Path
    version: int
    file_type: int | None
    """``general.file_type``: a llama.cpp ``LLAMA_FTYPE_*`` value."""
    alignment: int
    data_offset: int
    tensors: tuple[TensorInfo, ...]
    _kv: dict[str, _KeyValue]

    @property
    def keys(self) -> list[str]:
        return list(self._kv)

    @property
    def file_type_name(self) -> str | None:
        """The llama.cpp name of :attr:`file_type` (``"q4_k_m"``), if it has one."""
        names = {v: k for k, v in _ftypes().items()}
        return None if self.file_type is None else names.get(self.file_type)

    def tensor_types(self) -> dict[str, str]:
        """Tensor name -> ggml type name (``"Q8_0"``)."""
        types = _gguf().GGMLQuantizationType
        return {t.name: types(t.ggml_type).name for t in self.tensors}


def gguf_info(path: Path) -> GgufInfo:
    """Parse the header of a GGUF file: metadata layout, file type and tensor table.

    Not ``gguf.GGUFReader``: it builds a numpy view for every vocabulary entry, 9-18 s
    for a 262k-token vocabulary; walking the header with ``struct`` takes ~0.1 s, and
    copying the metadata bytes verbatim is exact by construction.
    """
    check_gguf(path)
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse_header(path, mm)
    except (struct.error, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise BackendError(f"{path} is not a valid GGUF file: {exc}") from None
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc}") from None


def _string(buf: mmap.mmap, pos: int) -> tuple[str, int]:
    (n,) = _U64.unpack_from(buf, pos)
    end = pos + 8 + n
    if end > len(buf):
        raise ValueError("truncated string")
    return buf[pos + 8 : end].decode("utf-8"), end


def _skip_value(buf: mmap.mmap, pos: int, vtype: int) -> int:
    if vtype in _SCALAR_SIZE:
        return pos + _SCALAR_SIZE[vtype]
    if vtype == _STRING:
        return pos + 8 + int(_U64.unpack_from(buf, pos)[0])
    if vtype == _ARRAY:
        itype, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if itype in _SCALAR_SIZE:
            return pos + int(count) * _SCALAR_SIZE[itype]
        if itype == _STRING:  # the vocabulary: keep this loop tight
            unpack = _U64.unpack_from
            for _ in range(count):
                pos += 8 + unpack(buf, pos)[0]
            return int(pos)
        for _ in range(count):
            pos = _skip_value(buf, pos, itype)
        return pos
    raise ValueError(f"unknown metadata value type {vtype}")


def _parse_header(path: Path, buf: mmap.mmap) -> GgufInfo:
    _magic, version, n_tensors, n_kv = _HEADER.unpack_from(buf, 0)
    if version & 0xFFFF == 0:
        raise ValueError("big-endian GGUF files are not supported")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
    if n_kv > len(buf) or n_tensors > len(buf):
        raise ValueError("corrupt header counts")
    pos = _HEADER.size
    kv: dict[str, _KeyValue] = {}
    for _ in range(n_kv):
        start = pos
        key, pos = _string(buf, pos)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        value_at = pos + 4
        pos = _skip_value(buf, value_at, vtype)
        if pos > len(buf):
            raise ValueError(f"metadata {key!r} runs past the end of the file")
        kv[key] = _KeyValue(start, value_at, pos, vtype)

    def u32(key: str) -> int | None:
        entry = kv.get(key)
        if entry is None or entry.vtype != _UINT32:
            return None
        return int(struct.unpack_from("<I", buf, entry.value_at)[0])

    tensors = []
    for _ in range(n_tensors):
        name, pos = _string(buf, pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        if n_dims > 8:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
        shape = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        pos += 4 + 8 * n_dims
        ggml_type, offset = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        tensors.append(TensorInfo(name, tuple(int(d) for d in shape), ggml_type, offset))
    alignment = u32(_ALIGNMENT_KEY) or _GGUF_DEFAULT_ALIGNMENT
    if alignment & (alignment - 1):
        raise ValueError(f"alignment {alignment} is not a power of two")
    return GgufInfo(
        path=path,
        version=version,
        file_type=u32(_FILE_TYPE_KEY),
        alignment=alignment,
        data_offset=_pad(pos, alignment),
        tensors=tuple(tensors),
        _kv=kv,
    )


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment
