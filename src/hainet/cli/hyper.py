"""``hainet hyper``: self-improving agents with an archive and a human in the loop.

``run`` starts (or ``--resume``s) the loop; every generation is stored as it is made,
progress goes to stderr.  ``status``, ``audit`` read the store; ``approve``,
``reject``, ``rollback`` and ``stop`` change it from another terminal while a run is
going (the loop polls the store).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hainet.agents.spec import dump_spec
from hainet.cli._common import (
    JsonOption,
    console,
    err_console,
    fmt,
    open_store,
    print_json,
    settings,
)
from hainet.hyper.archive import spec_from_record, summarize
from hainet.hyper.session import HyperConfig, run_hyper
from hainet.store.hyper import GenerationStatus, HyperRun, HyperStore

__all__ = ["app"]

app = typer.Typer(help="Self-improving agents (HyperAgents).", no_args_is_help=True)

RunArg = typer.Argument(None, help="Hyper run id or prefix [the newest].")


def _progress(event: str, data: dict[str, Any]) -> None:
    if event == "generation":
        score = fmt(data.get("score"), ".3f")
        err_console.print(
            f"gen {data['number']:>3} {data.get('operator') or 'start':<14} "
            f"{data['status']:<16} val {score}  {data.get('reason', '')}",
            highlight=False,
            soft_wrap=True,
        )
    elif event == "pending":
        err_console.print(
            f"waiting: generation {data['generation'][:8]} ({data['operator']}, risk "
            f"{data['risk']}): `hainet hyper approve {data['generation'][:8]}` or `reject`",
            highlight=False,
        )
    elif event == "procedure":
        err_console.print(
            f"meta: procedure {data['status']}: {data.get('reason', '')}",
            highlight=False,
            soft_wrap=True,
        )
    elif event == "run":
        err_console.print(f"hyper run {data['run_id'][:8]} on {data['agent']}", highlight=False)
    elif event == "stopped":
        err_console.print("stopped (resume with --resume)", highlight=False)


def _summary(run: HyperRun) -> dict[str, Any]:
    return run.model_dump(mode="json")


@app.command("run")
def run(
    ctx: typer.Context,
    agent: str = typer.Option(..., "--agent", help="Spec file (YAML/JSON) or stored agent."),
    generations: int = typer.Option(10, "--generations", min=0, max=1000),
    trainset: Path = typer.Option(..., "--trainset", help="Cases to learn from."),
    valset: Path = typer.Option(..., "--valset", help="Cases that select (never learned from)."),
    testset: Path = typer.Option(..., "--testset", help="Cases for the final report only."),
    model: str | None = typer.Option(None, "--model", help="Model [spec's first, else bundled]."),
    risk_approval: str = typer.Option(
        "high",
        "--risk-approval",
        help="Changes at or above this risk wait for approval (low, medium, high, never).",
    ),
    candidates: int = typer.Option(2, "--candidates", min=1, max=16, help="Per step (start)."),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Runs per case per evaluation."),
    allow_tool: list[str] = typer.Option(
        [], "--allow-tool", help="Built-in tool a spec may add (repeat) [none]."
    ),
    max_memory_mb: float | None = typer.Option(None, "--max-memory-mb"),
    max_latency_s: float | None = typer.Option(None, "--max-latency-s"),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="Wall-time budget."),
    seed: int = typer.Option(0, "--seed"),
    resume: str | None = typer.Option(None, "--resume", help="Continue this run instead."),
    as_json: bool = JsonOption,
) -> None:
    """Improve an agent for N generations; the meta procedure improves itself too."""
    config = HyperConfig(
        agent=agent,
        trainset=trainset,
        valset=valset,
        testset=testset,
        generations=generations,
        model=model,
        risk_approval=risk_approval,  # type: ignore[arg-type]  # checked by HyperConfig
        candidates=candidates,
        repeats=repeats,
        allowed_tools=frozenset(allow_tool),
        max_memory_mb=max_memory_mb,
        max_latency_s=max_latency_s,
        max_seconds=max_seconds,
        seed=seed,
        resume=resume,
    )
    result = asyncio.run(run_hyper(config, settings(ctx), on_event=_progress))
    if as_json:
        print_json(_summary(result))
        return
    _print_run(result)


def _print_run(run: HyperRun) -> None:
    console.print(f"hyper run {run.id[:8]}: {run.status} ({run.agent_name})", highlight=False)
    final = run.final or {}
    for label in ("baseline", "final"):
        if label in final:
            f = final[label]
            lo, hi = f["test_ci"]
            console.print(
                f"{label:<9} gen {f['number']:>3}  val {fmt(f['valset'], '.3f')}  "
                f"test {f['test']:.3f} [{lo:.3f}, {hi:.3f}]",
                highlight=False,
            )
    if "test_delta" in final:
        d = final["test_delta"]
        console.print(
            f"test delta {d['delta']:+.3f}, {d['confidence']:.0%} CI "
            f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"
            + (" (significant)" if d["significant"] else " (within noise)"),
            highlight=False,
        )


@app.command("status")
def status(ctx: typer.Context, run_id: str | None = RunArg, as_json: bool = JsonOption) -> None:
    """A run, its generations and its meta-procedure versions."""
    with open_store(settings(ctx)) as store:
        hs = HyperStore(store)
        rid = hs.resolve_run(run_id)
        run, gens, procs = hs.get_run(rid), hs.generations(rid), hs.procedures(rid)
    if as_json:
        print_json(
            {
                "run": _summary(run),
                "generations": [summarize(g) for g in gens],
                "procedures": [
                    p.model_dump(mode="json", exclude={"procedure_json"}) for p in procs
                ],
            }
        )
        return
    _print_run(run)
    table = Table(title="generations")
    for col in ("gen", "id", "parent", "operator", "status", "risk", "val", "spec"):
        table.add_column(col, justify="right" if col in ("gen", "val") else "left")
    current = run.current_generation_id
    for g in gens:
        table.add_row(
            str(g.number),
            g.id[:8] + (" *" if g.id == current else ""),
            (g.parent_id or "-")[:8],
            g.operator or "-",
            g.status,
            g.risk,
            fmt(g.score, ".3f"),
            g.spec_id[:12],
        )
    console.print(table)
    for p in procs:
        console.print(
            f"procedure {p.procedure_id[:12]} at gen {p.at_generation}: {p.status}: {p.reason}",
            highlight=False,
            soft_wrap=True,
        )


def _decide(ctx: typer.Context, gen_id: str, status: GenerationStatus) -> None:
    with open_store(settings(ctx)) as store:
        gen = HyperStore(store).decide(
            gen_id,
            status,
            actor="human",
            require="pending_approval",
        )
    console.print(f"generation {gen.id[:8]} (gen {gen.number}): {gen.status}", highlight=False)


@app.command("approve")
def approve(
    ctx: typer.Context, gen_id: str = typer.Argument(..., help="Pending generation id or prefix.")
) -> None:
    """Approve a generation that waits for a human."""
    _decide(ctx, gen_id, "accepted")


@app.command("reject")
def reject(
    ctx: typer.Context, gen_id: str = typer.Argument(..., help="Pending generation id or prefix.")
) -> None:
    """Reject a generation that waits for a human."""
    _decide(ctx, gen_id, "rejected")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    gen_id: str = typer.Argument(..., help="Generation id or prefix to go back to."),
    out: Path | None = typer.Option(None, "--out", help="Also write its spec here."),
) -> None:
    """Make an earlier generation current again (its exact spec); later ones are undone."""
    with open_store(settings(ctx)) as store:
        gen = HyperStore(store).rollback(gen_id)
    spec = spec_from_record(gen)
    if out is not None:
        dump_spec(spec, out)
    console.print(
        f"run {gen.run_id[:8]} rolled back to generation {gen.number} ({gen.id[:8]}), "
        f"spec {spec.id[:12]}" + (f", written to {out}" if out else ""),
        highlight=False,
    )


@app.command("stop")
def stop(ctx: typer.Context, run_id: str | None = RunArg) -> None:
    """Ask a running loop to stop (it halts within one step)."""
    with open_store(settings(ctx)) as store:
        hs = HyperStore(store)
        rid = hs.resolve_run(run_id)
        hs.request_stop(rid)
    console.print(f"stop requested for hyper run {rid[:8]}", highlight=False)


@app.command("audit")
def audit(ctx: typer.Context, run_id: str | None = RunArg, as_json: bool = JsonOption) -> None:
    """The append-only log of every proposal and decision."""
    with open_store(settings(ctx)) as store:
        hs = HyperStore(store)
        entries = hs.audit(hs.resolve_run(run_id))
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(title="audit")
    for col in ("#", "at", "actor", "event", "generation", "details"):
        table.add_column(col)
    for e in entries:
        details = ", ".join(
            f"{k}={str(v)[:40]}" for k, v in e.details.items() if v not in ("", None)
        )
        table.add_row(
            str(e.id),
            e.at.strftime("%H:%M:%S"),
            e.actor,
            e.event,
            (e.generation_id or "-")[:8],
            details[:120],
        )
    console.print(table)
