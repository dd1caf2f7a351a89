"""``hainet report``: charts, analysis.json and one HTML file from stored runs."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError as PydanticValidationError

from hainet.cli._common import console, open_store, settings
from hainet.errors import ConfigError
from hainet.inputs import RESULTS_LIMITS, load_file
from hainet.report import build_report
from hainet.store import USABLE_STATUSES, Run

# Every completed run the store holds; far more than any real store has.
_ALL = 1_000_000


def _runs_from_file(path: Path) -> list[Run]:
    """Runs of a ``hainet bench --output`` file: ``{"sweep": {...}, "runs": [...]}``."""
    data = load_file(path, error=ConfigError, limits=RESULTS_LIMITS, kind=".json")
    try:
        items = data["runs"] if isinstance(data, dict) else data
        return [Run.model_validate(item) for item in items]
    except (ValueError, KeyError, TypeError, PydanticValidationError) as exc:
        raise ConfigError(
            f"cannot read runs from {path}: {str(exc).splitlines()[0]}",
            hint="expected the JSON `hainet bench --output FILE` writes",
        ) from exc


def _checked(chosen: list[Run]) -> list[Run]:
    if not any(r.status in USABLE_STATUSES for r in chosen):
        raise ConfigError("no completed runs to report on", hint="run `hainet bench` first")
    return chosen


def report(
    ctx: typer.Context,
    runs: list[str] = typer.Option(
        [], "--runs", help="Run ids (or unique prefixes) [every completed run]."
    ),
    results: Path | None = typer.Option(
        None, "--results", help="Read runs from a `hainet bench --output` JSON file."
    ),
    output_dir: Path = typer.Option(
        Path("hainet-report"), "--output-dir", "-o", help="Where to write the report."
    ),
) -> None:
    """Write charts (PNG), analysis.json and a self-contained report.html."""
    if runs and results is not None:
        raise ConfigError("give --runs or --results, not both")
    if results is not None:
        paths = build_report(_checked(_runs_from_file(results)), output_dir)
    else:
        with open_store(settings(ctx)) as store:
            if runs:
                chosen = [store.get_run(r) for r in runs]
            else:
                chosen = store.list_runs(limit=_ALL, status="completed")
            # The store's self-improvement runs too: score over generations, lineage.
            paths = build_report(_checked(chosen), output_dir, hyper_store=store)
    console.print(f"report:   {paths.html}")
    console.print(f"analysis: {paths.analysis}")
    for name, path in paths.charts.items():
        note = f"  ({paths.skipped[name]})" if name in paths.skipped else ""
        console.print(f"chart:    {path}{note}", highlight=False)
