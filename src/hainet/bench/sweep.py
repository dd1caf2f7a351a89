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
* ``max_concurrent`` cells run at once: models whose weights are in this process
  (``Backend.in_process``: llama.cpp, transformers) in worker processes or Ray tasks,
  one model each, threads split between them; models behind servers
  (``Backend.remote``) as async tasks, at most ``server_concurrency`` requests in
  flight per server (``distribute.py``'s executors).  Before anything loads, the
  cells that would run together must fit in available memory (each backend's
  ``estimate_memory_mb``), or the sweep is refused.

The planner resolves every cell once into a :class:`~hainet.types.RunConfig`; the
plan's hash covers the plan and the :class:`~hainet.bench.context.ResultOptions`,
never how the sweep is executed, so a sweep may be resumed with another
``--max-concurrent``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from hainet.backends import Backend, Catalog, backend_class, open_backend
from hainet.bench.cells import Cell, SweepPlan
from hainet.bench.context import BenchContext, BenchOptions, Progress
from hainet.bench.distribute import Group, InProcess, executor_for
from hainet.errors import ConfigError, HainetError
from hainet.store import Run, Store, Sweep, SweepStatus
from hainet.suites import Scorers, ScoringContext, expand_suite_names, load_suite
from hainet.types import ModelSpec, RunConfig

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


@dataclass
class SweepOutcome:
    sweep: Sweep
    runs: list[Run]
    """The newest run of every cell, in plan order."""
    failed: list[Run] = field(default_factory=list)


def available_memory_mb() -> float:
    return float(psutil.virtual_memory().available) / MIB


def estimate_memory_mb(spec: ModelSpec, quantization: str | None, home: Path) -> float:
    """Resident memory a cell of ``spec`` will need, in MiB (its backend's estimate)."""
    return backend_class(spec.backend).estimate_memory_mb(spec, quantization, home)


def _plan_hash(plan: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def _classes(specs: Mapping[str, ModelSpec]) -> list[type[Backend]]:
    return list(dict.fromkeys(backend_class(s.backend) for s in specs.values()))


def _check_quantizations(plan: SweepPlan, specs: Mapping[str, ModelSpec]) -> SweepPlan:
    """Normalize names and refuse what cannot be done, before anything loads.

    The quantization axis is shared by every model of the plan, and the plan records
    one name per quantization: the first of the plan's backends that renames it
    (llama.cpp: 4bit -> q4_k_m) gives the name, else it is lower-cased.
    """
    if not any(q is not None for q in plan.quantizations):
        return plan
    classes = _classes(specs)
    normalized: list[str | None] = []
    for q in plan.quantizations:
        if q is None:
            normalized.append(None)
            continue
        names = [cls.normalize_quantization(q) for cls in classes]
        normalized.append(next((n for n in names if n != q.lower()), q.lower()))
    for spec in specs.values():
        backend_class(spec.backend).check_quantizable(spec)
    return replace(plan, quantizations=tuple(dict.fromkeys(normalized)))


def _check_memory(groups: list[Group], home: Path, max_concurrent: int) -> None:
    needs = sorted(
        ((estimate_memory_mb(g[0].model, g[0].quantization, home), g[0]) for g in groups),
        key=lambda item: item[0],
        reverse=True,
    )
    together = needs[: max(1, max_concurrent)]
    need = sum(mb for mb, _ in together)
    have = available_memory_mb()
    if need > have:
        worst = ", ".join(
            f"{c.ref or c.model.name} {c.quantization or ''} ~{mb:.0f} MB" for mb, c in together
        )
        raise ConfigError(
            f"this sweep needs about {need:.0f} MB at once ({worst}) but only {have:.0f} MB"
            " is available; nothing was loaded",
            hint="lower --max-concurrent, or leave out the largest models or quantizations",
        )


def _sweep_to_resume(store: Store, resume: bool | str, plan_hash: str) -> Sweep | None:
    if not resume:
        return None
    sweep = store.get_sweep(resume) if isinstance(resume, str) else store.resumable_sweep(plan_hash)
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
    return sweep


def _groups(configs: list[RunConfig]) -> list[Group]:
    """Configurations by load key, in plan order: each group is one model load."""
    groups: dict[tuple[Any, ...], Group] = {}
    for config in configs:
        groups.setdefault(config.load_key, []).append(config)
    return list(groups.values())


async def run_sweep(
    catalog: Catalog,
    plan: SweepPlan,
    store: Store,
    options: BenchOptions,
    progress: Progress | None = None,
    *,
    resume: bool | str = False,
) -> SweepOutcome:
    """Plan, check, then run every cell not yet completed (see the module docstring)."""
    progress = progress or Progress()
    home = catalog.settings.home
    result = replace(options.result, suites=tuple(expand_suite_names(list(options.suites))))
    suites = [load_suite(name, home) for name in result.suites]
    specs = {name: catalog.resolve(name) for name in dict.fromkeys(plan.models)}
    plan = _check_quantizations(plan, specs)
    canonical = plan.canonical(result)
    plan_hash = _plan_hash(canonical)
    configs = plan.configs(specs, result)

    sweep = _sweep_to_resume(store, resume, plan_hash)
    done = (
        {r.cell for r in store.runs_of_sweep(sweep.id) if r.status == "completed"}
        if sweep
        else set()
    )
    todo = [c for c in configs if c.key not in done]
    groups = _groups(todo)
    _check_memory(groups, home, options.max_concurrent)

    if sweep is None:
        sweep = store.create_sweep(plan=canonical, plan_hash=plan_hash, cells=len(configs))
    else:
        sweep = store.set_sweep_status(sweep.id, "running")
    per_cell = sum(len(s.select(quick=result.quick)) for s in suites)
    progress.on_start(per_cell * len(todo), len(todo))

    judge = catalog.resolve(result.judge) if result.judge else None
    scoring = ScoringContext(unsafe_no_sandbox=options.unsafe_no_sandbox)
    if judge is not None:
        scoring.judge = await asyncio.to_thread(open_backend, judge)
    ctx = BenchContext(
        store,
        home,
        result,
        options.execution,
        suites,
        progress=progress,
        scorers=Scorers(scoring),
        sweep_id=sweep.id,
        raise_errors=len(configs) == 1,  # a sweep of one cell is one error line
    )
    try:
        await _execute(groups, ctx)
    except (KeyboardInterrupt, asyncio.CancelledError):
        store.set_sweep_status(sweep.id, "interrupted", error="interrupted by the user")
        raise
    except HainetError as exc:
        store.set_sweep_status(sweep.id, "incomplete", error=str(exc))
        raise
    finally:
        if scoring.judge is not None:
            await scoring.judge.aclose()
    return _outcome(store, sweep, configs)


def _outcome(store: Store, sweep: Sweep, configs: list[RunConfig]) -> SweepOutcome:
    newest: dict[str, Run] = {}
    for run in store.runs_of_sweep(sweep.id):  # oldest first; a completed run stays
        kept = newest.get(run.cell or "")
        if run.cell is not None and (kept is None or kept.status != "completed"):
            newest[run.cell] = run
    runs = [newest[c.key] for c in configs if c.key in newest]
    failed = [r for r in runs if r.status != "completed"]
    cells = len(configs)
    status: SweepStatus = "completed" if not failed and len(runs) == cells else "incomplete"
    sweep = store.set_sweep_status(
        sweep.id, status, error=f"{len(failed)} of {cells} cells failed" if failed else None
    )
    return SweepOutcome(sweep, runs, failed)


async def _execute(groups: list[Group], ctx: BenchContext) -> None:
    """Models behind servers go on alongside; in-process ones where the options say."""
    local = [g for g in groups if backend_class(g[0].model.backend).in_process]
    remote = [g for g in groups if g not in local]
    served = asyncio.ensure_future(InProcess(concurrent=True).run(remote, ctx))
    try:
        await executor_for(ctx.execution, len(local)).run(local, ctx)
    except BaseException:
        served.cancel()
        await asyncio.gather(served, return_exceptions=True)
        raise
    await served


async def run_bench(
    catalog: Catalog,
    models: Sequence[str],
    store: Store,
    options: BenchOptions,
    progress: Progress | None = None,
) -> list[Run]:
    """Bench each model once (a sweep without quantization/flash/temperature axes,
    at ``options.temperature``)."""
    temps: tuple[float | None, ...] = (options.temperature,)
    outcome = await run_sweep(
        catalog, SweepPlan(models=tuple(models), temperatures=temps), store, options, progress
    )
    return outcome.runs
