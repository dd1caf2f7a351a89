"""Sweeps: models x quantizations x flash attention x temperatures, each cell a run.

Every ``hainet bench`` is a sweep (a single model is a sweep of one cell).  Cells
that share (model, quantization, flash attention) share one model load and differ
only in temperature, so a sweep of 3 quantizations x 2 flash settings x 2
temperatures loads 6 times for 12 cells; the sweep counts its loads.

* A cell that fails (load error, out of memory, server gone) is stored as a failed
  run with its error and the sweep goes on; a sweep of one cell raises instead, so
  ``hainet bench -m broken.gguf`` is a one-line error.
* Ctrl-C marks the running cell's run and the sweep ``interrupted``; a process
  killed outright leaves them ``running`` until the store finds its owner gone and
  marks them ``abandoned``.  ``--resume`` finds the newest unfinished sweep with the
  same plan (or the one named) and runs only the cells without a completed run; a
  cell stopped midway takes the finished, scored cases of its newest unfinished run
  and runs only the rest (``runner._reuse``): nothing is redone, nothing duplicated,
  and each cell has exactly one completed run, holding every case.
* ``max_concurrent`` cells run at once: in-process models (llama.cpp, transformers)
  in worker processes, one model each, threads split between them; models behind
  OpenAI-compatible servers as async tasks, at most ``server_concurrency`` requests
  in flight per server.  Before anything loads, the cells that would run together
  must fit in available memory, or the sweep is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from hainet.backends import Catalog, backend_class, open_backend
from hainet.bench.cells import Cell, SweepPlan, run_group
from hainet.bench.distribute import run_in_ray, run_in_workers
from hainet.bench.runner import BenchOptions, Progress
from hainet.errors import ConfigError, HainetError
from hainet.store import Run, Store, Sweep, SweepStatus
from hainet.suites import Scorers, ScoringContext, Suite, expand_suite_names, load_suite
from hainet.types import ModelSpec

__all__ = [
    "Cell",
    "SweepOutcome",
    "SweepPlan",
    "available_memory_mb",
    "estimate_memory_mb",
    "run_bench",
    "run_sweep",
]

MIB = 1024 * 1024
# Bits per weight of llama.cpp file types, for estimating a variant not made yet.
_BITS = {
    "f32": 32.0,
    "f16": 16.0,
    "bf16": 16.0,
    "q8_0": 8.5,
    "q6_k": 6.6,
    "q5_k_m": 5.7,
    "q5_k_s": 5.5,
    "q5_0": 5.5,
    "q5_1": 6.0,
    "q4_k_m": 4.9,
    "q4_k_s": 4.6,
    "q4_0": 4.5,
    "q4_1": 5.0,
    "q3_k_m": 3.9,
    "q3_k_s": 3.5,
    "q3_k_l": 4.3,
    "q2_k": 3.4,
}
# Measured: making the F16 base of the bundled 268M-parameter model peaks at 2.3 GB.
_F16_CONVERSION_BYTES_PER_PARAM = 8.6


@dataclass
class SweepOutcome:
    sweep: Sweep
    runs: list[Run]
    """The newest run of every cell, in plan order."""
    failed: list[Run] = field(default_factory=list)


def available_memory_mb() -> float:
    return float(psutil.virtual_memory().available) / MIB


def estimate_memory_mb(spec: ModelSpec, quantization: str | None, home: Path) -> float:
    """Resident memory a cell of ``spec`` will need, in MiB (0 for remote models)."""
    if backend_class(spec.backend).in_process is False:
        return 0.0
    size = float(spec.file_size or 0)
    if quantization and spec.parameters:
        bits = _BITS.get(quantization.lower())
        if bits is not None:
            size = spec.parameters * bits / 8
        if quantization.lower() not in ("none",) and not _base_cached(spec, home):
            # The F16 base is made first, once, and costs more than the model itself.
            size = max(size, spec.parameters * _F16_CONVERSION_BYTES_PER_PARAM)
    if spec.backend == "transformers" and spec.parameters:
        # fp32 weights; the first load (GGUF conversion) peaked at 12 bytes/parameter.
        size = max(size, spec.parameters * 12.0)
    # KV cache, compute buffers and the runtime itself.
    return size * 1.25 / MIB + 150.0


def _base_cached(spec: ModelSpec, home: Path) -> bool:
    """Whether this model's own F16 base is cached (not just any model's)."""
    if spec.backend != "llamacpp" or not spec.path:
        return False
    from hainet.backends.quantize import source_sha256

    cache = home / "quantized"
    try:
        digest = source_sha256(Path(spec.path), cache)
    except OSError:
        return False
    return (cache / digest[:16] / "f16.gguf").exists()


def _plan_hash(plan: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def _check_quantizations(plan: SweepPlan, specs: dict[str, ModelSpec]) -> SweepPlan:
    """Normalize names (4bit -> q4_k_m for GGUF) and refuse what cannot be done."""
    wanted = [q for q in plan.quantizations if q is not None]
    if not wanted:
        return plan
    normalized: list[str | None] = []
    for q in plan.quantizations:
        if q is None:
            normalized.append(None)
            continue
        kinds = {s.backend for s in specs.values()}
        if "llamacpp" in kinds:
            from hainet.backends.quantize import normalize_quantization

            normalized.append(normalize_quantization(q))
        else:
            normalized.append(q.lower())
    for spec in specs.values():
        if spec.backend == "openai":
            raise ConfigError(
                f"model {spec.name!r} runs behind a server: its quantization is the server's",
                hint="sweep quantizations on GGUF or transformers models",
            )
        if spec.backend == "llamacpp" and not spec.path:
            raise ConfigError(f"model {spec.name!r} has no GGUF file to quantize")
    return replace(plan, quantizations=tuple(dict.fromkeys(normalized)))


def _check_memory(
    groups: list[list[Cell]], specs: dict[str, ModelSpec], home: Path, max_concurrent: int
) -> None:
    needs = sorted(
        ((estimate_memory_mb(specs[g[0].model], g[0].quantization, home), g[0]) for g in groups),
        key=lambda item: item[0],
        reverse=True,
    )
    together = needs[: max(1, max_concurrent)]
    need = sum(mb for mb, _ in together)
    have = available_memory_mb()
    if need > have:
        worst = ", ".join(f"{c.model} {c.quantization or ''} ~{mb:.0f} MB" for mb, c in together)
        raise ConfigError(
            f"this sweep needs about {need:.0f} MB at once ({worst}) but only {have:.0f} MB"
            " is available; nothing was loaded",
            hint="lower --max-concurrent, or leave out the largest models or quantizations",
        )


async def run_sweep(
    catalog: Catalog,
    plan: SweepPlan,
    store: Store,
    options: BenchOptions,
    progress: Progress | None = None,
    *,
    resume: bool | str = False,
    server_concurrency: int = 4,
) -> SweepOutcome:
    """Plan, check, then run every cell not yet completed (see the module docstring)."""
    progress = progress or Progress()
    home = catalog.settings.home
    options = replace(options, suites=tuple(expand_suite_names(list(options.suites))))
    suites = [load_suite(name, home) for name in options.suites]
    specs = {name: catalog.resolve(name) for name in dict.fromkeys(plan.models)}
    plan = _check_quantizations(plan, specs)
    canonical = plan.canonical(options)
    plan_hash = _plan_hash(canonical)
    cells = plan.cells()

    sweep: Sweep | None = None
    if resume:
        sweep = (
            store.get_sweep(resume) if isinstance(resume, str) else store.resumable_sweep(plan_hash)
        )
        if sweep is None:
            raise ConfigError(
                "no unfinished sweep with this plan to resume",
                hint="run it without --resume, or give the sweep id",
            )
        if sweep.plan_hash != plan_hash:
            raise ConfigError(
                f"sweep {sweep.id[:8]} has another plan: {sweep.plan}",
                hint="repeat the options of that sweep",
            )
    done = (
        {r.cell for r in store.runs_of_sweep(sweep.id) if r.status == "completed"}
        if sweep
        else set()
    )
    todo = [c for c in cells if c.key not in done]
    groups: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in todo:
        groups.setdefault(cell.load_key, []).append(cell)
    _check_memory(list(groups.values()), specs, home, options.max_concurrent)

    if sweep is None:
        sweep = store.create_sweep(plan=canonical, plan_hash=plan_hash, cells=len(cells))
    else:
        sweep = store.set_sweep_status(sweep.id, "running")
    per_cell = sum(len(s.select(quick=options.quick)) for s in suites)
    progress.on_start(per_cell * len(todo), len(todo))

    judge = catalog.resolve(options.judge) if options.judge else None
    context = ScoringContext(unsafe_no_sandbox=options.unsafe_no_sandbox)
    if judge is not None:
        context.judge = await asyncio.to_thread(open_backend, judge)
    scorers = Scorers(context)
    single = len(cells) == 1
    try:
        await _execute(
            list(groups.values()),
            specs,
            suites,
            store,
            options,
            sweep,
            home,
            progress,
            scorers,
            server_concurrency,
            single,
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        store.set_sweep_status(sweep.id, "interrupted", error="interrupted by the user")
        raise
    except HainetError as exc:
        store.set_sweep_status(sweep.id, "incomplete", error=str(exc))
        raise
    finally:
        if context.judge is not None:
            await context.judge.aclose()
    newest: dict[str, Run] = {}
    for run in store.runs_of_sweep(sweep.id):  # oldest first; a completed run stays
        kept = newest.get(run.cell or "")
        if run.cell is not None and (kept is None or kept.status != "completed"):
            newest[run.cell] = run
    runs = [newest[c.key] for c in cells if c.key in newest]
    failed = [r for r in runs if r.status != "completed"]
    status: SweepStatus = "completed" if not failed and len(runs) == len(cells) else "incomplete"
    sweep = store.set_sweep_status(
        sweep.id, status, error=f"{len(failed)} of {len(cells)} cells failed" if failed else None
    )
    return SweepOutcome(sweep, runs, failed)


async def _execute(
    groups: list[list[Cell]],
    specs: dict[str, ModelSpec],
    suites: list[Suite],
    store: Store,
    options: BenchOptions,
    sweep: Sweep,
    home: Path,
    progress: Progress,
    scorers: Scorers,
    server_concurrency: int,
    single: bool,
) -> None:
    local = [g for g in groups if backend_class(specs[g[0].model].backend).in_process]
    remote = [g for g in groups if g not in local]
    gates: dict[str, asyncio.Semaphore] = {}

    async def run_remote(group: list[Cell]) -> None:
        spec = specs[group[0].model]
        gate = gates.setdefault(spec.url or spec.name, asyncio.Semaphore(server_concurrency))
        await run_group(
            group, spec, suites, store, options, sweep.id, home, progress, scorers, gate, single
        )

    n = max(1, options.max_concurrent)
    tasks = [asyncio.ensure_future(run_remote(g)) for g in remote]
    if options.ray and local:
        await run_in_ray(local, specs, suites, store, options, sweep, home, progress)
    elif n == 1 or len(local) <= 1:
        # In this process, one configuration at a time (remote ones go on alongside).
        for group in local:
            await run_group(
                group,
                specs[group[0].model],
                suites,
                store,
                options,
                sweep.id,
                home,
                progress,
                scorers,
                None,
                single,
            )
    else:
        await run_in_workers(local, specs, suites, store, options, sweep, home, progress, n)
    if tasks:
        await asyncio.gather(*tasks)


async def run_bench(
    catalog: Catalog,
    models: Sequence[str],
    store: Store,
    options: BenchOptions,
    progress: Progress | None = None,
) -> list[Run]:
    """Bench each model once (a sweep without quantization/flash/temperature axes)."""
    temps: tuple[float | None, ...] = (options.temperature,)
    outcome = await run_sweep(
        catalog, SweepPlan(models=tuple(models), temperatures=temps), store, options, progress
    )
    return outcome.runs
