"""``hainet agents push / pull`` and ``agents search --hub``: agents on a hub.

A thin edge over :class:`hainet.hub.HubClient`; the hub is ``--hub URL``, else the
first of ``hubs = [...]`` in config.toml.
"""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from hainet.agents.marketplace import RATING_DOMAIN, Marketplace, rating_payload
from hainet.agents.spec import AgentSpec
from hainet.agents.usecases import resolve_agent
from hainet.cli._common import JsonOption, console, open_store, print_json, settings
from hainet.config import Settings
from hainet.errors import ConfigError
from hainet.hub.client import HubClient, HubError
from hainet.net.identity import Identity
from hainet.store.ledger import Ledger

HubOption = typer.Option(None, "--hub", help="Hub URL [the first of hubs in config.toml].")


def hub_url(cfg: Settings, given: str | None) -> str:
    if given:
        return given
    if cfg.hubs:
        return cfg.hubs[0]
    raise ConfigError("no hub given", hint="pass --hub URL or set hubs = [URL] in config.toml")


def push(
    ctx: typer.Context,
    agent: str = typer.Argument(..., help="Spec file, stored id prefix or name[@version]."),
    hub: str | None = HubOption,
    wait: float = typer.Option(
        0.0, "--wait", min=0.0, help="Seconds to wait for the hub's gate (0: do not wait)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Sign an agent with your key and publish it to a hub, whose own gate lists it.

    A spec without an author gets your key id as author: a new spec (a new content
    hash, its lineage the original), stored here as a draft so that the id printed
    can be shown and run.  A spec naming another author is refused."""
    cfg = settings(ctx)
    url = hub_url(cfg, hub)
    identity = Identity.load_or_create(cfg.home)
    with open_store(cfg) as store:
        original = resolve_agent(agent, store)
    spec = authored(original, identity.key_id)
    with HubClient(url) as client:
        answer = client.push(spec, identity)  # another author's spec is refused here
        with open_store(cfg) as store:  # the hub took it: keep what it holds here too
            market = Marketplace(store)
            if spec.id != original.id:
                market.add(original)
            market.add(spec)
        deadline = time.monotonic() + wait
        while wait and answer["state"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            answer = client.status(spec.id)
    if as_json:
        print_json(answer)
        return
    state = answer["state"]
    line = f"pushed {spec.name} {spec.version} ({spec.short_id}) to {url} as {identity.short_id}: "
    if spec.id != original.id:
        line = (
            f"signed {spec.name} {spec.version} as your own: {spec.short_id} (from "
            f"{original.short_id}, stored here as a draft)\n{line}"
        )
    line += state
    if state != "pending" and answer.get("success_rate") is not None:
        line += f", gate success rate {answer['success_rate']:.3f}"
    if answer.get("message"):
        line += f": {answer['message']}"
    console.print(line, highlight=False, soft_wrap=True)
    if state == "refused":
        raise typer.Exit(1)


def authored(spec: AgentSpec, key_id: str) -> AgentSpec:
    """``spec`` with ``key_id`` as its author: itself if it has an author, else a new
    spec whose lineage is ``spec`` (the author is part of the content hash)."""
    if spec.author is not None:
        return spec
    return spec.derive(author=key_id, lineage=[spec.id])


def pull(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME (newest listed), NAME@VERSION or ID."),
    hub: str | None = HubOption,
) -> None:
    """Fetch an agent, verify its signature and content hash, and store it as a local
    draft with where it came from (gate it locally before publishing it here)."""
    cfg = settings(ctx)
    url = hub_url(cfg, hub)
    with HubClient(url) as client:
        pulled = client.pull(ref)  # every check happens before anything is stored
    with open_store(cfg) as store:
        rec = Marketplace(store).add(pulled.spec)
        Ledger(store).add_provenance(rec.id, hub=url, signer=pulled.signer, record=pulled.record)
    console.print(
        f"pulled {rec.name} {rec.version} ({rec.id[:12]}) from {url}, signed by "
        f"{pulled.signer[:12]}; stored as a {rec.status}",
        highlight=False,
    )


def rate_on_hub(url: str, ref: str, identity: Identity, stars: int, text: str) -> None:
    """Rate a listed agent on a hub: a signed agent.rating record."""
    with HubClient(url) as client:
        agent_id = client.resolve(ref)
        inner = identity.sign(RATING_DOMAIN, rating_payload(agent_id, identity.key_id, stars, text))
        client.rate(agent_id, identity, stars, text, inner)
    console.print(
        f"rated {ref} ({agent_id[:12]}) {stars}/5 on {url} as {identity.short_id}",
        highlight=False,
    )


def search_hub(
    cfg: Settings, url: str, text: str, threshold: float, top: int, as_json: bool
) -> None:
    with HubClient(url) as client:
        hits = client.search(text, top=top, threshold=threshold)
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print(f"no agent on {url} above similarity {threshold:g}", highlight=False)
        return
    console.print(_hits_table(hits))


def _hits_table(hits: list[dict[str, Any]]) -> Table:
    table = Table()
    for col in ("agent", "version", "id", "similarity", "score", "rank", "author", "purpose"):
        table.add_column(col, justify="right" if col in ("similarity", "score", "rank") else "left")
    for h in hits:
        table.add_row(
            h["name"],
            h["version"],
            h["id"][:12],
            f"{h['similarity']:.3f}",
            f"{h['score'] or 0:.3f}",
            f"{h['rank']:.3f}",
            h["author"][:12],
            h["purpose"],
        )
    return table


__all__ = ["HubError", "authored", "pull", "push", "rate_on_hub", "search_hub"]
