"""``hainet bench``: run suites on models and store the runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hainet.backends import Catalog
from hainet.bench import BenchOptions, run_bench
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
from hainet.store import CaseResult
from hainet.types import ModelSpec


def bench(
    models: list[str] = typer.Option(
        None, "--models", "-m", help="Model names or GGUF paths [the default model]."
    ),
    suites: list[str] = typer.Option(
        ["reasoning"], "--suites", "-s", help="Suites to run; 'all' for the eight capabilities."
    ),
    quick: bool = typer.Option(False, "--quick", help="Only each suite's quick subset."),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="For every case [each suite's own, mostly 0]."
    ),
    judge: str | None = typer.Option(
        None, "--judge", help="Model that judges open-ended answers (judge scorer)."
    ),
    unsafe_no_sandbox: bool = typer.Option(
        False, "--unsafe-no-sandbox", help="Run model-written code without namespaces/seccomp."
    ),
    seed: int = typer.Option(0, "--seed"),
    max_concurrent: int = typer.Option(
        1, "--max-concurrent", min=1, help="Requests in flight per model."
    ),
    n_threads: int | None = typer.Option(
        None, "--threads", envvar="HAINET_N_THREADS", min=1, help="Threads for llama.cpp."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Also write the runs as JSON."),
    as_json: bool = JsonOption,
) -> None:
    """Run capability suites on models; store speed, memory and scores."""
    cfg = settings(n_threads=n_threads)
    catalog = Catalog(cfg)
    names = models or [cfg.default_model]
    options = BenchOptions(
        suites=tuple(suites),
        quick=quick,
        temperature=temperature,
        seed=seed,
        max_concurrent=max_concurrent,
        judge=judge,
        unsafe_no_sandbox=unsafe_no_sandbox,
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
        task = bar.add_task("starting", total=None)

        def on_model(spec: ModelSpec, total: int) -> None:
            bar.update(task, description=f"loading {spec.name}", total=total, completed=0)

        def on_loaded(spec: ModelSpec, seconds: float) -> None:
            bar.update(task, description=f"{spec.name} (loaded in {seconds:.1f} s)")

        def on_case(result: CaseResult) -> None:
            bar.advance(task)

        try:
            runs = asyncio.run(
                run_bench(
                    catalog, names, store, options, BenchProgress(on_model, on_loaded, on_case)
                )
            )
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(
                "[yellow]interrupted[/yellow]: finished cases are stored and the"
                " run is marked interrupted (hainet runs list)",
                highlight=False,
            )
            raise typer.Exit(130) from None
        where = store.where
    data = [r.model_dump(mode="json") for r in runs]
    if output is not None:
        write_json(output, data)
    if as_json:
        print_json(data)
        return
    console.print(runs_table(runs, title="hainet bench"))
    for run in runs:
        print_profile(run)
        console.print(f"stored run [bold]{run.id[:8]}[/bold] ({run.id}) in {where}")
    if output is not None:
        console.print(f"wrote {output}")
    console.print("see one run: hainet runs show ID")
