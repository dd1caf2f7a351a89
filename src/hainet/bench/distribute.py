"""Running configurations elsewhere: worker processes on this machine, or Ray tasks.

Each worker runs one model configuration's cells and writes its runs straight into
the store (SQLite takes concurrent writers; a cluster needs PostgreSQL).  The caller
watches the store to report progress.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
from collections.abc import Awaitable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hainet.bench.cells import Cell, run_group
from hainet.bench.runner import BenchOptions, Progress
from hainet.errors import ConfigError
from hainet.store import Store, Sweep
from hainet.suites import Scorers, ScoringContext, Suite, load_suite
from hainet.types import ModelSpec

__all__ = ["run_in_ray", "run_in_workers"]


@dataclass(frozen=True)
class _WorkerJob:
    home: str
    db_url: str
    cells: list[Cell]
    spec: ModelSpec
    suites: list[str]
    options: BenchOptions
    sweep_id: str
    n_threads: int


def _worker(job: _WorkerJob) -> list[str]:
    """A worker process: one model configuration, its cells, straight into the store."""
    home = Path(job.home)
    suites = [load_suite(n, home) for n in job.suites]
    spec = job.spec.model_copy(update={"n_threads": job.n_threads})
    context = ScoringContext(unsafe_no_sandbox=job.options.unsafe_no_sandbox)
    with Store(job.db_url) as store:
        runs = asyncio.run(
            run_group(
                job.cells,
                spec,
                suites,
                store,
                job.options,
                job.sweep_id,
                home,
                Progress(),
                Scorers(context),
                None,
                raise_errors=False,
            )
        )
    return [r.id for r in runs]


async def run_in_workers(
    groups: list[list[Cell]],
    specs: dict[str, ModelSpec],
    suites: list[Suite],
    store: Store,
    options: BenchOptions,
    sweep: Sweep,
    home: Path,
    progress: Progress,
    n: int,
) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // n)  # split the cores: no oversubscription
    jobs = _jobs(groups, specs, suites, store, options, sweep, home, threads)
    progress.on_status(
        f"{len(jobs)} configurations in {n} worker processes, {threads} threads each"
    )
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        futures = [loop.run_in_executor(pool, _worker, job) for job in jobs]
        await _watch(asyncio.gather(*futures), store, sweep, progress)


async def _watch(work: Awaitable[Any], store: Store, sweep: Sweep, progress: Progress) -> None:
    """Wait for work done in other processes, reporting the cases they store."""
    start = await asyncio.to_thread(store.count_results, sweep.id)
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=1.0)
        done = await asyncio.to_thread(store.count_results, sweep.id)
        progress.on_cases_done(done - start)
    await task


def _jobs(
    groups: list[list[Cell]],
    specs: dict[str, ModelSpec],
    suites: list[Suite],
    store: Store,
    options: BenchOptions,
    sweep: Sweep,
    home: Path,
    threads: int,
) -> list[_WorkerJob]:
    url = store.url.render_as_string(hide_password=False)
    names = [s.name for s in suites]
    return [
        _WorkerJob(str(home), url, g, specs[g[0].model], names, options, sweep.id, threads)
        for g in groups
    ]


def _probe(address: str) -> None:
    """Fail fast on an unreachable head node: ray.init waits minutes, then exits."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None


async def run_in_ray(
    groups: list[list[Cell]],
    specs: dict[str, ModelSpec],
    suites: list[Suite],
    store: Store,
    options: BenchOptions,
    sweep: Sweep,
    home: Path,
    progress: Progress,
) -> None:
    """One Ray task per configuration; each writes its runs to the same store.

    The store must be reachable from every node: a SQLite file works for a local
    instance, a cluster needs ``HAINET_DB=postgresql+psycopg://...``.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray", hint="pip install 'hainet[ray]'") from None
    address = options.ray
    if address not in (None, "local", "auto"):
        _probe(address)
    if not ray.is_initialized():
        progress.on_status(f"connecting to Ray ({address})")
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
    threads = max(1, min(cpus, os.cpu_count() or 1) // max(1, options.max_concurrent))
    task = ray.remote(num_cpus=threads)(_worker)
    refs = [
        task.remote(job)
        for job in _jobs(groups, specs, suites, store, options, sweep, home, threads)
    ]
    progress.on_status(f"{len(refs)} configurations as Ray tasks, {threads} threads each")
    try:
        await _watch(asyncio.to_thread(ray.get, refs), store, sweep, progress)
    except ray.exceptions.RayError as exc:
        raise ConfigError(f"a Ray task failed: {exc}") from None
    finally:
        if address == "local":
            ray.shutdown()
