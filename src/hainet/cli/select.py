"""``hainet select``: the best stored configuration for a task, an agent or free text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hainet.cli._common import JsonOption, console, fmt, open_store, print_json, settings
from hainet.select import load_analysis
from hainet.select import select as run_select


def _config(entry: dict[str, Any]) -> str:
    c = entry["recommended_config"]
    temp = "-" if c["temperature"] is None else f"{c['temperature']:g}"
    flash = "on" if c["flash_attention"] else "off"
    return f"quant {c['quantization'] or '-'}, flash {flash}, temp {temp}"


def select(
    ctx: typer.Context,
    task: str | None = typer.Option(None, "--task", help="Task type, e.g. tool_use."),
    agent: str | None = typer.Option(None, "--agent", help="Agent type, e.g. assistant."),
    describe: str | None = typer.Option(None, "--describe", help="Free text of the task."),
    max_memory: float | None = typer.Option(
        None, "--max-memory", help="Exclude configurations whose peak RSS exceeds this (MB)."
    ),
    min_speed: float | None = typer.Option(
        None, "--min-speed", help="Exclude configurations decoding slower (tokens/s)."
    ),
    analysis: Path | None = typer.Option(
        None, "--analysis", help="Read profiles from an analysis JSON instead of the store."
    ),
    top: int = typer.Option(3, "--top", help="How many configurations to show."),
    network: bool = typer.Option(
        False,
        "--network",
        help="Also rank models the network tested (5+ signers) on hardware like yours.",
    ),
    bootstrap: list[str] = typer.Option([], "--bootstrap", help="With --network: HOST:PORT."),
    hub: str | None = typer.Option(None, "--hub", help="With --network: join via this hub."),
    as_json: bool = JsonOption,
) -> None:
    """Recommend a stored model configuration (reads measurements, runs nothing).
    With --network, models you never ran may be picked from the network's shared
    results; the reason says so."""
    cfg = settings(ctx)
    kwargs: dict[str, Any] = {
        "task": task,
        "agent": agent,
        "describe": describe,
        "max_memory_mb": max_memory,
        "min_speed": min_speed,
        "top": top,
        "home": cfg.home,
    }
    if network:
        from hainet.cli.net import network_models

        with open_store(cfg) as store:  # your own runs of a model beat the network's
            mine = {r.model.sha256 for r in store.list_runs(limit=1_000_000) if r.model.sha256}
        kwargs["network"] = network_models(cfg, bootstrap, hub, skip=sorted(mine))
    if analysis is not None:
        answer = run_select(load_analysis(analysis), **kwargs)
    else:
        with open_store(cfg) as store:
            answer = run_select(store, **kwargs)
    if as_json:
        print_json(answer)
        return
    console.print(
        f"[bold]{answer['selected_model']}[/bold] ({_config(answer)}), score {answer['score']:.3f}",
        highlight=False,
    )
    console.print(answer["reason"], highlight=False, soft_wrap=True)
    if answer.get("origin"):
        console.print("picked from the network's measurements, not run here", highlight=False)
    if answer.get("matches"):
        console.print(
            "matched: "
            + ", ".join(f"{m['name']} {m['confidence']:.2f}" for m in answer["matches"]),
            highlight=False,
        )
    if answer["alternatives"]:
        table = Table(title="alternatives")
        for col in ("model", "config", "score"):
            table.add_column(col)
        for alt in answer["alternatives"]:
            table.add_row(alt["selected_model"], _config(alt), fmt(alt["score"], ".3f"))
        console.print(table)
    console.print(
        f"considered {answer['considered']}, excluded {answer['excluded']} by constraints",
        highlight=False,
    )
