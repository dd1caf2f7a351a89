"""Cells of a sweep and running one model configuration's cells on one load."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hainet.backends import Backend, open_backend
from hainet.bench.profile import MemorySampler
from hainet.bench.runner import BenchOptions, Progress, run_loaded, store_failed
from hainet.errors import HainetError
from hainet.store import Run, Store
from hainet.suites import Scorers, Suite
from hainet.types import ModelSpec

__all__ = ["Cell", "SweepPlan", "prepare_spec", "run_group"]


@dataclass(frozen=True)
class Cell:
    """One configuration of one model."""

    model: str
    quantization: str | None = None
    """llama.cpp type name (q4_k_m ...) or 4bit/8bit/none for transformers; None: as is."""
    flash_attn: bool | None = None
    """None: the model's own setting."""
    temperature: float | None = None
    """None: each suite's own."""

    @property
    def key(self) -> str:
        fa = "-" if self.flash_attn is None else ("fa" if self.flash_attn else "nofa")
        temp = "-" if self.temperature is None else f"t{self.temperature:g}"
        return f"{self.model}|{self.quantization or '-'}|{fa}|{temp}"

    @property
    def load_key(self) -> tuple[str, str | None, bool | None]:
        return (self.model, self.quantization, self.flash_attn)


@dataclass(frozen=True)
class SweepPlan:
    models: tuple[str, ...]
    quantizations: tuple[str | None, ...] = (None,)
    flash_attention: tuple[bool | None, ...] = (None,)
    temperatures: tuple[float | None, ...] = (None,)

    def cells(self) -> list[Cell]:
        return [
            Cell(m, q, f, t)
            for m in self.models
            for q in self.quantizations
            for f in self.flash_attention
            for t in self.temperatures
        ]

    def canonical(self, options: BenchOptions) -> dict[str, Any]:
        """Everything that defines the cells' results; --resume matches on its hash."""
        return {
            "models": list(self.models),
            "quantizations": list(self.quantizations),
            "flash_attention": list(self.flash_attention),
            "temperatures": list(self.temperatures),
            "suites": list(options.suites),
            "quick": options.quick,
            "seed": options.seed,
            "judge": options.judge,
            "samples": options.samples,
        }


def prepare_spec(spec: ModelSpec, cell: Cell, home: Path, progress: Progress) -> ModelSpec:
    """The spec a cell loads: its quantized variant and flash attention setting."""
    updates: dict[str, Any] = {}
    if cell.flash_attn is not None:
        updates["flash_attn"] = cell.flash_attn
    if cell.quantization is not None:
        if spec.backend == "llamacpp":
            from hainet.backends.quantize import quantized_variant

            assert spec.path is not None
            progress.on_status(f"making {cell.quantization} of {spec.name}")
            path = quantized_variant(Path(spec.path), cell.quantization, home / "quantized")
            updates.update(
                path=str(path),
                quantization=cell.quantization.upper(),
                file_size=path.stat().st_size,
                sha256=None,
            )
        else:
            updates["quantization"] = cell.quantization
    return spec.model_copy(update=updates) if updates else spec


async def run_group(
    cells: list[Cell],
    spec: ModelSpec,
    suites: list[Suite],
    store: Store,
    options: BenchOptions,
    sweep_id: str,
    home: Path,
    progress: Progress,
    scorers: Scorers,
    gate: asyncio.Semaphore | None,
    raise_errors: bool,
) -> list[Run]:
    """Load one (model, quantization, flash) configuration once; run its cells."""
    sampler = MemorySampler().start()
    backend: Backend | None = None
    runs: list[Run] = []
    try:
        try:
            cell_spec = await asyncio.to_thread(prepare_spec, spec, cells[0], home, progress)
            progress.on_status(f"loading {cell_spec.name} {cells[0].key}")
            backend = await asyncio.to_thread(open_backend, cell_spec)
            store.count_load(sweep_id)
        except HainetError as exc:
            for cell in cells:
                opts = replace(options, temperature=cell.temperature)
                runs.append(
                    store_failed(
                        store, spec, suites, opts, str(exc), sweep_id=sweep_id, cell=cell.key
                    )
                )
            if raise_errors:
                raise
            return runs
        for cell in cells:
            opts = replace(options, temperature=cell.temperature)
            try:
                runs.append(
                    await run_loaded(
                        backend,
                        suites,
                        store,
                        opts,
                        progress=progress,
                        scorers=scorers,
                        sampler=sampler,
                        gate=gate,
                        sweep_id=sweep_id,
                        cell=cell.key,
                    )
                )
            except HainetError:
                if raise_errors:
                    raise
                runs.append(store.runs_of_sweep(sweep_id)[-1])
        return runs
    finally:
        if backend is not None:
            await backend.aclose()
        sampler.stop()
