"""The marketplace: store, gate, publish, score, discover, rate and match agents.

::

    market = Marketplace(store)
    market.add(spec)                                   # a draft
    report = await market.test(spec, runner)           # stored TestReport
    result = await market.publish(spec, runner)        # gate, score, index
    market.search("turn a recipe into a shopping list")
    matrix = await market.compat(spec, {"small": model_a, "big": model_b})
    market.recommend_model(spec.id)

**Gate.**  :meth:`publish` runs the spec's test set on the given runner(s) through
:func:`~hainet.agents.testing.test_agent` (tools and code in the sandbox) and
refuses with :class:`PublishRefused`, carrying the measured rate, unless the success
rate on the first runner is above ``threshold``.  The reports are stored with the
published version, the score is computed from them (``agents/scoring.py``) and the
agent is added to the search index.  A name and version can be published once.

**Integrity.**  Everything read back is re-parsed and ``verify()``-ed: a spec
changed in the database behind the store's back is reported, never used.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from hainet.agents.scoring import ScoreBreakdown, ScoreWeights, score_reports
from hainet.agents.search import DEFAULT_THRESHOLD, DEFAULT_TOP, Embedder, SearchHit, SearchIndex
from hainet.agents.spec import AgentSpec, GenerateStep, parse_spec
from hainet.agents.testing import TestReport, test_agent
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.errors import HainetError, SandboxError, ValidationError
from hainet.store import Store
from hainet.store.agents import (
    AgentRecord,
    AgentStore,
    CompatRecord,
    Incompatibility,
    RatingRecord,
    ScoreRecord,
)
from hainet.store.ledger import SeqClaim
from hainet.types import ModelSpec

__all__ = [
    "RATING_DOMAIN",
    "Marketplace",
    "PublishRefused",
    "PublishResult",
    "RunnerSource",
    "SignatureVerifier",
    "rating_payload",
]

RATING_DOMAIN = "agent.rating"

# verify(public_key, domain, payload, signature) -> bool; hainet.net.identity.verify.
# Injected: net/ sits above agents/ in the layers.
SignatureVerifier = Callable[[bytes, str, dict[str, Any], bytes], bool]
# A runner already open, a model to open, or a factory of an async context manager.
RunnerSource = AgentRunner | ModelSpec | Callable[[], AbstractAsyncContextManager[AgentRunner]]


class PublishRefused(ValidationError):
    """The gate refused an agent: its measured rate was not above the threshold, or
    some gate cases could not be scored (the gate cannot decide on them)."""

    def __init__(self, spec: AgentSpec, report: TestReport, threshold: float) -> None:
        self.rate = report.success_rate
        self.threshold = threshold
        self.report = report
        unscored = [o for o in report.unscored if not o.holdout]
        if unscored:
            first = unscored[0]
            super().__init__(
                f"agent {spec.name} {spec.version} not published: {len(unscored)} gate "
                f"case run(s) could not be scored on {report.model} (first: {first.test_id}: "
                f"{first.error}); the gate does not count them as passes or fails",
                hint="fix the scorer's sandbox or judge and publish again",
            )
            return
        worst = ", ".join(
            f"{o.test_id} ({o.error_kind or f'score {o.score:.2f}'})" for o in report.failures()[:5]
        )
        super().__init__(
            f"agent {spec.name} {spec.version} not published: success rate "
            f"{self.rate:.3f} ({report.passed}/{report.total} passed on {report.model}) is "
            f"not above the threshold {threshold:g}" + (f"; failed: {worst}" if worst else ""),
            hint="improve the agent or its model; the measured report was stored",
        )


@dataclass(frozen=True)
class PublishResult:
    record: AgentRecord
    reports: list[TestReport]
    score: ScoreBreakdown

    @property
    def success_rate(self) -> float:
        return self.reports[0].success_rate


@dataclass(frozen=True)
class CompatCell:
    """One model configuration's result before it is stored."""

    model_name: str
    report: TestReport | None = None
    incompatibility: Incompatibility | None = None
    message: str | None = None
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)


def rating_payload(agent_id: str, key_id: str, stars: int, text: str) -> dict[str, Any]:
    """What a rating's signature covers (domain :data:`RATING_DOMAIN`)."""
    return {"agent_id": agent_id, "key_id": key_id, "stars": stars, "text": text}


class Marketplace:
    """Agents in a :class:`Store`: see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        weights: ScoreWeights | None = None,
        embedder: Embedder | None = None,
        verify_signature: SignatureVerifier | None = None,
    ) -> None:
        self.store = store
        self.agents = AgentStore(store)
        self.index = SearchIndex(self.agents, embedder=embedder)
        self.weights = weights or ScoreWeights()
        self.verify_signature = verify_signature

    # -- records ------------------------------------------------------------------

    def add(self, spec: AgentSpec) -> AgentRecord:
        """Store ``spec`` as a draft (an already stored id is returned as it is)."""
        spec.verify()
        return self.agents.add(spec.model_dump(mode="json"))

    def record(self, ref: str) -> AgentRecord:
        """An id prefix, a name (newest published, else newest draft) or name@version."""
        return self.agents.find(ref)

    def get(self, ref: str) -> AgentSpec:
        """The stored spec, re-parsed and verified against its id."""
        return self.spec_of(self.record(ref))

    @staticmethod
    def spec_of(rec: AgentRecord) -> AgentSpec:
        spec = parse_spec(rec.spec, source=f"stored agent {rec.name} {rec.version}")
        spec.verify()
        if spec.id != rec.id:
            raise ValidationError(
                f"stored agent {rec.name} {rec.version}: content hash mismatch "
                f"(row {rec.id[:12]}, spec {spec.id[:12]})"
            )
        return spec

    # -- testing and the gate -------------------------------------------------------

    async def test(
        self,
        spec: AgentSpec,
        runner: AgentRunner,
        *,
        seeds: Sequence[int] = (0,),
        purpose: str = "test",
    ) -> TestReport:
        """Run the spec's tests on ``runner`` and store the report."""
        self.add(spec)
        report = await test_agent(spec, runner, seeds=seeds)
        self.agents.add_report(
            spec.id,
            model=report.model,
            report=report,
            success_rate=report.success_rate,
            purpose=purpose,
        )
        return report

    async def publish(
        self,
        spec: AgentSpec,
        runners: AgentRunner | Sequence[AgentRunner],
        *,
        threshold: float = 0.8,
        seeds: Sequence[int] = (0,),
    ) -> PublishResult:
        """Gate, then publish.  The first runner is the gate; the others (other
        models) are tested too and count for versatility."""
        if not 0.0 <= threshold < 1.0:
            raise ValidationError(
                f"publish: threshold must be in 0..1 (exclusive), got {threshold}"
            )
        runners = [runners] if isinstance(runners, AgentRunner) else list(runners)
        if not runners:
            raise ValidationError("publish: give at least one runner (the gate model)")
        if not spec.test_cases:
            raise ValidationError(
                f"agent {spec.name} {spec.version}: no gate test cases (tests without "
                "holdout); a spec must bring tests to be published"
            )
        rec = self.add(spec)
        if rec.status == "published":
            raise ValidationError(
                f"agent {spec.name} {spec.version} is already published (id {spec.short_id})"
            )
        self._refuse_if_published(spec)
        reports = [await self.test(spec, runners[0], seeds=seeds, purpose="gate")]
        if any(not o.holdout for o in reports[0].unscored) or not (
            reports[0].success_rate > threshold
        ):
            raise PublishRefused(spec, reports[0], threshold)
        for other in runners[1:]:
            reports.append(await self.test(spec, other, seeds=seeds, purpose="versatility"))
        rec = self.agents.publish(spec.id)
        breakdown = self.rescore(spec.id, reports=reports)
        self.index.add([spec])
        return PublishResult(record=rec, reports=reports, score=breakdown)

    def _refuse_if_published(self, spec: AgentSpec) -> None:
        # Checked before the (slow) gate so a duplicate fails fast; the store checks
        # again atomically when it publishes.
        same = self.agents.list_agents(status="published", name=spec.name)
        for other in same:
            if other.version == spec.version:
                raise ValidationError(
                    f"agent {spec.name} {spec.version} is already published (id "
                    f"{other.id[:12]}); bump the version to publish a change"
                )

    def reports(self, agent_id: str, *, purpose: str | None = None) -> list[TestReport]:
        return [r.report for r in self.agents.reports(agent_id, purpose=purpose)]

    def rescore(
        self, agent_id: str, *, reports: Sequence[TestReport] | None = None
    ) -> ScoreBreakdown:
        """Score an agent from its stored reports (or ``reports``) and store it."""
        if reports is None:
            stored = self.agents.reports(agent_id)
            gate = [r for r in stored if r.purpose == "gate"]
            primary = gate[-1].model if gate else None
            reports = [r.report for r in stored if r.purpose != "compat"]
        else:
            primary = reports[0].model if reports else None
        breakdown = score_reports(reports, primary_model=primary, weights=self.weights)
        components: dict[str, Any] = dict(breakdown.components)
        components["_note"] = breakdown.note
        self.agents.add_score(
            agent_id, weights=breakdown.weights, components=components, total=breakdown.total
        )
        return breakdown

    def score(self, agent_id: str) -> ScoreRecord | None:
        return self.agents.latest_score(agent_id)

    # -- discovery ------------------------------------------------------------------

    def search(
        self, query: str, *, threshold: float = DEFAULT_THRESHOLD, top: int = DEFAULT_TOP
    ) -> list[SearchHit]:
        return self.index.search(query, threshold=threshold, top=top)

    # -- ratings --------------------------------------------------------------------

    def rate(
        self,
        agent_id: str,
        key_id: str,
        stars: int,
        text: str,
        signature: bytes,
        public_key: bytes,
        *,
        claim: SeqClaim | None = None,
    ) -> RatingRecord:
        """Store a signed rating: 1-5 stars and a review, one per key per version.

        The key id must be the sha256 of the public key (the peer id of
        ``hainet.net.identity``) and the signature must verify over
        :func:`rating_payload` under :data:`RATING_DOMAIN`.  ``claim``: the seq of
        the signed record it came in (a hub's), claimed in the rating's transaction.
        """
        rec = self.agents.get(agent_id)
        if not 1 <= stars <= 5 or isinstance(stars, bool):
            raise ValidationError(f"rating: stars must be 1 to 5, got {stars!r}")
        if hashlib.sha256(public_key).hexdigest() != key_id:
            raise ValidationError(f"rating: key id {key_id[:12]} is not the hash of the public key")
        if self.verify_signature is None:
            raise ValidationError(
                "rating: no signature verifier configured (Marketplace(verify_signature=...))"
            )
        payload = rating_payload(rec.id, key_id, stars, text)
        if not self.verify_signature(public_key, RATING_DOMAIN, payload, signature):
            raise ValidationError(
                f"rating of {rec.name} {rec.version} by {key_id[:12]}: bad signature"
            )
        return self.agents.add_rating(
            rec.id,
            key_id=key_id,
            stars=stars,
            text=text,
            signature=signature,
            public_key=public_key,
            claim=claim,
        )

    # -- compatibility ----------------------------------------------------------------

    async def compat(
        self,
        spec: AgentSpec,
        runners_by_config: Mapping[str, RunnerSource],
        *,
        seeds: Sequence[int] = (0,),
    ) -> list[CompatRecord]:
        """Run the agent's tests on each model configuration; store one matrix cell
        per configuration (an incompatibility is stored with its kind and message)."""
        if not spec.tests:
            raise ValidationError(f"agent {spec.name}: no test cases to check compatibility")
        self.add(spec)
        out = []
        for name, source in runners_by_config.items():
            cell = await self._compat_cell(spec, name, source, seeds)
            rep = cell.report
            if rep is not None:
                self.agents.add_report(
                    spec.id,
                    model=name,
                    report=rep,
                    success_rate=rep.success_rate,
                    purpose="compat",
                )
            out.append(
                self.agents.add_compat(
                    spec.id,
                    model_name=name,
                    model_config=cell.config,
                    score=None if rep is None else rep.success_rate,
                    passed=0 if rep is None else rep.passed,
                    total=len(spec.test_cases) if rep is None else rep.total,
                    seconds=cell.seconds,
                    incompatibility=cell.incompatibility,
                    message=cell.message,
                )
            )
        return out

    async def _compat_cell(
        self, spec: AgentSpec, name: str, source: RunnerSource, seeds: Sequence[int]
    ) -> CompatCell:
        start = time.perf_counter()
        config: dict[str, Any] = {}
        if isinstance(source, ModelSpec):
            config = source.model_dump(mode="json", exclude={"api_key"})
            model = source
            source = lambda: open_runner(model)  # noqa: E731
        if isinstance(source, AgentRunner):
            return await self._run_cell(spec, name, source, seeds, start, config)
        try:
            ctx = source()
            runner = await ctx.__aenter__()
        except SandboxError:
            raise
        except (HainetError, OSError, RuntimeError, ValueError) as exc:
            return CompatCell(
                name,
                incompatibility="load_failure",
                message=f"cannot open {name}: {exc}",
                seconds=time.perf_counter() - start,
                config=config,
            )
        try:
            return await self._run_cell(spec, name, runner, seeds, start, config)
        finally:
            await ctx.__aexit__(None, None, None)

    async def _run_cell(
        self,
        spec: AgentSpec,
        name: str,
        runner: AgentRunner,
        seeds: Sequence[int],
        start: float,
        config: dict[str, Any],
    ) -> CompatCell:
        config = config or runner.backend.spec.model_dump(mode="json", exclude={"api_key"})
        lacking = _lacking(spec, runner)
        if lacking:
            return CompatCell(
                name,
                incompatibility=lacking[0],
                message=lacking[1],
                seconds=time.perf_counter() - start,
                config=config,
            )
        try:
            report = await test_agent(spec, runner, seeds=seeds)
        except SandboxError:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash of the model is the cell's result
            return CompatCell(
                name,
                incompatibility="crash",
                message=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
                config=config,
            )
        kind, message = _classify(report)
        return CompatCell(
            name,
            report=report,
            incompatibility=kind,
            message=message,
            seconds=time.perf_counter() - start,
            config=config,
        )

    def matrix(self, agent_id: str) -> list[CompatRecord]:
        return self.agents.compat(agent_id)

    def recommend_model(self, agent_id: str, top: int = 3) -> list[dict[str, Any]]:
        """The best model configurations from the stored matrix: compatible ones by
        success rate, then by speed."""
        cells = [c for c in self.agents.compat(agent_id) if c.status == "ok"]
        cells.sort(key=lambda c: (-(c.score or 0.0), c.seconds))
        return [
            {
                "model": c.model_name,
                "score": c.score,
                "passed": c.passed,
                "total": c.total,
                "seconds": round(c.seconds, 3),
                "config": c.model_config_,
                "measured_at": c.created_at.isoformat(),
            }
            for c in cells[:top]
        ]


def _lacking(spec: AgentSpec, runner: AgentRunner) -> tuple[Incompatibility, str] | None:
    """What the spec needs that the backend declares it lacks (known before running)."""
    backend = type(runner.backend)
    needs_schema = spec.requirements.json_schema or any(
        isinstance(s, GenerateStep) and s.json_schema is not None for s in spec.workflow
    )
    if needs_schema and not backend.supports_json_schema:
        return "no_tool_support", (
            f"{runner.model_name} ({backend.__name__}) cannot constrain output to a JSON Schema"
        )
    if spec.requirements.tools and not backend.supports_tools:
        return "no_tool_support", f"{runner.model_name} ({backend.__name__}) has no tool calls"
    need, have = spec.requirements.n_ctx, runner.backend.spec.n_ctx
    if need and have < need:
        return "context_overflow", (
            f"{runner.model_name} has a context of {have} tokens; the agent needs {need}"
        )
    return None


def _classify(report: TestReport) -> tuple[Incompatibility | None, str | None]:
    """An incompatibility seen in the runs, by priority; None when it just ran."""
    kinds = {o.error_kind: o for o in report.outcomes if o.error_kind}
    if "context_overflow" in kinds:
        return "context_overflow", kinds["context_overflow"].error
    if "no_tool_support" in kinds:
        return "no_tool_support", kinds["no_tool_support"].error
    failed = [o for o in report.outcomes if o.error_kind == "backend"]
    if failed and len(failed) == len(report.outcomes):
        return "crash", failed[0].error
    return None, None
