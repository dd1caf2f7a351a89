"""``hainet results share RUN... --hub URL [--dry-run]``: share bench runs' summaries."""

from __future__ import annotations

import json

import typer

from hainet.cli._common import console, open_store, settings
from hainet.cli.agents_hub import HubOption, hub_url
from hainet.hub.client import HubClient
from hainet.net.identity import Identity
from hainet.net.records import record_json
from hainet.net.shares import share_payload

app = typer.Typer(help="Share bench results with a hub.", no_args_is_help=True)


@app.command()
def share(
    ctx: typer.Context,
    runs: list[str] = typer.Argument(..., help="Run ids (any unique prefix)."),
    hub: str | None = HubOption,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the signed records that would be sent; send nothing."
    ),
) -> None:
    """Send each completed run's summary, signed with your key: model sha256 (or served
    name), quantization, flash attention, temperature, capability scores, case counts,
    ttft/prefill/decode, peak memory, hardware class and day; never prompts, outputs,
    paths, host or user names."""
    cfg = settings(ctx)
    identity = Identity.load_or_create(cfg.home)
    with open_store(cfg) as store:
        payloads = [share_payload(store.get_run(store.resolve_id(r))) for r in runs]
    records = [HubClient.share_record(p, identity) for p in payloads]
    if dry_run:
        for rec in records:
            typer.echo(json.dumps(json.loads(record_json(rec)), indent=2, sort_keys=True))
        return
    url = hub_url(cfg, hub)
    with HubClient(url) as client:
        for rec in records:
            out = client.share(rec)
            console.print(
                f"shared {rec.payload['model_name']} ({out['hardware_class']}) to {url} "
                f"as {identity.short_id}",
                highlight=False,
                soft_wrap=True,
            )
