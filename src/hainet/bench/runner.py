"""Run suites on one loaded model, measure, score, store.

:func:`run_loaded` makes one stored :class:`~hainet.store.Run`: every selected case of
every suite runs against the model (with a bounded number of requests in flight),
each case's result is written in its own transaction as soon as it is scored, and
the run is closed as ``completed``, ``failed`` (with the error) or ``interrupted``
(Ctrl-C).  A run killed outright keeps the cases it finished and is marked
``abandoned`` by the store once its process is gone; a resumed sweep cell takes the
finished cases of its newest unfinished run and runs only the rest (``_reuse``).
Sweeps over many configurations are ``sweep.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hainet.backends import Backend, open_backend
from hainet.bench.categorize import Profile, categorize
from hainet.bench.profile import MemorySampler, hardware_fingerprint, library_versions
from hainet.errors import (
    BackendError,
    BackendUnavailable,
    HainetError,
    ModelNotFound,
    SuiteError,
)
from hainet.store import (
    CaseResult,
    GroupScore,
    Hardware,
    Reuse,
    Run,
    RunParams,
    RunStatus,
    RunSummary,
    Store,
    StoredModel,
)
from hainet.suites import (
    Case,
    Scorers,
    ScoringUnavailable,
    Suite,
)
from hainet.suites.scoring import score_completions
from hainet.types import Completion, GenerationParams, ModelSpec, Request

__all__ = [
    "BenchOptions",
    "Progress",
    "run_loaded",
    "run_model",
    "store_failed",
    "summarize",
]


@dataclass(frozen=True)
class BenchOptions:
    suites: Sequence[str] = ("reasoning",)
    """Suite names; ``all`` is the eight capability suites."""
    quick: bool = False
    temperature: float | None = None
    """Sampling temperature for every case; None: each suite's own (0 unless it says)."""
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


def _ignore(*args: Any) -> None:
    return None


@dataclass
class Progress:
    """Callbacks for long work; the CLI draws a progress bar with them."""

    on_start: Callable[[int, int], None] = field(default=_ignore)
    """(cases to run, cells to run) before anything loads."""
    on_status: Callable[[str], None] = field(default=_ignore)
    """What is happening now (quantizing, loading ...)."""
    on_run: Callable[[Run, int], None] = field(default=_ignore)
    """A run started, with its number of cases."""
    on_case: Callable[[CaseResult], None] = field(default=_ignore)
    on_cases_done: Callable[[int], None] = field(default=_ignore)
    """Cases finished so far, for work done in other processes (no CaseResult here)."""


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _group_scores(results: Sequence[CaseResult], key: str) -> dict[str, GroupScore]:
    groups: dict[str, GroupScore] = {}
    for name in dict.fromkeys(getattr(r, key) or r.suite for r in results):
        rs = [r for r in results if (getattr(r, key) or r.suite) == name]
        scored = [r.score for r in rs if r.score is not None]
        groups[name] = GroupScore(
            score=_mean(scored),
            cases=len(rs),
            scored=len(scored),
            errors=sum(1 for r in rs if r.error),
        )
    return groups


def summarize(results: Sequence[CaseResult]) -> RunSummary:
    """Mean score per suite and per capability (errors excluded, counted), and speed."""
    ok = [r for r in results if r.error is None]
    return RunSummary(
        suites=_group_scores(results, "suite"),
        capabilities=_group_scores(results, "capability"),
        ttft_s=_mean([r.ttft_s for r in ok if r.ttft_s is not None]),
        prefill_tps=_mean([r.prefill_tps for r in ok if r.prefill_tps is not None]),
        decode_tps=_mean([r.decode_tps for r in ok if r.decode_tps is not None]),
        prompt_tokens=sum(r.prompt_tokens for r in results),
        completion_tokens=sum(r.completion_tokens for r in results),
    )


def _with_profile(summary: RunSummary, spec: ModelSpec, peak_mb: float) -> RunSummary:
    """Add the categories and tier this run alone supports."""
    caps = {k: v.score for k, v in summary.capabilities.items() if v.score is not None}
    profile = categorize(
        Profile(
            model=spec.name,
            capabilities=caps,
            peak_rss_mb=peak_mb if spec.backend != "openai" else None,
            decode_tps=summary.decode_tps,
            parameters=spec.parameters,
        )
    )
    return summary.model_copy(update={"categories": profile.categories, "tier": profile.tier})


def _shown(request_prompt: str | None, messages: Any) -> str:
    if request_prompt is not None:
        return request_prompt
    return "\n".join(f"[{m.role}] {m.content}" for m in messages)


def _combine(completions: Sequence[Completion]) -> dict[str, Any]:
    """Speed and token fields of a case from all its samples."""
    timings = [c.timing for c in completions]

    def mean(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.fmean(known) if known else None

    return {
        "output": completions[0].text,
        "ttft_s": mean([t.ttft_s for t in timings]),
        "prefill_tps": mean([t.prefill_tps for t in timings]),
        "decode_tps": mean([t.decode_tps for t in timings]),
        "wall_s": sum(t.wall_s for t in timings),
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "completion_tokens": sum(c.completion_tokens for c in completions),
    }


def _request(backend: Backend, suite: Suite, case: Case, options: BenchOptions) -> Request:
    params = GenerationParams(
        temperature=suite.temperature_for(case, options.temperature), seed=options.seed
    )
    return suite.request(
        case,
        backend.spec.mode,
        params,
        native_tools=backend.supports_tools,
        constrain=backend.supports_json_schema,
    )


def _reuse(
    store: Store,
    backend: Backend,
    work: Sequence[tuple[Suite, Case]],
    options: BenchOptions,
    model: dict[str, Any],
    sweep_id: str | None,
    cell: str | None,
) -> Reuse | None:
    """What a resumed cell takes over from its newest unfinished run, if anything.

    Sound because a case's result is reproducible: the cell fixes the model, the
    quantization, flash attention, temperature, seed, samples and judge (the sweep's
    plan hash covers them), and the same rendered prompt, seed and configuration give
    the same answer (at temperature 0 the same text; above it, the same seeded
    sample).  So a case is taken only when its suite, suite version, case id and
    rendered prompt match exactly, and only from a run whose model dict matches (a
    changed model file or context size is another model); thread counts may differ
    (llama.cpp computes each row on one thread, whatever the count).  A case that
    ended in an error is run again.
    """
    if sweep_id is None or cell is None:
        return None
    old = store.resumable_run(sweep_id, cell)
    if old is None or _without_threads(old.model.model_dump()) != _without_threads(model):
        return None
    cases = []
    for suite, case in work:
        request = _request(backend, suite, case, options)
        cases.append((suite.name, suite.version, case.id, _shown(request.prompt, request.messages)))
    return Reuse(old.id, cases)


def _without_threads(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k != "n_threads"}


async def _run_case(
    backend: Backend, suite: Suite, case: Case, options: BenchOptions, scorers: Scorers
) -> CaseResult:
    request = _request(backend, suite, case, options)
    params = request.params
    base: dict[str, Any] = {
        "suite": suite.name,
        "suite_version": suite.version,
        "capability": suite.capability,
        "case_id": case.id,
        "prompt": _shown(request.prompt, request.messages),
    }
    completions: list[Completion] = []
    try:
        for i in range(options.samples or suite.samples_for(case)):
            sample = dataclasses.replace(
                request, params=request.params.replace(seed=params.seed + i)
            )
            completions.append(await backend.generate(sample))
    except (BackendUnavailable, ModelNotFound):
        raise  # the model is gone for every case: fail the run, not the case
    except BackendError as exc:
        return CaseResult(**base, error=f"generation failed: {exc}")
    base.update(_combine(completions))
    details: dict[str, Any] = {}
    if len(completions) > 1:
        details["samples"] = [c.text for c in completions]
    if completions[0].tool_calls:
        details["tool_calls"] = [dataclasses.asdict(t) for t in completions[0].tool_calls]
    try:
        score = await score_completions(scorers.get(suite.scorer_name(case)), case, completions)
    except (ScoringUnavailable, SuiteError) as exc:
        kind = "could not score" if isinstance(exc, ScoringUnavailable) else "bad case"
        return CaseResult(**base, error=f"{kind}: {exc}", details=details or None)
    # The runner's own keys (samples, tool_calls) win over a scorer's of the same name.
    details = {**(score.details or {}), **details}
    return CaseResult(
        **base, score=score.value, explanation=score.explanation, details=details or None
    )


async def run_loaded(
    backend: Backend,
    suites: Sequence[Suite],
    store: Store,
    options: BenchOptions,
    *,
    progress: Progress | None = None,
    scorers: Scorers | None = None,
    sampler: MemorySampler | None = None,
    gate: asyncio.Semaphore | None = None,
    sweep_id: str | None = None,
    cell: str | None = None,
) -> Run:
    """Run every selected case on an already loaded model and store one run.

    ``sampler`` was started before the model loaded (so the run's memory includes
    the model); ``gate`` bounds requests in flight (shared by every cell of one
    server).  Raises what stopped the run after recording it as failed/interrupted.
    """
    progress = progress or Progress()
    scorers = scorers or Scorers()
    sampler = sampler or MemorySampler().start()
    gate = gate or asyncio.Semaphore(max(1, options.max_concurrent))
    spec = backend.spec
    work = [(s, c) for s in suites for c in s.select(quick=options.quick)]
    model = spec.model_dump(mode="json", exclude={"api_key"})
    run = store.create_run(
        model_name=spec.name,
        backend=spec.backend,
        model=StoredModel.model_validate(model),
        params=RunParams(
            temperature=options.temperature,
            seed=options.seed,
            max_concurrent=options.max_concurrent,
            judge=options.judge,
            samples=options.samples,
        ),
        suites=[s.name for s in suites],
        quick=options.quick,
        hardware=Hardware.model_validate(hardware_fingerprint()),
        versions=library_versions(),
        sweep_id=sweep_id,
        cell=cell,
        reuse=_reuse(store, backend, work, options, model, sweep_id, cell),
    )
    store.update_run(run.id, load_s=backend.load_seconds)
    progress.on_run(run, len(work))
    # A resumed cell: the cases taken over from its unfinished run count as done.
    done: list[CaseResult] = list(run.results or [])
    for result in done:
        progress.on_case(result)
    taken = {(r.suite, r.case_id) for r in done}
    work = [(s, c) for s, c in work if (s.name, c.id) not in taken]

    async def one(suite: Suite, case: Case) -> None:
        async with gate:
            result = await _run_case(backend, suite, case, options, scorers)
        # In a thread: an fsync per case must not stall the requests in flight.  A
        # Ctrl-C during the write waits for it, so the run's summary counts exactly
        # the cases stored.
        write = asyncio.ensure_future(asyncio.to_thread(store.add_result, run.id, result))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            while not write.done():  # a write takes milliseconds: outlast every cancel
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(write)
            raise
        finally:
            if write.done() and not write.cancelled() and write.exception() is None:
                done.append(result)
        progress.on_case(result)

    def finish(status: RunStatus, error: str | None = None) -> Run:
        sampler.sample()
        summary = summarize(done)
        if status == "completed":
            summary = _with_profile(summary, spec, sampler.peak_mb)
        return store.finish_run(
            run.id,
            status,
            error=error,
            summary=summary,
            peak_rss_mb=sampler.peak_mb,
            model_rss_mb=sampler.model_mb,
        )

    tasks = [asyncio.ensure_future(one(s, c)) for s, c in work]

    async def settle() -> None:
        # gather() gives up at the first cancelled or failed case; the others may
        # still be writing.  Stop them and let writes in flight land before the run
        # is closed, so its summary counts exactly the cases stored.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        await asyncio.gather(*tasks)
    except (KeyboardInterrupt, asyncio.CancelledError):
        await settle()
        finish("interrupted", "interrupted by the user")
        raise
    except HainetError as exc:
        await settle()
        finish("failed", str(exc))
        raise
    return finish("completed")


async def run_model(
    spec: ModelSpec,
    suites: Sequence[Suite],
    store: Store,
    options: BenchOptions,
    progress: Progress | None = None,
    scorers: Scorers | None = None,
) -> Run:
    """Load ``spec``, run every selected case, store one run, close the model.

    A model that cannot load is stored as a failed run, and the error is raised.
    """
    sampler = MemorySampler().start()
    try:
        try:
            backend = await asyncio.to_thread(open_backend, spec)
        except HainetError as exc:
            store_failed(store, spec, suites, options, str(exc))
            raise
        try:
            return await run_loaded(
                backend,
                suites,
                store,
                options,
                progress=progress,
                scorers=scorers,
                sampler=sampler,
            )
        finally:
            await backend.aclose()
    finally:
        sampler.stop()


def store_failed(
    store: Store,
    spec: ModelSpec,
    suites: Sequence[Suite],
    options: BenchOptions,
    error: str,
    *,
    sweep_id: str | None = None,
    cell: str | None = None,
) -> Run:
    """Record a run that never started (its model did not load)."""
    run = store.create_run(
        model_name=spec.name,
        backend=spec.backend,
        model=StoredModel.of(spec),
        params=RunParams(temperature=options.temperature, seed=options.seed),
        suites=[s.name for s in suites],
        quick=options.quick,
        hardware=Hardware.model_validate(hardware_fingerprint()),
        versions=library_versions(),
        sweep_id=sweep_id,
        cell=cell,
    )
    return store.finish_run(run.id, "failed", error=error, summary=summarize([]))
