"""Quantized variants of a GGUF model, made the same way for every cell of a sweep.

A sweep compares quantizations of one model, so every variant comes from the same
clean base by the same path:

1. :func:`f16_base` dequantizes every tensor of the source with the ``gguf``
   package's reference dequantizer (``gguf.quants.dequantize``) and writes it as F16.
   Tensors that are F32 (norms), F16 or integer stay as they are, as in llama.cpp's
   own F16 files.  The metadata, tokenizer included, is copied byte for byte; only
   ``general.file_type`` changes, to F16.
2. :func:`quantized_variant` runs llama.cpp's own quantizer (``llama_model_quantize``,
   the library behind ``llama-quantize``) on that base.  Asking for the source's own
   type (q4_k_m of a Q4_K_M file) re-makes it from F16 too: every cell of the sweep
   then went through the same dequantize-requantize path.  The untouched original is
   still the source file itself.

Embedding and output tensors.  Left alone, the quantizer keeps the token embedding
table and the output projection at a higher precision (Q6_K, or Q8_0 where Q6_K does
not fit), so a "q4_0" of a small model would still carry an 8-bit embedding; in
gemma-3-270m that table (640 x 262,144, shared with the output) is two thirds of the
file.  Here both are set to the variant's own base type (Q4_0 for q4_0, Q4_K for
q4_k_m, ...), so a variant is what its name says.  Where the base type cannot hold the
table's rows -- K-quants work in blocks of 256, and 640 is not a multiple of 256 --
they get the smallest 32-block type with at least as many bits, as llama.cpp does for
every other such tensor: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0.
(llama.cpp does not fall back for a type given to it: it aborts the process.)
Measured on gemma-3-270m: f16 543 MB; q8_0 292 MB (table Q8_0); q6_k 283 MB (Q8_0);
q5_k_m 208 MB (Q5_1); q4_k_m 190 MB (Q5_0; llama.cpp's defaults give 253 MB, Q8_0);
q4_0 158 MB (Q4_0).  A q4_k_m made here is therefore smaller, and a little worse,
than a downloaded Q4_K_M.  :func:`gguf_info` shows what a file ended up with.

Cache layout, under ``HAINET_HOME/quantized`` unless a directory is given::

    sha256.json                  source digests keyed by (path, size, mtime)
    <sha256 of source, 16 hex>/
        .lock                    held while a file of this source is made
        f16.gguf  q8_0.gguf  q4_k_m.gguf  ...

Every file is written to a hidden temporary name, fsynced and renamed into place, so
a crash or a full disk never leaves a half file under a final name.  A per-source
lock file makes concurrent sweep workers wait for each other instead of making the
same base twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, NamedTuple

from hainet.backends.catalog import sha256_file
from hainet.backends.gguf_file import (
    _FILE_TYPE_KEY,
    _HEADER,
    _U64,
    _UINT32,
    GgufInfo,
    TensorInfo,
    _ftypes,
    _gguf,
    _pad,
    gguf_info,
)
from hainet.backends.llamacpp import check_gguf
from hainet.config import atomic_write, home_dir
from hainet.errors import BackendError, ConfigError

__all__ = [
    "ALIASES",
    "GgufInfo",
    "Progress",
    "TensorInfo",
    "default_cache_dir",
    "f16_base",
    "f16_base_cached",
    "gguf_info",
    "normalize_quantization",
    "quantization_names",
    "quantized_variant",
    "source_sha256",
]

Progress = Callable[[str, float], None]
"""Called with a stage (``"sha256"``, ``"f16"``, ``"quantize"``) and the fraction done."""

ALIASES: Mapping[str, str] = MappingProxyType({"4bit": "q4_k_m", "8bit": "q8_0", "none": "f16"})

# Types that llama.cpp refuses to make without an importance matrix, which hainet
# does not compute (it needs a calibration text and a full evaluation pass).
_NEEDS_IMATRIX = frozenset({"iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "q2_k_s"})

# The quantized tensor type each file type is built around; the embedding and output
# tensors get it (module docstring).  Others (f32, bf16, ...) keep llama.cpp's choice.
_PLAIN = ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "iq4_xs", "iq3_xxs", "iq3_s")
_BASE_TENSOR_TYPE: dict[str, str] = {
    **{name: name.upper() for name in (*_PLAIN, "tq1_0", "tq2_0")},
    **dict.fromkeys(("q2_k", "q2_k_s"), "Q2_K"),
    **dict.fromkeys(("q3_k_s", "q3_k_m", "q3_k_l"), "Q3_K"),
    **dict.fromkeys(("q4_k_s", "q4_k_m"), "Q4_K"),
    **dict.fromkeys(("q5_k_s", "q5_k_m"), "Q5_K"),
    **{"q6_k": "Q6_K", "iq3_xs": "IQ3_S", "iq3_m": "IQ3_S"},
}

# Where rows do not fit the base type: the smallest type with blocks of 32 and at
# least as many bits (llama.cpp's own fallbacks for Q4_K, Q5_K and Q6_K).
_FALLBACK_32 = {
    **dict.fromkeys(("Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    **dict.fromkeys(("IQ4_XS", "IQ3_XXS", "IQ3_S"), "IQ4_NL"),
    **{"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"},
}

# Dequantize in slices of about this many values: bounds the float32 scratch memory
# (~64 MB plus the dequantizer's temporaries) whatever the tensor's size.
_CHUNK_VALUES = 1 << 24
_F16 = 1  # GGMLQuantizationType.F16
_LLAMA_FTYPE_MOSTLY_F16 = 1


# -- names ------------------------------------------------------------------------


def quantization_names() -> list[str]:
    """Every name :func:`normalize_quantization` accepts: aliases, then llama.cpp types."""
    return [*ALIASES, *_ftypes()]


def normalize_quantization(name: str) -> str:
    """``"4bit"`` -> ``"q4_k_m"``, ``"8bit"`` -> ``"q8_0"``, ``"none"`` -> ``"f16"``; any
    llama.cpp file type name (``"Q5_K_M"``, ``"q4-0"``, ...) -> its lower-case form."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in _ftypes():
        raise ConfigError(
            f"unknown quantization {name!r}",
            hint="use 4bit, 8bit, none or a llama.cpp type: " + ", ".join(_ftypes()),
        )
    return key


# -- cache, digests, atomic files ---------------------------------------------------


def default_cache_dir() -> Path:
    return home_dir() / "quantized"


def source_sha256(source: Path, cache_dir: Path | None = None) -> str:
    """The source's sha256, remembered in ``cache_dir/sha256.json`` by (path, size,
    mtime): hashing 250 MB costs ~0.5 s, a lookup well under a millisecond.

    The index lives in the cache, not next to the model, whose directory may be
    read-only or the user's own.
    """
    cache = cache_dir or default_cache_dir()
    real = source.resolve()
    st = real.stat()
    index_path = cache / "sha256.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(real))
    if (
        isinstance(entry, dict)
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and isinstance(entry.get("sha256"), str)
    ):
        return str(entry["sha256"])
    digest = sha256_file(real)
    index[str(real)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    # A lost update (two processes at once) or an unwritable cache only costs a
    # recomputation next time.
    with contextlib.suppress(OSError):
        atomic_write(index_path, json.dumps(index, indent=1, sort_keys=True))
    return digest


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the per-source lock; flock is per open file, so threads wait too."""
    with _writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
        fh = (directory / ".lock").open("a+b")
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            # Only lock holders write here, so a temporary file now is a dead one's.
            for stale in directory.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[None]:
    """Turn OS write errors into a BackendError that says what to do about them."""
    try:
        yield
    except OSError as exc:
        hint = None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = f"the disk holding {target.parent} is full: free space or set HAINET_HOME"
        raise BackendError(f"cannot write {target}: {exc.strerror or exc}", hint=hint) from None


@contextlib.contextmanager
def _atomic_file(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target``, renamed onto it only if the block succeeds."""
    with _writing(target):
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with _writing(target):
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself survives a power cut
            finally:
                os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def _prepare(source: Path, cache_dir: Path | None, progress: Progress | None) -> Path:
    """Check the source and return its cache directory."""
    check_gguf(source)
    cache = cache_dir or default_cache_dir()
    if progress:
        progress("sha256", 0.0)
    try:
        digest = source_sha256(source, cache)
    except OSError as exc:
        raise BackendError(f"cannot read {source}: {exc.strerror or exc}") from None
    if progress:
        progress("sha256", 1.0)
    return cache / digest[:16]


# -- the F16 base ---------------------------------------------------------------------


def f16_base(
    source: Path, cache_dir: Path | None = None, *, progress: Progress | None = None
) -> Path:
    """A clean F16 GGUF of ``source``, made once per source and cached as
    ``cache_dir/<sha256[:16]>/f16.gguf`` (gemma-3-270m: 8 s, 415 MB peak RSS)."""
    directory = _prepare(Path(source), cache_dir, progress)
    target = directory / "f16.gguf"
    if target.exists():
        return target
    with _locked(directory):
        _ensure_base(Path(source), target, progress)
    return target


def f16_base_cached(source: Path, cache_dir: Path) -> bool:
    """Whether this source's own F16 base is cached (not just any model's), without
    making it: the memory estimate of a quantization depends on it."""
    try:
        digest = source_sha256(source, cache_dir)
    except OSError:
        return False
    return (cache_dir / digest[:16] / "f16.gguf").exists()


def _ensure_base(source: Path, target: Path, progress: Progress | None) -> None:
    """Make ``target`` unless another process did while we waited for the lock."""
    if target.exists():
        return
    info = gguf_info(source)
    plan = _plan_f16(info)
    total = info.data_offset + sum(_pad(nbytes, info.alignment) for _, _, nbytes in plan)
    free = shutil.disk_usage(target.parent).free
    if free < total:
        raise BackendError(
            f"not enough disk space for the F16 base of {source.name}: it needs"
            f" {total / 1e6:.0f} MB, {target.parent} has {free / 1e6:.0f} MB free",
            hint="free space or set HAINET_HOME to a larger disk",
        )
    with (
        _atomic_file(target) as tmp,
        _writing(target),
        tmp.open("wb") as out,
        source.open("rb") as src,
    ):
        _write_f16(info, plan, src, out, progress)


def _plan_f16(info: GgufInfo) -> list[tuple[TensorInfo, int, int]]:
    """(tensor, output ggml type, output bytes) for every tensor of the source."""
    gguf = _gguf()
    types, sizes = gguf.GGMLQuantizationType, gguf.GGML_QUANT_SIZES
    keep = {types.F32, types.F16, types.F64, types.I8, types.I16, types.I32, types.I64}
    plan = []
    for t in info.tensors:
        try:
            qtype = types(t.ggml_type)
            block, type_size = sizes[qtype]
        except (ValueError, KeyError):
            raise BackendError(
                f"{info.path.name}: tensor {t.name} has a ggml type ({t.ggml_type}) the gguf"
                " package does not know",
                hint="upgrade the gguf package",
            ) from None
        if not t.shape or t.shape[0] % block:
            raise BackendError(f"{info.path.name}: tensor {t.name} has a malformed shape")
        if qtype in keep:
            plan.append((t, int(qtype), t.n_elements // block * type_size))
        else:
            plan.append((t, _F16, t.n_elements * 2))
    return plan


def _write_f16(
    info: GgufInfo,
    plan: list[tuple[TensorInfo, int, int]],
    src: BinaryIO,
    out: BinaryIO,
    progress: Progress | None,
) -> None:
    import numpy as np

    gguf = _gguf()
    dequantize, types, sizes = (
        gguf.quants.dequantize,
        gguf.GGMLQuantizationType,
        gguf.GGML_QUANT_SIZES,
    )

    # Metadata: every entry verbatim, except the file type, which now says F16.
    file_type = (
        _U64.pack(len(_FILE_TYPE_KEY))
        + _FILE_TYPE_KEY.encode()
        + struct.pack("<II", _UINT32, _LLAMA_FTYPE_MOSTLY_F16)
    )
    kv_blob = bytearray()
    for key, entry in info._kv.items():
        if key == _FILE_TYPE_KEY:
            kv_blob += file_type
        else:
            src.seek(entry.start)
            kv_blob += src.read(entry.end - entry.start)
    if _FILE_TYPE_KEY not in info._kv:
        kv_blob += file_type
    n_kv = len(info._kv) + (0 if _FILE_TYPE_KEY in info._kv else 1)
    out.write(_HEADER.pack(b"GGUF", 3, len(plan), n_kv))
    out.write(kv_blob)

    # Tensor table: same names and shapes, new types and offsets.
    table = bytearray()
    offset = 0
    for t, out_type, nbytes in plan:
        name = t.name.encode("utf-8")
        table += _U64.pack(len(name)) + name
        table += struct.pack(f"<I{len(t.shape)}Q", len(t.shape), *t.shape)
        table += struct.pack("<IQ", out_type, offset)
        offset += _pad(nbytes, info.alignment)
    out.write(table)
    out.write(bytes(_pad(out.tell(), info.alignment) - out.tell()))

    data = np.memmap(info.path, dtype=np.uint8, mode="r")
    total = max(sum(nbytes for _, _, nbytes in plan), 1)
    written = 0
    for t, out_type, nbytes in plan:
        qtype = types(t.ggml_type)
        block, type_size = sizes[qtype]
        in_bytes = t.n_elements // block * type_size
        start = info.data_offset + t.offset
        raw = data[start : start + in_bytes]
        if raw.size != in_bytes:
            raise BackendError(f"{info.path.name} is truncated (tensor {t.name})")
        if out_type == t.ggml_type:
            out.write(raw.data)
        else:
            row_bytes = t.shape[0] // block * type_size
            rows = raw.reshape(-1, row_bytes)
            step = max(1, _CHUNK_VALUES // t.shape[0])
            for i in range(0, rows.shape[0], step):
                values = dequantize(np.ascontiguousarray(rows[i : i + step]), qtype)
                with np.errstate(over="ignore"):  # checked just below
                    half = values.astype(np.float16)
                if not np.isfinite(half).all():
                    raise BackendError(
                        f"{info.path.name}: tensor {t.name} has values beyond the F16 range"
                    )
                out.write(half.data)
        out.write(bytes(_pad(nbytes, info.alignment) - nbytes))
        written += nbytes
        if progress:
            progress("f16", written / total)
    del data


# -- quantized variants -------------------------------------------------------------


def quantized_variant(
    source: Path,
    quantization: str,
    cache_dir: Path | None = None,
    *,
    n_threads: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """``source`` quantized to ``quantization`` (any name :func:`normalize_quantization`
    accepts) by llama.cpp's quantizer from the F16 base, cached as
    ``cache_dir/<sha256[:16]>/<type>.gguf``; ``"f16"`` is the base itself."""
    qtype = normalize_quantization(quantization)
    source = Path(source)
    if qtype in _NEEDS_IMATRIX:
        raise ConfigError(
            f"{qtype} needs an importance matrix, which hainet does not make",
            hint="choose another type, e.g. q3_k_s or iq3_s",
        )
    if qtype == "f16":
        return f16_base(source, cache_dir, progress=progress)
    directory = _prepare(source, cache_dir, progress)
    target = directory / f"{qtype}.gguf"
    if target.exists():
        return target
    with _locked(directory):
        if not target.exists():
            base = directory / "f16.gguf"
            _ensure_base(source, base, progress)
            _quantize(base, target, qtype, n_threads, progress)
    return target


# The quantizer runs in a child process: llama.cpp stops the whole process with
# GGML_ASSERT on some inputs (e.g. a K-quant type forced onto rows that are not a
# multiple of 256), a ctypes call cannot be interrupted with Ctrl-C, and the child's
# stderr is the quantizer's log, which explains a failure.  Costs ~0.3 s of start-up.
_QUANTIZER = """
import ctypes, json, sys
import llama_cpp as lc
job = json.loads(sys.argv[1])
lc.llama_backend_init()
params = lc.llama_model_quantize_default_params()
for name, value in job["params"].items():
    setattr(params, name, value)
status = lc.llama_model_quantize(job["base"].encode(), job["out"].encode(), ctypes.byref(params))
sys.exit(min(int(status), 125))
"""


class _Outcome(NamedTuple):
    returncode: int
    log: str


def _run_quantizer(base: Path, out: Path, params: dict[str, Any]) -> _Outcome:
    job = json.dumps({"base": str(base), "out": str(out), "params": params})
    done = subprocess.run(
        [sys.executable, "-c", _QUANTIZER, job],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    return _Outcome(done.returncode, done.stderr.decode("utf-8", "replace"))


def _quantize(
    base: Path, target: Path, qtype: str, n_threads: int | None, progress: Progress | None
) -> None:
    params: dict[str, Any] = {
        "ftype": _ftypes()[qtype],
        "nthread": n_threads or os.cpu_count() or 1,
        "allow_requantize": False,  # the base is F16: nothing is quantized twice
    }
    params.update(_embedding_overrides(qtype, gguf_info(base)))
    if progress:
        progress("quantize", 0.0)
    with _atomic_file(target) as tmp:
        outcome = _run_quantizer(base, tmp, params)
        if outcome.returncode != 0:
            raise _quantizer_error(base, target, qtype, outcome)
    if progress:
        progress("quantize", 1.0)


def _embedding_overrides(qtype: str, base: GgufInfo) -> dict[str, int]:
    """``token_embedding_type``/``output_tensor_type`` for ``qtype``: its base type,
    or the nearest 32-block type where the rows do not fit (see the module docstring).

    Never a type that does not divide the rows: llama.cpp asserts instead of falling
    back for types given here.  With no fitting type, llama.cpp's own choice stays.
    """
    wanted = _BASE_TENSOR_TYPE.get(qtype)
    if wanted is None:
        return {}
    gguf = _gguf()
    types, sizes = gguf.GGMLQuantizationType, gguf.GGML_QUANT_SIZES
    by_name = {t.name: t for t in base.tensors}

    def fitting(tensor: TensorInfo | None) -> int | None:
        if tensor is None:
            return None
        for name in (wanted, _FALLBACK_32.get(wanted)):
            if name is not None and tensor.shape[0] % sizes[types[name]][0] == 0:
                return int(types[name])
        return None

    embd = by_name.get("token_embd.weight")
    # A model without output.weight reads its output through the embedding table;
    # llama.cpp then applies output_tensor_type to that table.
    output = by_name.get("output.weight", embd)
    overrides = {"token_embedding_type": fitting(embd), "output_tensor_type": fitting(output)}
    return {k: v for k, v in overrides.items() if v is not None}


def _quantizer_error(base: Path, target: Path, qtype: str, outcome: _Outcome) -> BackendError:
    lines = [ln.strip() for ln in outcome.log.splitlines() if ln.strip()]
    reason = next(
        (ln for ln in reversed(lines) if "failed" in ln or "error" in ln.lower() or "ASSERT" in ln),
        lines[-1] if lines else "",
    )
    if outcome.returncode < 0:
        what = f"crashed ({signal.Signals(-outcome.returncode).name})"
    else:
        what = f"failed (status {outcome.returncode})"
    hint = None
    with contextlib.suppress(OSError):
        if shutil.disk_usage(target.parent).free < base.stat().st_size:
            hint = f"the disk holding {target.parent} is nearly full"
    return BackendError(
        f"llama.cpp's quantizer {what} making {qtype} from {base}"
        + (f": {reason}" if reason else ""),
        hint=hint,
    )
