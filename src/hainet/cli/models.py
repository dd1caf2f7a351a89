"""``hainet models``: list known models, add one."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.table import Table

from hainet.backends import Catalog, backend_class, backend_for
from hainet.bench import profiles, tier
from hainet.cli._common import JsonOption, console, err_console, open_store, print_json, settings
from hainet.config import Settings, add_model_to_config
from hainet.errors import ConfigError, StoreError
from hainet.types import ModelSpec

app = typer.Typer(help="Known models: the bundled one and yours.", invoke_without_command=True)


@app.callback()
def models(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List known models (the default when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = settings(ctx)
    catalog = Catalog(cfg)
    specs = list(catalog)
    measured = _measured_categories(cfg)
    if as_json:
        print_json(
            [
                {
                    **s.model_dump(mode="json", exclude={"api_key"}),
                    "tier": tier(s.parameters),
                    "categories": measured.get(s.name, []),
                }
                for s in specs
            ]
        )
        return
    table = Table()
    for col in (
        "name",
        "backend",
        "mode",
        "where",
        "quant",
        "params",
        "tier",
        "size MiB",
        "categories (measured)",
    ):
        table.add_column(col)
    for s in specs:
        where = s.path or (f"{s.url} ({s.model})" if s.url else "bundled (PyPI package)")
        table.add_row(
            s.name,
            s.backend,
            s.mode,
            where,
            s.quantization or "-",
            f"{s.parameters / 1e6:.0f}M" if s.parameters else "-",
            tier(s.parameters) or "-",
            f"{s.file_size / 2**20:.0f}" if s.file_size else "-",
            ", ".join(measured.get(s.name, [])) or "-",
        )
    console.print(table)


def _measured_categories(cfg: Settings) -> dict[str, list[str]]:
    """Union of the categories each model earned in any configuration stored."""
    try:
        with open_store(cfg) as store:
            runs = store.list_runs(limit=10_000)
    except StoreError as exc:
        err_console.print(f"[yellow]no measured categories:[/yellow] {exc}", highlight=False)
        return {}
    found: dict[str, list[str]] = {}
    for p in profiles(runs):
        cats = found.setdefault(p.model, [])
        cats.extend(c for c in p.categories if c not in cats)
    return found


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name to refer to the model by."),
    path: Path | None = typer.Option(None, "--path", help="GGUF file (in-process backend)."),
    url: str | None = typer.Option(None, "--url", help="Base URL of an OpenAI-compatible server."),
    model: str | None = typer.Option(None, "--model", help="Model name the server serves."),
    mode: str = typer.Option("prompt", "--mode", help="'prompt' (base models) or 'chat'."),
    chat_format: str | None = typer.Option(None, "--chat-format", help="llama.cpp chat format."),
    quantization: str | None = typer.Option(None, "--quantization"),
    family: str | None = typer.Option(None, "--family"),
) -> None:
    """Add a model (a GGUF path, or a server URL and model name) to config.toml."""
    if (path is None) == (url is None):
        raise ConfigError("give exactly one of --path (a GGUF file) or --url (a server)")
    cfg = settings(ctx)
    catalog = Catalog(cfg)
    if name in catalog.names():
        raise ConfigError(f"a model named {name!r} already exists")
    table: dict[str, object] = {
        "mode": mode,
        "chat_format": chat_format,
        "quantization": quantization,
        "family": family,
    }
    if path is not None:
        path = path.expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}")
        # The backends say which of them takes a file, and which a server.
        table.update(backend=backend_for("path"), path=str(path), file_size=path.stat().st_size)
    else:
        if not model:
            raise ConfigError("--url needs --model: the name the server serves")
        table.update(backend=backend_for("url"), url=url, model=model)
    try:  # validate before writing anything
        spec = ModelSpec(name=name, **{k: v for k, v in table.items() if v is not None})  # type: ignore[arg-type]
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    backend_class(spec.backend).check_spec(spec)
    where = add_model_to_config(cfg.home, name, table)
    console.print(f"added model {name!r} to {where}")
