"""``hainet runs``: list and show stored runs."""

from __future__ import annotations

import typer
from rich.table import Table

from hainet.cli._common import JsonOption, console, fmt, open_store, print_json, settings
from hainet.store import GroupScore, Run

app = typer.Typer(help="Stored runs.", no_args_is_help=True)


def runs_table(runs: list[Run], title: str | None = None) -> Table:
    table = Table(title=title)
    for col in (
        "run",
        "when",
        "status",
        "model",
        "suite",
        "score",
        "cases",
        "errors",
        "ttft s",
        "prefill t/s",
        "decode t/s",
        "load s",
        "peak MiB",
    ):
        left = col in ("run", "when", "status", "model", "suite")
        table.add_column(col, justify="left" if left else "right", no_wrap=left)
    for run in runs:
        s = run.summary
        suites: dict[str, GroupScore | None] = dict(s.suites) or {"-": None}
        for name, info in suites.items():
            table.add_row(
                run.id[:8],
                run.created_at.strftime("%Y-%m-%d %H:%M"),
                run.status,
                run.model_name,
                name,
                fmt(info.score if info else None, ".3f"),
                str(info.cases) if info else "-",
                str(info.errors) if info else "-",
                fmt(s.ttft_s, ".3f"),
                fmt(s.prefill_tps, ".1f"),
                fmt(s.decode_tps, ".1f"),
                fmt(run.load_s, ".2f"),
                fmt(run.peak_rss_mb, ".0f"),
            )
    return table


def print_profile(run: Run) -> None:
    caps = run.summary.capabilities
    if caps:
        console.print(
            "capabilities: " + ", ".join(f"{k} {fmt(v.score, '.2f')}" for k, v in caps.items())
        )
    if run.summary.categories is not None:  # profiled: the run completed
        console.print(
            f"tier: {run.summary.tier or 'unknown'}; categories: "
            f"{', '.join(run.summary.categories) or 'none'}"
        )


@app.command("list")
def list_runs(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many, newest first."),
    as_json: bool = JsonOption,
) -> None:
    """List stored runs, newest first."""
    cfg = settings(ctx)
    with open_store(cfg) as store:
        runs = store.list_runs(limit=limit)
        if as_json:
            print_json([r.model_dump(mode="json") for r in runs])
        elif not runs:
            console.print(f"no runs in {store.where}; try `hainet bench --quick`")
        else:
            console.print(runs_table(runs))


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id or a unique prefix of it."),
    as_json: bool = JsonOption,
) -> None:
    """Show one run with its per-case results."""
    cfg = settings(ctx)
    with open_store(cfg) as store:
        run = store.get_run(run_id, with_results=True)
    if as_json:
        print_json(run.model_dump(mode="json"))
        return
    console.print(runs_table([run], title=f"run {run.id}"))
    if run.error:
        console.print(f"[red]error:[/red] {run.error}")
    print_profile(run)
    table = Table(title="cases")
    for col in ("suite", "case", "score", "output", "explanation / error", "ttft s", "decode t/s"):
        table.add_column(col)
    for r in run.results or []:
        table.add_row(
            r.suite,
            r.case_id,
            fmt(r.score, ".2f"),
            repr(r.output[:60]),
            (r.error or r.explanation)[:70],
            fmt(r.ttft_s, ".3f"),
            fmt(r.decode_tps, ".1f"),
        )
    console.print(table)
    console.print(
        f"hardware: {run.hardware.cpu}, {run.hardware.cores_logical} cores, "
        f"{run.hardware.ram_mb} MiB RAM; versions: "
        + ", ".join(f"{k} {v}" for k, v in run.versions.items())
    )
