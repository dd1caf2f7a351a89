"""Run suites on one loaded model, measure, score, store.

:func:`run_loaded` makes one stored :class:`~hainet.store.Run` of one
:class:`~hainet.types.RunConfig` (the cell: model, quantization, flash attention,
temperature, seed, samples) in a :class:`~hainet.bench.context.BenchContext` (store,
suites, scorers, progress): every selected case of every suite runs against the
model (with a bounded number of requests in flight), each case's result is written
in its own transaction as soon as it is scored, and the run is closed as
``completed``, ``failed`` (with the error) or ``interrupted`` (Ctrl-C). A run killed
outright keeps the cases it finished and is marked ``abandoned`` by the store once
its process is gone; a resumed sweep cell takes the finished cases of its newest
unfinished run and runs only the rest (``_reuse``).
Sweeps over many configurations are ``sweep.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from hainet.backends import Backend, open_backend
from hainet.bench.categorize import Profile, categorize
from hainet.bench.context import BenchContext, BenchOptions, Progress
from hainet.bench.profile import MemorySampler, hardware_fingerprint, library_versions
from hainet.config import home_dir
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
from hainet.types import Completion, GenerationParams, ModelSpec, Request, RunConfig

__all__ = [
    "BenchOptions",
    "Progress",
    "run_loaded",
    "run_model",
    "store_failed",
    "summarize",
]


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


def _with_profile(summary: RunSummary, backend: Backend, peak_mb: float) -> RunSummary:
    """Add the categories and tier this run alone supports (a server's memory is not
    this process's, so it is not the model's)."""
    spec = backend.spec
    caps = {k: v.score for k, v in summary.capabilities.items() if v.score is not None}
    profile = categorize(
        Profile(
            model=spec.name,
            capabilities=caps,
            peak_rss_mb=peak_mb if not backend.remote else None,
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


def _request(backend: Backend, suite: Suite, case: Case, config: RunConfig) -> Request:
    params = GenerationParams(
        temperature=suite.temperature_for(case, config.temperature), seed=config.seed
    )
    return suite.request(
        case,
        backend.spec.mode,
        params,
        native_tools=backend.supports_tools,
        constrain=backend.supports_json_schema,
    )


def _reuse(
    backend: Backend,
    work: Sequence[tuple[Suite, Case]],
    config: RunConfig,
    model: dict[str, Any],
    ctx: BenchContext,
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
    if ctx.sweep_id is None:
        return None
    old = ctx.store.resumable_run(ctx.sweep_id, config.key)
    if old is None or _without_threads(old.model.model_dump()) != _without_threads(model):
        return None
    cases = []
    for suite, case in work:
        request = _request(backend, suite, case, config)
        cases.append((suite.name, suite.version, case.id, _shown(request.prompt, request.messages)))
    return Reuse(old.id, cases)


def _share_prefixes(backend: Backend, config: RunConfig, ctx: BenchContext) -> dict[str, int]:
    """Offer each prompt-mode suite's rendered prompts to the backend (prefix reuse);
    the reused prefix length per suite.  Every case of the suite counts, not only the
    selected ones, so the prefix (and with it each answer) does not depend on
    ``--quick`` or on which cases a resumed run still has to do."""
    lengths: dict[str, int] = {}
    for suite in ctx.suites:
        prompts = [_request(backend, suite, c, config).prompt for c in suite.cases]
        texts = [p for p in prompts if p is not None]
        if texts and len(texts) == len(prompts):
            lengths[suite.name] = backend.share_prefix(texts)
    return lengths


def _without_threads(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k != "n_threads"}


async def _run_case(
    backend: Backend, suite: Suite, case: Case, config: RunConfig, scorers: Scorers
) -> CaseResult:
    request = _request(backend, suite, case, config)
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
        for i in range(config.samples or suite.samples_for(case)):
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
    config: RunConfig,
    ctx: BenchContext,
    *,
    sampler: MemorySampler | None = None,
    gate: asyncio.Semaphore | None = None,
) -> Run:
    """Run every selected case of ``config`` on its already loaded model; store one run.

    ``sampler`` was started before the model loaded (so the run's memory includes
    the model); ``gate`` bounds requests in flight (shared by every cell of one
    server; default: ``max_concurrent``).  In a sweep (``ctx.sweep_id``) the run is
    stored under the cell's key.  Raises what stopped the run after recording it as
    failed/interrupted.
    """
    progress, scorers, store = ctx.progress, ctx.scorers, ctx.store
    sampler = sampler or MemorySampler().start()
    gate = gate or asyncio.Semaphore(max(1, ctx.execution.max_concurrent))
    spec = backend.spec
    work = [(s, c) for s in ctx.suites for c in s.select(quick=ctx.result.quick)]
    model = spec.model_dump(mode="json", exclude={"api_key"})
    prefixes = _share_prefixes(backend, config, ctx) if ctx.result.prefix_reuse else {}
    reusing = any(prefixes.values())
    run = store.create_run(
        model_name=spec.name,
        backend=spec.backend,
        model=StoredModel.model_validate(model),
        params=RunParams(
            temperature=config.temperature,
            seed=config.seed,
            max_concurrent=ctx.execution.max_concurrent,
            judge=ctx.result.judge,
            samples=config.samples,
            prefix_reuse=reusing,
            prefix_tokens=prefixes if reusing else None,
        ),
        suites=[s.name for s in ctx.suites],
        quick=ctx.result.quick,
        hardware=Hardware.model_validate(hardware_fingerprint()),
        versions=library_versions(),
        sweep_id=ctx.sweep_id,
        cell=config.key if ctx.sweep_id else None,
        reuse=_reuse(backend, work, config, model, ctx),
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
            result = await _run_case(backend, suite, case, config, scorers)
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
            summary = _with_profile(summary, backend, sampler.peak_mb)
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
    config = RunConfig(
        model=spec, temperature=options.temperature, seed=options.seed, samples=options.samples
    )
    ctx = BenchContext(
        store,
        home_dir(),
        options.result,
        options.execution,
        suites,
        progress=progress or Progress(),
        scorers=scorers or Scorers(),
    )
    sampler = MemorySampler().start()
    try:
        try:
            backend = await asyncio.to_thread(open_backend, spec)
        except HainetError as exc:
            store_failed(config, ctx, str(exc))
            raise
        try:
            return await run_loaded(backend, config, ctx, sampler=sampler)
        finally:
            await backend.aclose()
    finally:
        sampler.stop()


def store_failed(config: RunConfig, ctx: BenchContext, error: str) -> Run:
    """Record a run that never started (its model did not load)."""
    spec = config.model
    run = ctx.store.create_run(
        model_name=spec.name,
        backend=spec.backend,
        model=StoredModel.of(spec),
        params=RunParams(temperature=config.temperature, seed=config.seed),
        suites=[s.name for s in ctx.suites],
        quick=ctx.result.quick,
        hardware=Hardware.model_validate(hardware_fingerprint()),
        versions=library_versions(),
        sweep_id=ctx.sweep_id,
        cell=config.key if ctx.sweep_id else None,
    )
    return ctx.store.finish_run(run.id, "failed", error=error, summary=summarize([]))
