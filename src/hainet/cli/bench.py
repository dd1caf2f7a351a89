"""``hainet bench``: run suites on models (a sweep of configurations) and store the runs."""

from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import Awaitable
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hainet.backends import Catalog
from hainet.bench import BenchOptions, SweepOutcome, SweepPlan, run_sweep
from hainet.bench import Progress as BenchProgress
from hainet.cli._common import (
    JsonOption,
    console,
    err_console,
    open_store,
    print_json,
    settings,
    write_json,
)
from hainet.cli.runs import print_profile, runs_table
from hainet.errors import ConfigError
from hainet.store import CaseResult, Run


def _flags(values: list[str] | None) -> tuple[bool | None, ...]:
    if not values:
        return (None,)
    out: list[bool | None] = []
    for value in values:
        v = value.strip().lower()
        if v in ("true", "on", "1", "yes"):
            out.append(True)
        elif v in ("false", "off", "0", "no"):
            out.append(False)
        else:
            raise ConfigError(f"--flash-attention takes true or false, not {value!r}")
    return tuple(dict.fromkeys(out))


async def _until_stopped(work: Awaitable[SweepOutcome]) -> SweepOutcome:
    """Run ``work``; Ctrl-C (SIGINT) and ``kill`` (SIGTERM) cancel it, so the running
    cell is marked interrupted and ``--resume`` can finish the sweep.

    Both go through ``loop.add_signal_handler``, installed before ``work`` first runs
    (``ensure_future`` only schedules it): the signal is written to the loop's wakeup
    fd and handled as a loop callback, whatever thread the kernel delivered it to and
    whatever the loop was waiting on.  The cancel reaches the case in flight, and the
    llama.cpp backend aborts the computation under it, so the process exits in well
    under a second instead of after the current answer.  A signal ignored when the
    process started (``hainet bench &`` from a script, ``nohup``) stays ignored, as
    the shell intended; Python itself leaves such a SIGINT ignored.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    stops = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) != signal.SIG_IGN]
    for sig in stops:
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    finally:
        for sig in stops:
            loop.remove_signal_handler(sig)


def bench(
    ctx: typer.Context,
    models: list[str] = typer.Option(
        None, "--models", "-m", help="Model names or GGUF paths [the default model]."
    ),
    suites: list[str] = typer.Option(
        ["reasoning"], "--suites", "-s", help="Suites to run; 'all' for the eight capabilities."
    ),
    quick: bool = typer.Option(False, "--quick", help="Only each suite's quick subset."),
    quantizations: list[str] = typer.Option(
        None,
        "--quantizations",
        "-q",
        help="Sweep quantizations: 4bit 8bit none, or llama.cpp types (q4_0, q5_k_m ...).",
    ),
    flash_attention: list[str] = typer.Option(
        None, "--flash-attention", help="Sweep flash attention: true false."
    ),
    temperatures: list[float] = typer.Option(
        None, "--temperatures", "-t", help="Sweep temperatures [each suite's own, mostly 0]."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="One temperature for every case."
    ),
    max_concurrent: int = typer.Option(
        1, "--max-concurrent", min=1, help="Configurations tested at once."
    ),
    server_concurrency: int = typer.Option(
        4, "--server-concurrency", min=1, help="Requests in flight per OpenAI-compatible server."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Finish the newest unfinished sweep with these options."
    ),
    resume_sweep: str | None = typer.Option(
        None, "--resume-sweep", help="Finish the sweep with this id (see `hainet runs sweeps`)."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Model that judges open-ended answers (judge scorer)."
    ),
    samples: int | None = typer.Option(
        None, "--samples", min=1, help="Completions per case, for pass@k [each suite's own]."
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="Spread configurations over Ray: local, auto or an address."
    ),
    unsafe_no_sandbox: bool = typer.Option(
        False, "--unsafe-no-sandbox", help="Run model-written code without namespaces/seccomp."
    ),
    prefix_reuse: bool = typer.Option(
        True,
        "--prefix-reuse/--no-prefix-reuse",
        help="In-process llama.cpp: evaluate each suite's shared prompt prefix once"
        " (answers order-independent; a few differ from a full prefill per case).",
    ),
    seed: int = typer.Option(0, "--seed"),
    n_threads: int | None = typer.Option(
        None, "--threads", envvar="HAINET_N_THREADS", min=1, help="Threads for llama.cpp."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the runs as JSON."),
    as_json: bool = JsonOption,
) -> None:
    """Run capability suites on models and configurations; store speed, memory and scores."""
    cfg = settings(ctx, n_threads=n_threads)
    catalog = Catalog(cfg)
    if temperatures and temperature is not None:
        raise ConfigError("give --temperature or --temperatures, not both")
    # NaN slips through `< 0` (and click's min=): refuse it by name, and infinities.
    for flag, values in (("--temperatures", temperatures or []), ("--temperature", [temperature])):
        bad = [t for t in values if t is not None and not (math.isfinite(t) and t >= 0)]
        if bad:
            raise ConfigError(f"{flag} must be finite and >= 0, got {bad[0]}")
    plan = SweepPlan(
        models=tuple(dict.fromkeys(models or [cfg.default_model])),
        quantizations=tuple(dict.fromkeys(quantizations)) if quantizations else (None,),
        flash_attention=_flags(flash_attention),
        temperatures=tuple(dict.fromkeys(temperatures)) if temperatures else (temperature,),
    )
    options = BenchOptions(
        suites=tuple(suites),
        quick=quick,
        temperature=temperature,
        seed=seed,
        max_concurrent=max_concurrent,
        judge=judge,
        unsafe_no_sandbox=unsafe_no_sandbox,
        samples=samples,
        ray=ray,
        server_concurrency=server_concurrency,
        prefix_reuse=prefix_reuse,
    )
    if unsafe_no_sandbox:
        err_console.print(
            "[bold red]WARNING: --unsafe-no-sandbox: model-written code runs without "
            "namespaces or seccomp[/bold red]",
            highlight=False,
        )
    with (
        open_store(cfg) as store,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as bar,
    ):
        task = bar.add_task("planning", total=None)

        def on_start(total: int, cells: int) -> None:
            bar.update(task, total=total, completed=0, description=f"{cells} cells")

        def on_status(text: str) -> None:
            bar.update(task, description=text)

        def on_run(run: Run, cases: int) -> None:
            bar.update(task, description=run.cell or run.model_name)

        def on_case(result: CaseResult) -> None:
            bar.advance(task)

        try:
            outcome = asyncio.run(
                _until_stopped(
                    run_sweep(
                        catalog,
                        plan,
                        store,
                        options,
                        BenchProgress(on_start, on_status, on_run, on_case),
                        resume=resume_sweep or resume,
                    )
                )
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            bar.stop()
            err_console.print(
                "[yellow]interrupted[/yellow]: finished cases are stored and the run is marked"
                " interrupted; finish with `hainet bench ... --resume`",
                highlight=False,
            )
            raise typer.Exit(130) from None
        where = store.where
    runs, sweep = outcome.runs, outcome.sweep
    data = [r.model_dump(mode="json") for r in runs]
    if output is not None:
        write_json(output, {"sweep": sweep.model_dump(mode="json"), "runs": data})
    if as_json:
        print_json({"sweep": sweep.model_dump(mode="json"), "runs": data})
    else:
        console.print(runs_table(runs, title="hainet bench"))
        for run in runs:
            if len(runs) == 1:
                print_profile(run)
            console.print(f"stored run [bold]{run.id[:8]}[/bold] ({run.cell}) in {where}")
        console.print(
            f"sweep {sweep.id[:8]}: {sweep.cells} cells, {sweep.loads} model loads, {sweep.status}"
        )
        if output is not None:
            console.print(f"wrote {output}")
        console.print("see one run: hainet runs show ID")
    if outcome.failed:
        for run in outcome.failed:
            err_console.print(f"[red]failed:[/red] {run.cell}: {run.error}", highlight=False)
        raise typer.Exit(1)
