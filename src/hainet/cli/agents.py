"""``hainet agents``: validate, run, test, publish, search, rate and match agents.

AGENT is a spec file (``.yaml``/``.yml``/``.json``) or a stored agent: an id
prefix, a name (its newest published version) or ``name@version``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hainet.agents.marketplace import (
    RATING_DOMAIN,
    Marketplace,
    RunnerSource,
    rating_payload,
)
from hainet.agents.scoring import ScoreWeights
from hainet.agents.spec import json_schema, load_spec
from hainet.agents.testing import TestReport
from hainet.agents.usecases import default_model, is_spec_file, resolve_agent
from hainet.agents.workflow import AgentRun, AgentRunner, open_runner
from hainet.backends import Catalog
from hainet.cli._common import JsonOption, console, fmt, open_store, print_json, settings
from hainet.config import Settings
from hainet.errors import HainetError, ValidationError
from hainet.inputs import SPEC_LIMITS, parse_json
from hainet.net.identity import Identity, verify
from hainet.store import AgentRecord

app = typer.Typer(
    help="Agents: validate, run, test, publish, discover, rate.", no_args_is_help=True
)

ModelOption = typer.Option(
    None, "--model", help="Model to run on [the spec's first required model, else bundled]."
)
UnsafeOption = typer.Option(
    False, "--unsafe-no-sandbox", help="Run the agent's tools and code without the sandbox."
)
SeedsOption = typer.Option(1, "--repeats", min=1, help="Runs per test case (seeds 0..N-1).")


def _record(market: Marketplace, ref: str) -> AgentRecord:
    return market.agents.get(load_spec(ref).id) if is_spec_file(ref) else market.record(ref)


@contextlib.asynccontextmanager
async def _open(cfg: Settings, model: str, **kw: Any) -> AsyncIterator[AgentRunner]:
    """A runner on a catalog model (tests replace this with a mock)."""
    async with open_runner(Catalog(cfg).resolve(model), **kw) as runner:
        yield runner


def parse_weights(text: str | None, base: dict[str, float]) -> ScoreWeights:
    """``"accuracy=0.5,stability=0.2"`` over ``base`` (config.toml's score_weights)."""
    weights = dict(base)
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else float("nan")
        except ValueError:
            raise ValidationError(f"--weights: {name.strip()}: {value!r} is not a number") from None
    return ScoreWeights.from_dict(weights)


def _market(
    cfg: Settings, weights: str | None = None
) -> contextlib.AbstractContextManager[Marketplace]:
    @contextlib.contextmanager
    def cm() -> Any:
        chosen = parse_weights(weights, cfg.score_weights)
        with open_store(cfg) as store:
            yield Marketplace(store, verify_signature=verify, weights=chosen)

    return cm()


@app.command()
def validate(file: Path = typer.Argument(..., help="Spec file (YAML or JSON).")) -> None:
    """Check a spec file; an error names the field."""
    spec = load_spec(file)
    console.print(
        f"ok: {spec.name} {spec.version} ({spec.short_id}), {len(spec.workflow)} steps, "
        f"{len(spec.test_cases)} gate tests, {len(spec.holdout_cases)} held out",
        highlight=False,
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec format."""
    print_json(json_schema())


def _parse_input(text: str) -> Any:
    # A JSON object or array is passed as data; anything else as the string it is.
    # Bounded like any file (hainet.inputs): deep nesting or NaN is an error, not a
    # traceback; text that is not JSON at all stays the string it is.
    if text.lstrip()[:1] in ("{", "["):
        try:
            return parse_json(text, where="--input", error=ValidationError, limits=SPEC_LIMITS)
        except ValidationError as exc:
            if "not valid JSON" not in str(exc):  # too deep, NaN, a key twice: refused
                raise
    return text


def _steps_table(run: AgentRun) -> Table:
    table = Table(title="steps")
    for col in ("step", "kind", "wall s", "prompt tok", "gen tok", "RSS MiB", "error"):
        table.add_column(col, justify="left" if col in ("step", "kind", "error") else "right")
    for s in run.steps:
        table.add_row(
            s.step,
            s.kind,
            fmt(s.wall_s, ".3f"),
            str(s.prompt_tokens),
            str(s.completion_tokens),
            fmt(s.rss_mb, ".0f"),
            s.error or "",
        )
    return table


@app.command()
def run(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file, stored id prefix or name[@version]."),
    input: str = typer.Option(..., "--input", "-i", help="The agent's input (JSON or text)."),
    model: str | None = ModelOption,
    unsafe_no_sandbox: bool = UnsafeOption,
    as_json: bool = JsonOption,
) -> None:
    """Run an agent once and show its output and per-step timing, tokens and memory."""
    cfg = settings(ctx)
    with _market(cfg) as market:
        spec = resolve_agent(agent, market.store)

    async def go() -> AgentRun:
        async with _open(cfg, default_model(spec, model), unsafe_no_sandbox=unsafe_no_sandbox) as r:
            return await r.run(spec, _parse_input(input))

    result = asyncio.run(go())
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(result.text, highlight=False, soft_wrap=True)
        console.print(_steps_table(result))
        console.print(
            f"{fmt(result.wall_s, '.3f')} s, peak RSS {fmt(result.peak_rss_mb, '.0f')} MiB"
            + (f", failed ({result.error_kind}): {result.error}" if result.error else ""),
            highlight=False,
            soft_wrap=True,
        )
    if result.error:
        raise typer.Exit(1)


def _report_row(r: TestReport) -> list[str]:
    return [
        r.model,
        fmt(r.success_rate, ".3f"),
        f"{r.passed}/{r.total}",
        fmt(r.holdout_rate, ".3f"),
        fmt(r.mean_latency_s, ".3f"),
        fmt(r.tokens_per_s, ".1f"),
        fmt(r.peak_rss_mb, ".0f"),
    ]


def _reports_table(reports: Sequence[TestReport]) -> Table:
    table = Table(title="test reports")
    for col in ("model", "success", "passed", "holdout", "latency s", "tok/s", "peak MiB"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in reports:
        table.add_row(*_report_row(r))
    return table


@app.command()
def test(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file, stored id prefix or name[@version]."),
    models: list[str] | None = typer.Option(None, "--models", "-m", help="Models to test on."),
    repeats: int = SeedsOption,
    unsafe_no_sandbox: bool = UnsafeOption,
    as_json: bool = JsonOption,
) -> None:
    """Run the agent's test set (tools and code sandboxed) and store the reports."""
    cfg = settings(ctx)
    with _market(cfg) as market:
        spec = resolve_agent(agent, market.store)
        names = models or [default_model(spec, None)]

        async def go() -> list[TestReport]:
            out = []
            for name in names:
                async with _open(cfg, name, unsafe_no_sandbox=unsafe_no_sandbox) as runner:
                    out.append(await market.test(spec, runner, seeds=range(repeats)))
            return out

        reports = asyncio.run(go())
    if as_json:
        print_json([r.model_dump(mode="json") for r in reports])
        return
    console.print(f"{spec.name} {spec.version} ({spec.short_id})", highlight=False)
    console.print(_reports_table(reports))
    for r in reports:
        for o in r.failures()[:10]:
            console.print(
                f"  {r.model} {o.test_id} (seed {o.seed}): score {o.score:.2f}"
                + (f", {o.error_kind}: {o.error}" if o.error else f": {o.explanation}"),
                highlight=False,
                soft_wrap=True,
            )


@app.command()
def publish(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file, stored id prefix or name[@version]."),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Success rate to beat (default: publish_threshold, 0.8)."
    ),
    model: str | None = ModelOption,
    models: list[str] | None = typer.Option(
        None, "--models", help="Other models to test on too (versatility)."
    ),
    repeats: int = SeedsOption,
    weights: str | None = typer.Option(
        None,
        "--weights",
        help="Score weights, e.g. 'accuracy=0.5,stability=0.2' (default: score_weights "
        "in config.toml, else performance 0.3, accuracy 0.3, resources 0.2, "
        "versatility 0.1, stability 0.1).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Gate (the test set, sandboxed) and publish: refused unless the rate is above
    the threshold."""
    cfg = settings(ctx)
    threshold = cfg.publish_threshold if threshold is None else threshold
    with _market(cfg, weights) as market:
        spec = resolve_agent(agent, market.store)
        names = [default_model(spec, model), *(m for m in models or [] if m != model)]

        async def go() -> Any:
            async with contextlib.AsyncExitStack() as stack:
                runners = [await stack.enter_async_context(_open(cfg, n)) for n in names]
                return await market.publish(
                    spec, runners, threshold=threshold, seeds=range(repeats)
                )

        result = asyncio.run(go())
    if as_json:
        print_json(
            {
                "agent": result.record.model_dump(mode="json", exclude={"spec"}),
                "reports": [
                    r.summary.model_dump(mode="json") | {"model": r.model} for r in result.reports
                ],
                "score": result.score.to_dict(),
            }
        )
        return
    console.print(
        f"published {spec.name} {spec.version} ({spec.short_id}): success rate "
        f"{result.success_rate:.3f} > {threshold:g}; score {result.score.total:.3f}",
        highlight=False,
    )
    console.print(_reports_table(result.reports))
    console.print(_score_table(result.score.to_dict()))


def _score_table(score: dict[str, Any]) -> Table:
    table = Table(
        title=f"score {score['total']:.3f}" + (f" ({score['note']})" if score.get("note") else "")
    )
    for col in ("component", "value", "weight", "effective"):
        table.add_column(col, justify="left" if col == "component" else "right")
    for name, comp in score["components"].items():
        if name.startswith("_"):
            continue
        table.add_row(
            name,
            "missing" if comp["value"] is None else f"{comp['value']:.3f}",
            fmt(score["weights"].get(name), ".2f"),
            fmt(comp.get("effective_weight"), ".3f"),
        )
    return table


@app.command()
def search(
    ctx: typer.Context,
    text: str = typer.Argument(..., help="What you need done, in your words."),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="Minimal cosine similarity (default: search_threshold, 0.25).",
    ),
    top: int = typer.Option(10, "--top", min=1, help="How many agents."),
    hub: str | None = typer.Option(None, "--hub", help="Search this hub instead of here."),
    network: bool = typer.Option(
        False, "--network", help="Ask every hub the DHT names for the query's topics."
    ),
    bootstrap: list[str] = typer.Option([], "--bootstrap", help="With --network: HOST:PORT."),
    as_json: bool = JsonOption,
) -> None:
    """Find published agents: similarity above the threshold, ranked by
    0.4 x similarity + 0.6 x score (with --hub, the hub's own search; with
    --network, the hubs' merged answers, joining through --bootstrap or --hub)."""
    cfg = settings(ctx)
    threshold = cfg.search_threshold if threshold is None else threshold
    if network:
        from hainet.cli.net import search_network

        search_network(cfg, text, threshold, top, as_json, bootstrap=bootstrap, hub=hub)
        return
    if hub:
        from hainet.cli.agents_hub import search_hub

        search_hub(cfg, hub, text, threshold, top, as_json)
        return
    with _market(cfg) as market:
        hits = market.search(text, threshold=threshold, top=top)
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    if not hits:
        console.print(
            f"no published agent above similarity {threshold:g}; try a lower --threshold",
            highlight=False,
        )
        return
    table = Table()
    for col in ("agent", "version", "id", "similarity", "score", "rank", "purpose"):
        table.add_column(col, justify="right" if col in ("similarity", "score", "rank") else "left")
    for h in hits:
        table.add_row(
            h.name,
            h.version,
            h.agent_id[:12],
            f"{h.similarity:.3f}",
            f"{h.score:.3f}",
            f"{h.rank:.3f}",
            h.purpose,
        )
    console.print(table)


@app.command()
def rate(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Stored agent (or its spec file)."),
    stars: int = typer.Option(..., "--stars", min=1, max=5, help="1 to 5."),
    text: str = typer.Option("", "--text", help="Your review."),
    hub: str | None = typer.Option(None, "--hub", help="Rate the agent on this hub instead."),
) -> None:
    """Rate an agent version, signed with your key (one rating per key per version)."""
    cfg = settings(ctx)
    identity = Identity.load_or_create(cfg.home)
    if hub:
        from hainet.cli.agents_hub import rate_on_hub

        rate_on_hub(hub, agent, identity, stars, text)
        return
    with _market(cfg) as market:
        rec = _record(market, agent)
        payload = rating_payload(rec.id, identity.key_id, stars, text)
        market.rate(
            rec.id,
            identity.key_id,
            stars,
            text,
            identity.sign(RATING_DOMAIN, payload),
            identity.public_key_bytes(),
        )
    console.print(
        f"rated {rec.name} {rec.version} {stars}/5 as {identity.key_id[:12]}", highlight=False
    )


@app.command("list")
def list_agents(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="draft or published."),
    as_json: bool = JsonOption,
) -> None:
    """Stored agents, newest first."""
    if status not in (None, "draft", "published"):
        raise ValidationError(f"--status: draft or published, not {status!r}")
    with _market(settings(ctx)) as market:
        records = market.agents.list_agents(status=status)  # type: ignore[arg-type]
        totals = market.agents.totals()
    if as_json:
        print_json(
            [
                r.model_dump(mode="json", exclude={"spec"}) | {"score": totals.get(r.id)}
                for r in records
            ]
        )
        return
    table = Table()
    for col in ("agent", "version", "id", "status", "score", "by", "purpose"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for r in records:
        table.add_row(
            r.name,
            r.version,
            r.id[:12],
            r.status,
            fmt(totals.get(r.id), ".3f"),
            r.created_by,
            r.purpose,
        )
    console.print(table)


@app.command()
def show(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Stored id prefix, name[@version] or spec file."),
    hub: str | None = typer.Option(
        None, "--hub", help="Also show the network validation this hub reports for it."
    ),
    as_json: bool = JsonOption,
) -> None:
    """An agent: its record, latest score breakdown, reports, ratings, compatibility
    (with --hub, its community validation as that hub reports it)."""
    with _market(settings(ctx)) as market:
        rec = _record(market, agent)
        spec = market.spec_of(rec)
        score = market.score(rec.id)
        reports = market.agents.reports(rec.id)
        ratings = market.agents.ratings(rec.id)
        matrix = market.matrix(rec.id)
    cells = [c.model_dump(mode="json", by_alias=True) for c in matrix]
    data: dict[str, Any] = {
        "agent": rec.model_dump(mode="json", exclude={"spec"}),
        "purpose": spec.purpose,
        "capabilities": spec.capabilities,
        "score": score.model_dump(mode="json") if score else None,
        "reports": [
            {"model": r.model, "purpose": r.purpose, "success_rate": r.success_rate}
            | {"at": r.created_at.isoformat()}
            for r in reports
        ],
        "ratings": [
            {"key_id": r.key_id, "stars": r.stars, "text": r.text, "at": r.created_at.isoformat()}
            for r in ratings
        ],
        "compatibility": cells,
    }
    if hub:
        from hainet.hub.client import HubClient

        with HubClient(hub) as client:
            answer = client.network(rec.id)
        data["network"] = answer.get("verdict") if answer else None
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{rec.name}[/bold] {rec.version} ({rec.id[:12]}) {rec.status}, "
        f"by {rec.author or 'anonymous'} ({rec.created_by})",
        highlight=False,
    )
    console.print(spec.purpose, highlight=False, soft_wrap=True)
    if score:
        console.print(
            _score_table(
                {
                    "total": score.total,
                    "weights": score.weights,
                    "components": score.components,
                    "note": score.components.get("_note", ""),
                }
            )
        )
    for r in reports:
        console.print(
            f"report {r.purpose} on {r.model}: success {r.success_rate:.3f} "
            f"({r.created_at:%Y-%m-%d %H:%M})",
            highlight=False,
        )
    if ratings:
        mean = sum(r.stars for r in ratings) / len(ratings)
        console.print(f"rated {mean:.1f}/5 by {len(ratings)} key(s)", highlight=False)
    if matrix:
        console.print(_matrix_table(cells))
    if hub:
        net = data["network"]
        line = f"network ({hub}): " + (
            f"{net['status']}: {net['reason']}" if net else "not announced by this hub"
        )
        console.print(line, highlight=False, soft_wrap=True)
        for k in net["flagged"] if net else []:
            console.print(f"  flagged validator {k[:12]}", highlight=False)


def _matrix_table(cells: list[dict[str, Any]]) -> Table:
    table = Table(title="compatibility")
    for col in ("model", "status", "score", "passed", "seconds", "incompatibility", "message"):
        table.add_column(col, justify="right" if col in ("score", "passed", "seconds") else "left")
    for c in cells:
        table.add_row(
            c["model_name"],
            c["status"],
            fmt(c["score"], ".3f"),
            f"{c['passed']}/{c['total']}",
            fmt(c["seconds"], ".2f"),
            c["incompatibility"] or "",
            (c["message"] or "")[:80],
        )
    return table


@app.command()
def compat(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file, stored id prefix or name[@version]."),
    models: list[str] = typer.Option(..., "--models", "-m", help="Model configurations."),
    repeats: int = SeedsOption,
    as_json: bool = JsonOption,
) -> None:
    """Run the agent's tests on each model; store and show the compatibility matrix."""
    cfg = settings(ctx)
    with _market(cfg) as market:
        spec = resolve_agent(agent, market.store)
        sources: dict[str, RunnerSource] = {}
        for name in dict.fromkeys(models):
            sources[name] = _source(cfg, name)
        cells = asyncio.run(market.compat(spec, sources, seeds=range(repeats)))
    data = [c.model_dump(mode="json", by_alias=True) for c in cells]
    if as_json:
        print_json(data)
    else:
        console.print(f"{spec.name} {spec.version} ({spec.short_id})", highlight=False)
        console.print(_matrix_table(data))


def _source(cfg: Settings, name: str) -> RunnerSource:
    # Resolving the name is part of loading: an unknown model or a missing file is
    # that configuration's load failure, not the end of the whole matrix.
    def factory() -> contextlib.AbstractAsyncContextManager[AgentRunner]:
        return _open(cfg, name)

    return factory


@app.command("recommend-model")
def recommend_model(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Stored id prefix, name[@version] or spec file."),
    top: int = typer.Option(3, "--top", min=1, help="How many models."),
    as_json: bool = JsonOption,
) -> None:
    """The best models for an agent, from its stored compatibility matrix."""
    with _market(settings(ctx)) as market:
        rec = _record(market, agent)
        best = market.recommend_model(rec.id, top=top)
    if as_json:
        print_json({"agent_id": rec.id, "recommended": best})
        return
    if not best:
        raise HainetError(
            f"no compatible model measured for {rec.name} {rec.version}",
            hint=f"hainet agents compat {rec.name} --models A B",
        )
    for i, b in enumerate(best, 1):
        console.print(
            f"{i}. {b['model']}: success {fmt(b['score'], '.3f')} ({b['passed']}/{b['total']}), "
            f"{b['seconds']:.2f} s",
            highlight=False,
        )
