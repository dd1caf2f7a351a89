"""A sweep's plan, its cells resolved into run configurations, and running one
model configuration's cells on one load.

A :class:`SweepPlan` is axes of names (models x quantizations x flash attention x
temperatures); its :class:`Cell` s are the points, before any model is resolved.
:meth:`SweepPlan.configs` resolves each cell once into a
:class:`~hainet.types.RunConfig` (the model's spec and the cell's settings, the seed
and samples of the :class:`~hainet.bench.context.ResultOptions`); from there on the
configuration is the only description of the cell: its key in the store, the spec it
loads (``Backend.prepare``), what the runner samples with.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hainet.backends import Backend, backend_class, open_backend
from hainet.bench.context import BenchContext, ResultOptions
from hainet.bench.profile import MemorySampler
from hainet.bench.runner import run_loaded, store_failed
from hainet.errors import ConfigError, HainetError
from hainet.store import Run
from hainet.types import ModelSpec, RunConfig

__all__ = ["Cell", "SweepPlan", "run_group"]


@dataclass(frozen=True)
class Cell:
    """One point of a plan: a model as the plan names it and the cell's settings."""

    model: str
    quantization: str | None = None
    """A backend's quantization name (q4_k_m ..., 4bit/8bit/none); None: as is."""
    flash_attn: bool | None = None
    """None: the model's own setting."""
    temperature: float | None = None
    """None: each suite's own."""

    @property
    def key(self) -> str:
        return RunConfig.key_of(self.model, self.quantization, self.flash_attn, self.temperature)

    @property
    def load_key(self) -> tuple[str, str | None, bool | None]:
        return (self.model, self.quantization, self.flash_attn)


@dataclass(frozen=True)
class SweepPlan:
    models: tuple[str, ...]
    quantizations: tuple[str | None, ...] = (None,)
    flash_attention: tuple[bool | None, ...] = (None,)
    temperatures: tuple[float | None, ...] = (None,)

    def __post_init__(self) -> None:
        # NaN passes `< 0`; refused here by value rather than deep in the runner.
        for t in self.temperatures:
            if t is not None and not (math.isfinite(t) and t >= 0):
                raise ConfigError(f"sweep temperatures must be finite and >= 0, got {t}")

    def cells(self) -> list[Cell]:
        return [
            Cell(m, q, f, t)
            for m in self.models
            for q in self.quantizations
            for f in self.flash_attention
            for t in self.temperatures
        ]

    def configs(self, specs: Mapping[str, ModelSpec], result: ResultOptions) -> list[RunConfig]:
        """Every cell resolved once, in plan order; ``specs`` maps the plan's model
        names to the catalog's specs."""
        return [
            RunConfig(
                model=specs[c.model],
                ref=c.model,
                quantization=c.quantization,
                flash_attn=c.flash_attn,
                temperature=c.temperature,
                seed=result.seed,
                samples=result.samples,
            )
            for c in self.cells()
        ]

    def canonical(self, result: ResultOptions) -> dict[str, Any]:
        """Everything that defines the cells' results; --resume matches on its hash.
        Its keys and their order of meaning are fixed: old sweeps resume by it.
        Sweeps from before prefix reuse ran a full prefill per case, so that mode
        keeps their hash and the reuse mode adds its key."""
        plan: dict[str, Any] = {
            "models": list(self.models),
            "quantizations": list(self.quantizations),
            "flash_attention": list(self.flash_attention),
            "temperatures": list(self.temperatures),
            "suites": list(result.suites),
            "quick": result.quick,
            "seed": result.seed,
            "judge": result.judge,
            "samples": result.samples,
        }
        if result.prefix_reuse:
            plan["prefix_reuse"] = True
        return plan


async def run_group(
    configs: list[RunConfig], ctx: BenchContext, gate: asyncio.Semaphore | None = None
) -> list[Run]:
    """Load one (model, quantization, flash) configuration once; run its cells.

    ``configs`` share a load key.  A load that fails is stored as a failed run for
    every one of them; with ``ctx.raise_errors`` the error is raised too.
    """
    assert ctx.sweep_id is not None, "a group of cells belongs to a sweep"
    first = configs[0]
    sampler = MemorySampler().start()
    backend: Backend | None = None
    runs: list[Run] = []
    try:
        try:
            prepare = backend_class(first.model.backend).prepare
            spec = await asyncio.to_thread(prepare, first, ctx.home, ctx.progress.on_status)
            ctx.progress.on_status(f"loading {spec.name} {first.key}")
            backend = await asyncio.to_thread(open_backend, spec)
            ctx.store.count_load(ctx.sweep_id)
        except HainetError as exc:
            runs.extend(store_failed(config, ctx, str(exc)) for config in configs)
            if ctx.raise_errors:
                raise
            return runs
        for config in configs:
            try:
                runs.append(await run_loaded(backend, config, ctx, sampler=sampler, gate=gate))
            except HainetError:
                if ctx.raise_errors:
                    raise
                runs.append(ctx.store.runs_of_sweep(ctx.sweep_id)[-1])
        return runs
    finally:
        if backend is not None:
            await backend.aclose()
        sampler.stop()
