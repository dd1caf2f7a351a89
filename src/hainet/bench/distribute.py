"""Where configurations run: one :class:`Executor` interface, three places.

* :class:`InProcess`: in this process.  In-process models one configuration at a
  time; models behind servers all at once, at most ``server_concurrency`` requests in
  flight per server (``concurrent=True``).
* :class:`Workers`: worker processes on this machine, one configuration each, the
  cores split between them.
* :class:`Ray`: one Ray task per configuration, on a local instance or a cluster.

Workers and Ray tasks write their runs straight into the store (SQLite takes
concurrent writers; a cluster needs PostgreSQL), which stays the record.  Progress
comes back as events, one per case, run and status line, on a queue (a
``multiprocessing`` manager's for workers, a ``ray.util.queue.Queue`` for Ray) that
the caller relays to its :class:`~hainet.bench.context.Progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hainet.bench.cells import run_group
from hainet.bench.context import BenchContext, ExecutionOptions, Progress, ResultOptions
from hainet.errors import ConfigError
from hainet.store import Store
from hainet.suites import Scorers, ScoringContext, load_suite
from hainet.types import RunConfig

__all__ = ["Executor", "InProcess", "Ray", "Workers", "executor_for"]

Group = list[RunConfig]
"""Configurations that share one model load."""


class Executor(Protocol):
    """Runs groups of configurations, each group on one load, and stores their runs."""

    async def run(self, groups: list[Group], ctx: BenchContext) -> None: ...


@dataclass(frozen=True)
class InProcess:
    concurrent: bool = False
    """All groups at once, a gate per server (for remote models); else one by one."""

    async def run(self, groups: list[Group], ctx: BenchContext) -> None:
        if not self.concurrent:
            for group in groups:
                await run_group(group, ctx)
            return
        gates: dict[str, asyncio.Semaphore] = {}

        async def one(group: Group) -> None:
            spec = group[0].model
            limit = ctx.execution.server_concurrency
            gate = gates.setdefault(spec.url or spec.name, asyncio.Semaphore(limit))
            await run_group(group, ctx, gate)

        await asyncio.gather(*(one(g) for g in groups))


def executor_for(execution: ExecutionOptions, groups: int) -> Executor:
    """Where ``groups`` in-process configurations run under these options."""
    n = max(1, execution.max_concurrent)
    if execution.ray and groups:
        return Ray(execution.ray)
    if n == 1 or groups <= 1:
        return InProcess()
    return Workers(n)


# -- events from other processes --------------------------------------------------------


class EventQueue(Protocol):
    def put(self, item: Any) -> None: ...

    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def _forwarding(events: EventQueue) -> Progress:
    """A worker's progress: every callback becomes an event for the caller."""
    return Progress(
        on_status=lambda text: events.put(("status", text)),
        on_run=lambda run, cases: events.put(("run", run, cases)),
        on_case=lambda result: events.put(("case", result)),
    )


def _deliver(event: tuple[Any, ...], progress: Progress) -> None:
    kind, *args = event
    if kind == "case":
        progress.on_case(args[0])
    elif kind == "run":
        progress.on_run(args[0], args[1])
    elif kind == "status":
        progress.on_status(args[0])


def _drain(events: EventQueue, wait: float) -> list[tuple[Any, ...]]:
    """The events queued now, waiting up to ``wait`` seconds for the first."""
    got: list[tuple[Any, ...]] = []
    with contextlib.suppress(queue.Empty):
        got.append(events.get(block=wait > 0, timeout=wait if wait > 0 else None))
        while True:
            got.append(events.get(block=False))
    return got


async def _relay(work: Awaitable[Any], events: EventQueue, progress: Progress) -> None:
    """Wait for work done elsewhere, relaying its events as they arrive.  Waits are
    short (half a second) so a Ctrl-C is not held up by a blocked ``get``."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            finished = task.done()
            for event in await asyncio.to_thread(_drain, events, 0.0 if finished else 0.5):
                _deliver(event, progress)
            if finished:
                break
    finally:
        if not task.done():
            task.cancel()
    await task


# -- worker processes and Ray tasks ----------------------------------------------------


@dataclass(frozen=True)
class _WorkerJob:
    """Everything a worker needs, picklable: it rebuilds the context on its side."""

    home: str
    db_url: str
    configs: Group
    suites: list[str]
    result: ResultOptions
    execution: ExecutionOptions
    sweep_id: str
    n_threads: int
    events: EventQueue


def _worker(job: _WorkerJob) -> list[str]:
    """A worker process: one model configuration, its cells, straight into the store."""
    home = Path(job.home)
    suites = [load_suite(n, home) for n in job.suites]
    threads = {"n_threads": job.n_threads}
    configs = [
        c.model_copy(update={"model": c.model.model_copy(update=threads)}) for c in job.configs
    ]
    scorers = Scorers(ScoringContext(unsafe_no_sandbox=job.execution.unsafe_no_sandbox))
    with Store(job.db_url) as store:
        ctx = BenchContext(
            store,
            home,
            job.result,
            job.execution,
            suites,
            progress=_forwarding(job.events),
            scorers=scorers,
            sweep_id=job.sweep_id,
            raise_errors=False,
        )
        runs = asyncio.run(run_group(configs, ctx))
    return [r.id for r in runs]


def _jobs(
    groups: list[Group], ctx: BenchContext, threads: int, events: EventQueue
) -> list[_WorkerJob]:
    assert ctx.sweep_id is not None
    url = ctx.store.url.render_as_string(hide_password=False)
    names = [s.name for s in ctx.suites]
    return [
        _WorkerJob(
            str(ctx.home), url, g, names, ctx.result, ctx.execution, ctx.sweep_id, threads, events
        )
        for g in groups
    ]


@dataclass(frozen=True)
class Workers:
    n: int
    """Worker processes; the usable cores are split between them."""

    async def run(self, groups: list[Group], ctx: BenchContext) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, (cores or 1) // self.n)  # split the cores: no oversubscription
        ctx.progress.on_status(
            f"{len(groups)} configurations in {self.n} worker processes, {threads} threads each"
        )
        loop = asyncio.get_running_loop()
        mp = multiprocessing.get_context("spawn")
        with mp.Manager() as manager, ProcessPoolExecutor(self.n, mp_context=mp) as pool:
            events: EventQueue = manager.Queue()
            jobs = _jobs(groups, ctx, threads, events)
            futures = [loop.run_in_executor(pool, _worker, job) for job in jobs]
            await _relay(asyncio.gather(*futures), events, ctx.progress)


def _probe(address: str) -> None:
    """Fail fast on an unreachable head node: ray.init waits minutes, then exits."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None


@dataclass(frozen=True)
class Ray:
    """One Ray task per configuration; each writes its runs to the same store.

    The store must be reachable from every node: a SQLite file works for a local
    instance, a cluster needs ``HAINET_DB=postgresql+psycopg://...``.
    """

    address: str
    """``local`` (start one here, stop it after), ``auto`` or a head node's address."""

    async def run(self, groups: list[Group], ctx: BenchContext) -> None:
        try:
            import ray
            from ray.util.queue import Queue
        except ImportError:
            raise ConfigError("--ray needs Ray", hint="pip install 'hainet[ray]'") from None
        address = self.address
        if address not in ("local", "auto"):
            _probe(address)
        if not ray.is_initialized():
            ctx.progress.on_status(f"connecting to Ray ({address})")
            _init(ray.init, address)
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        per = max(1, ctx.execution.max_concurrent)
        threads = max(1, min(cpus, os.cpu_count() or 1) // per)
        task = ray.remote(num_cpus=threads)(_worker)
        try:
            # The queue is an actor; it holds no CPU, so it never waits for the tasks'.
            events: EventQueue = Queue(actor_options={"num_cpus": 0})
            refs = [task.remote(job) for job in _jobs(groups, ctx, threads, events)]
            ctx.progress.on_status(
                f"{len(refs)} configurations as Ray tasks, {threads} threads each"
            )
            await _relay(asyncio.to_thread(ray.get, refs), events, ctx.progress)
        except ray.exceptions.RayError as exc:
            raise ConfigError(f"a Ray task failed: {exc}") from None
        finally:
            if address == "local":
                ray.shutdown()


def _init(init: Callable[..., Any], address: str) -> None:
    try:
        if address == "local":
            init(include_dashboard=False, log_to_driver=False)
        else:
            init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
