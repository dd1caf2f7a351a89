"""What a bench is given: the options (split by what they decide) and one context.

:class:`BenchOptions` is the flat set of knobs a user sets (``hainet bench`` flags,
the Python API).  It splits in two, because the two halves answer different
questions:

* :class:`ResultOptions` define what a result *is*: the suites and their quick
  subset, the seed, the samples per case, the judge, and whether in-process
  llama.cpp reuses each suite's shared prefix (which changes a few answers' numerics,
  so a run with it is not the same measurement as one without).  Two runs that differ in one of
  them measure different things, so they are in the sweep's plan, whose hash
  ``--resume`` matches on.
* :class:`ExecutionOptions` say how the work is spread: configurations at once,
  requests in flight per server, a Ray cluster, the sandbox switch.  Changing them
  changes how long a sweep takes, not what it stores, so a sweep may be resumed with
  other ones.

The temperature is neither: it is an axis of the sweep's plan, and each cell's
temperature reaches the runner in that cell's :class:`~hainet.types.RunConfig`.

:class:`BenchContext` carries what every part of a sweep shares (the store, the
home directory, the loaded suites, the scorers, the progress callbacks, the sweep's
id), so functions take it instead of a list of eight to eleven arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hainet.store import CaseResult, Run, Store
from hainet.suites import Scorers, Suite

__all__ = ["BenchContext", "BenchOptions", "ExecutionOptions", "Progress", "ResultOptions"]


@dataclass(frozen=True)
class ResultOptions:
    """What defines a result: hashed into a sweep's plan for ``--resume``."""

    suites: Sequence[str] = ("reasoning",)
    """Suite names; ``all`` is the eight capability suites."""
    quick: bool = False
    seed: int = 0
    """Seed of the first sample of each case; sample i uses seed + i."""
    samples: int | None = None
    """Completions per case for every suite (pass@k); None: each suite's own."""
    judge: str | None = None
    """Model that judges open-ended answers (the ``judge`` scorer)."""
    prefix_reuse: bool = True
    """Evaluate each suite's shared prompt prefix once per loaded model, where the
    backend can (in-process llama.cpp); False: a full prefill for every case."""


@dataclass(frozen=True)
class ExecutionOptions:
    """How the work is done; not part of a result, so not hashed."""

    max_concurrent: int = 1
    """Configurations run at once (in-process models in that many worker processes)."""
    server_concurrency: int = 4
    """Requests in flight per OpenAI-compatible server."""
    ray: str | None = None
    """Spread configurations over a Ray cluster: ``local``, ``auto`` or an address."""
    unsafe_no_sandbox: bool = False


@dataclass(frozen=True)
class BenchOptions:
    """Every knob of a bench in one flat object (the CLI's flags, the Python API);
    :attr:`result` and :attr:`execution` are its two halves (module docstring)."""

    suites: Sequence[str] = ("reasoning",)
    """Suite names; ``all`` is the eight capability suites."""
    quick: bool = False
    temperature: float | None = None
    """Sampling temperature for every case of :func:`run_bench` / :func:`run_model`
    (a sweep's temperatures are its plan's); None: each suite's own (0 unless it says)."""
    seed: int = 0
    """Seed of the first sample of each case; sample i uses seed + i."""
    max_concurrent: int = 1
    judge: str | None = None
    """Model that judges open-ended answers (the ``judge`` scorer)."""
    unsafe_no_sandbox: bool = False
    samples: int | None = None
    """Completions per case for every suite (pass@k); None: each suite's own."""
    ray: str | None = None
    """Spread configurations over a Ray cluster: ``local``, ``auto`` or an address."""
    server_concurrency: int = 4
    """Requests in flight per OpenAI-compatible server."""
    prefix_reuse: bool = True
    """Reuse each suite's shared prompt prefix (in-process llama.cpp)."""

    @property
    def result(self) -> ResultOptions:
        return ResultOptions(
            suites=tuple(self.suites),
            quick=self.quick,
            seed=self.seed,
            samples=self.samples,
            judge=self.judge,
            prefix_reuse=self.prefix_reuse,
        )

    @property
    def execution(self) -> ExecutionOptions:
        return ExecutionOptions(
            max_concurrent=self.max_concurrent,
            server_concurrency=self.server_concurrency,
            ray=self.ray,
            unsafe_no_sandbox=self.unsafe_no_sandbox,
        )


def _ignore(*args: Any) -> None:
    return None


@dataclass
class Progress:
    """Callbacks for long work; the CLI draws a progress bar with them.  Work done in
    worker processes or Ray tasks reports through the same callbacks: the workers
    send their events back (``distribute.py``)."""

    on_start: Callable[[int, int], None] = field(default=_ignore)
    """(cases to run, cells to run) before anything loads."""
    on_status: Callable[[str], None] = field(default=_ignore)
    """What is happening now (quantizing, loading ...)."""
    on_run: Callable[[Run, int], None] = field(default=_ignore)
    """A run started, with its number of cases."""
    on_case: Callable[[CaseResult], None] = field(default=_ignore)


@dataclass
class BenchContext:
    """What every configuration of one bench shares (module docstring)."""

    store: Store
    home: Path
    result: ResultOptions
    execution: ExecutionOptions
    suites: Sequence[Suite]
    progress: Progress = field(default_factory=Progress)
    scorers: Scorers = field(default_factory=Scorers)
    sweep_id: str | None = None
    """The sweep the runs belong to; None for a lone :func:`run_model`."""
    raise_errors: bool = True
    """Whether a configuration that fails raises (a sweep of one cell, a lone run)
    or is recorded as a failed run while the sweep goes on."""
