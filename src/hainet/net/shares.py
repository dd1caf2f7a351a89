"""Shared bench results: what a ``result.share`` record says about one run, and the
per-(model, quantization, hardware class) aggregates a hub computes from them.

:func:`share_payload` keeps only what compares models across machines: the model's
GGUF sha256 (or the served model name of a server model), quantization, flash
attention, temperature, capability scores, per-suite case counts, ttft / prefill /
decode, peak memory, a *hardware class* (CPU model, logical cores, RAM rounded down
to a power of two GiB, GPU models without their serial UUIDs) and the day.  Never
prompts, outputs, paths, hostnames, user names, pids or times finer than a day.

:class:`SharedResult` is how a hub reads a payload back (unknown fields refused,
every number finite and bounded), so a share built by hand is held to the same form.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import ValidationError
from hainet.store.models import Run
from hainet.store.records import Hardware

__all__ = [
    "SHARE_TTL",
    "HardwareClass",
    "SharedResult",
    "aggregate",
    "hardware_class",
    "share_payload",
]

SHARE_TTL = 365 * 86_400
_UUID = re.compile(r"\s*\(UUID:[^)]*\)")
_GPU_INDEX = re.compile(r"^GPU \d+:\s*")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class HardwareClass(_Strict):
    cpu: str | None = Field(default=None, max_length=200, description="CPU model name.")
    cores: int | None = Field(default=None, ge=1, le=100_000, description="Logical cores.")
    ram_gib: int | None = Field(
        default=None, ge=0, le=1 << 20, description="RAM rounded down to a power of two GiB."
    )
    gpus: list[str] = Field(default_factory=list, max_length=64, description="GPU models.")

    def key(self) -> str:
        gpus = "+".join(self.gpus) or "no gpu"
        return f"{self.cpu or '?'} / {self.cores or '?'} cores / {self.ram_gib}GiB / {gpus}"


class SharedResult(_Strict):
    """The payload of a ``result.share`` record."""

    subject: str = Field(min_length=1, max_length=64, description="sha256 of the local run id.")
    model: str = Field(min_length=1, max_length=200, description="GGUF sha256 or served name.")
    model_name: str = Field(max_length=200, description="The name the sharer knew it by.")
    quantization: str | None = Field(default=None, max_length=50)
    flash_attn: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=10)
    capabilities: dict[str, float | None] = Field(default_factory=dict, max_length=64)
    suite_cases: dict[str, int] = Field(default_factory=dict, max_length=64)
    ttft_s: float | None = Field(default=None, ge=0, le=1e6)
    prefill_tps: float | None = Field(default=None, ge=0, le=1e9)
    decode_tps: float | None = Field(default=None, ge=0, le=1e9)
    peak_rss_mb: float | None = Field(default=None, ge=0, le=1e9)
    hardware: HardwareClass
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC date of the run.")
    expires_at: int

    @classmethod
    def parse(cls, payload: dict[str, Any], who: str) -> SharedResult:
        try:
            return cls.model_validate(payload)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationError(f"{who}: payload.{where}: {first['msg']}") from None


def _ram_bucket(ram_mb: int | None) -> int | None:
    if not ram_mb or ram_mb < 1024:
        return 0 if ram_mb else None
    return 1 << int(math.log2(ram_mb / 1024))


def hardware_class(hw: Hardware) -> HardwareClass:
    """The class of a machine as a share states it (``pooling`` compares the user's
    own machine with the network's the same way)."""
    gpus = [_UUID.sub("", _GPU_INDEX.sub("", g)).strip()[:200] for g in hw.gpus]
    return HardwareClass(
        cpu=hw.cpu, cores=hw.cores_logical, ram_gib=_ram_bucket(hw.ram_mb), gpus=gpus
    )


def _model_key(run: Run) -> str:
    m = run.model
    if m.sha256:
        return m.sha256
    if m.url:  # a server model: its served name is all that can be compared
        return m.model or run.model_name
    if m.path and Path(m.path).is_file():
        digest = hashlib.sha256()
        with open(m.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    raise ValidationError(
        f"run {run.id[:12]}: the model's sha256 is not recorded and its file "
        f"{Path(m.path).name if m.path else '(none)'} is not here to hash"
    )


def share_payload(run: Run, *, now: float | None = None) -> dict[str, Any]:
    """What ``hainet results share`` signs for ``run`` (see the module docstring)."""
    if run.status != "completed":
        raise ValidationError(f"run {run.id[:12]} is {run.status}; only completed runs are shared")
    s = run.summary
    shared = SharedResult(
        subject=hashlib.sha256(run.id.encode()).hexdigest(),
        model=_model_key(run),
        model_name=run.model_name,
        quantization=run.model.quantization,
        flash_attn=run.model.flash_attn,
        temperature=run.params.temperature,
        capabilities={k: v.score for k, v in s.capabilities.items()},
        suite_cases={k: v.cases for k, v in s.suites.items()},
        ttft_s=s.ttft_s,
        prefill_tps=s.prefill_tps,
        decode_tps=s.decode_tps,
        peak_rss_mb=run.peak_rss_mb,
        hardware=hardware_class(run.hardware),
        day=run.created_at.date().isoformat(),
        expires_at=int(time.time() if now is None else now) + SHARE_TTL,
    )
    return shared.model_dump(mode="json")


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def aggregate(shares: Sequence[tuple[str, SharedResult]]) -> list[dict[str, Any]]:
    """Per (model, quantization, hardware class): distinct signers, and the median,
    min and max of every figure.  ``shares`` are (signer key id, result) pairs."""
    groups: dict[tuple[str, str | None, str], list[tuple[str, SharedResult]]] = {}
    for signer, r in shares:
        groups.setdefault((r.model, r.quantization, r.hardware.key()), []).append((signer, r))
    out = []
    for (model, quant, hw_key), items in sorted(groups.items(), key=lambda g: str(g[0])):
        results = [r for _, r in items]
        figures: dict[str, Any] = {}
        for name in ("ttft_s", "prefill_tps", "decode_tps", "peak_rss_mb"):
            figures[name] = _stats([v for r in results if (v := getattr(r, name)) is not None])
        caps = sorted({c for r in results for c in r.capabilities})
        out.append(
            {
                "model": model,
                "model_names": sorted({r.model_name for r in results}),
                "quantization": quant,
                "hardware_class": hw_key,
                "hardware": results[0].hardware.model_dump(mode="json"),
                "runs": len(results),
                "signers": len({s for s, _ in items}),
                "figures": figures,
                "capabilities": {
                    c: _stats([v for r in results if (v := r.capabilities.get(c)) is not None])
                    for c in caps
                },
            }
        )
    return out
