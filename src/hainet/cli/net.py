"""``hainet net peers / find agent / find model``: ask the network (the hubs' DHT).

Each command starts a short-lived DHT node with your identity, joins through
``--bootstrap HOST:PORT`` (else ``dht_bootstrap`` in config.toml, else the DHT
address a hub's signed ``/.well-known/hainet-hub`` advertises: ``--hub`` or the
first of ``hubs``), asks, and stops it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.table import Table

from hainet.cli._common import JsonOption, console, fmt, print_json, settings
from hainet.config import Settings
from hainet.errors import ConfigError

__all__ = [
    "BootstrapOption",
    "app",
    "bootstrap_peers",
    "network_models",
    "on_network",
    "search_network",
]

T = TypeVar("T")

app = typer.Typer(help="Ask the network of hubs (its DHT).", no_args_is_help=True)
find_app = typer.Typer(help="Which hubs hold an agent or a model's results.", no_args_is_help=True)
app.add_typer(find_app, name="find")

BootstrapOption = typer.Option(
    [], "--bootstrap", help="HOST:PORT of a DHT node; repeatable [dht_bootstrap, or --hub's]."
)
NetHubOption = typer.Option(
    None, "--hub", help="Join through this hub's DHT address [the first of hubs]."
)


def bootstrap_peers(cfg: Settings, given: Sequence[str], hub: str | None) -> list[tuple[str, int]]:
    """Where to join: the flags, else config.toml, else a hub's advertised DHT address."""
    from hainet.hub.discovery import hello_dht
    from hainet.hub.network import parse_address

    listed = list(given) or list(cfg.dht_bootstrap)
    if listed:
        return [parse_address(b) for b in listed]
    url = hub or (cfg.hubs[0] if cfg.hubs else None)
    if url is None:
        raise ConfigError(
            "no DHT node to join through",
            hint="pass --bootstrap HOST:PORT or --hub URL, or set dht_bootstrap or hubs "
            "in config.toml",
        )
    return [hello_dht(url)]


def on_network(
    cfg: Settings, given: Sequence[str], hub: str | None, work: Callable[[Any], Awaitable[T]]
) -> T:
    """Run ``work(node)`` with a short-lived DHT node of the user's identity."""
    import asyncio

    from hainet.hub.discovery import with_node
    from hainet.hub.serve import dht_config
    from hainet.net.identity import Identity

    peers = bootstrap_peers(cfg, given, hub)
    identity = Identity.load_or_create(cfg.home)
    return asyncio.run(with_node(identity, peers, work, config=dht_config(cfg)))


@app.command()
def peers(
    ctx: typer.Context,
    bootstrap: list[str] = BootstrapOption,
    hub: str | None = NetHubOption,
    as_json: bool = JsonOption,
) -> None:
    """The DHT nodes found from here: the routing table after a lookup of this node's
    own neighbourhood, with each one's key id, node id and UDP address."""
    cfg = settings(ctx)

    async def work(node: Any) -> list[dict[str, Any]]:
        found = {p.key_id: p for p in await node.closest(node.node_id, 32)}
        for p in node.peers():
            found.setdefault(p.key_id, p)
        me = node.identity.key_id
        return [
            {"key_id": p.key_id, "node_id": p.node_id.hex(), "host": p.host, "port": p.port}
            for p in sorted(found.values(), key=lambda p: p.key_id)
            if p.key_id != me
        ]

    rows = on_network(cfg, bootstrap, hub, work)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no peers found", highlight=False)
        raise typer.Exit(1)
    table = Table(title=f"{len(rows)} peers")
    for col in ("key id", "node id", "address"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["key_id"][:16], r["node_id"][:16], f"{r['host']}:{r['port']}")
    console.print(table)


@find_app.command("agent")
def find_agent(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="A spec id (64 hex) or an agent name."),
    bootstrap: list[str] = BootstrapOption,
    hub: str | None = NetHubOption,
    as_json: bool = JsonOption,
) -> None:
    """The hubs that hold an agent (``agent:{id}`` or ``name:{name}`` in the DHT)."""
    from hainet.hub.discovery import agent_key, find

    cfg = settings(ctx)
    key = agent_key(ref)

    async def work(node: Any) -> list[dict[str, Any]]:
        return [p.to_dict() for p in await find(node, key)]

    rows = on_network(cfg, bootstrap, hub, work)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(f"no hub on the network announces {key}", highlight=False)
        raise typer.Exit(1)
    table = Table(title=key)
    for col in ("hub key id", "url", "spec id"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["hub"][:16], r["url"], (r["spec_id"] or "-")[:16])
    console.print(table)


@find_app.command("model")
def find_model(
    ctx: typer.Context,
    sha: str = typer.Argument(..., help="The model's GGUF sha256."),
    bootstrap: list[str] = BootstrapOption,
    hub: str | None = NetHubOption,
    as_json: bool = JsonOption,
) -> None:
    """The hubs that hold shared results of a model (``model:{sha}``), and those
    results: every signed share fetched from each hub and verified here, one per
    (signer, run), medians per hardware class; network-tested at 5 distinct signers."""
    from hainet.hub.discovery import find, pool_model

    cfg = settings(ctx)
    sha = sha.strip().lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ConfigError(f"model {sha[:80]!r}: expected a GGUF sha256 (64 hex digits)")

    async def work(node: Any) -> dict[str, Any]:
        pointers = await find(node, f"model:{sha}")
        answer = await pool_model(node, sha)
        return {
            "pointers": [p.to_dict() for p in pointers],
            "models": [m.to_dict() for m in answer.pool.models()],
            "dropped": [{"hub": d.hub, "reason": d.reason} for d in answer.pool.dropped],
            "failed": answer.failed,
        }

    out = on_network(cfg, bootstrap, hub, work)
    if as_json:
        print_json(out)
        return
    if not out["pointers"]:
        console.print(f"no hub on the network announces results of {sha[:12]}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"{len(out['pointers'])} hubs hold results of {sha[:12]}: "
        + ", ".join(p["url"] for p in out["pointers"]),
        highlight=False,
        soft_wrap=True,
    )
    for m in out["models"]:
        tested = "network-tested" if m["network_tested"] else "not network-tested yet"
        console.print(
            f"{', '.join(m['model_names'])} {m['quantization'] or '-'}: {m['signers']} "
            f"signers, {tested}",
            highlight=False,
        )
        table = Table()
        for col in ("hardware class", "signers", "runs", "decode tok/s", "ttft s"):
            table.add_column(col)
        for g in m["classes"]:
            decode, ttft = g["figures"].get("decode_tps"), g["figures"].get("ttft_s")
            table.add_row(
                g["hardware_class"],
                str(g["signers"]),
                str(g["runs"]),
                fmt(decode and decode["median"], ".1f"),
                fmt(ttft and ttft["median"], ".3f"),
            )
        console.print(table)
    for d in out["dropped"][:5]:
        console.print(f"dropped from {d['hub']}: {d['reason']}", highlight=False, soft_wrap=True)
    if len(out["dropped"]) > 5:
        console.print(f"... {len(out['dropped']) - 5} more dropped", highlight=False)
    for url, why in out["failed"].items():
        console.print(f"no answer from {url}: {why}", highlight=False, soft_wrap=True)


def search_network(
    cfg: Settings,
    text: str,
    threshold: float,
    top: int,
    as_json: bool,
    *,
    bootstrap: Sequence[str] = (),
    hub: str | None = None,
) -> None:
    """``agents search --network``: the hubs the DHT names for the query's topics,
    asked in turn; their hits merged, one per spec id, with the hubs that hold it."""
    from hainet.cli.agents_hub import _hits_table
    from hainet.hub.discovery import search_network as run_search

    async def work(node: Any) -> Any:
        return await run_search(node, text, threshold=threshold, top=top)

    found = on_network(cfg, bootstrap, hub, work)
    if as_json:
        print_json({"items": found.hits, "hubs": found.hubs, "failed": found.failed})
        return
    for url, why in found.failed.items():
        console.print(f"no answer from {url}: {why}", highlight=False, soft_wrap=True)
    if not found.hits:
        console.print(
            f"no agent above similarity {threshold:g} on the {len(found.hubs)} hubs the "
            "network named",
            highlight=False,
        )
        return
    console.print(_hits_table(found.hits))
    for h in found.hits:
        console.print(f"{h['name']} {h['id'][:12]}: {', '.join(h['hubs'])}", highlight=False)


def network_models(
    cfg: Settings, bootstrap: Sequence[str], hub: str | None, *, skip: Sequence[str] = ()
) -> list[Any]:
    """``select --network``'s candidates: the network-tested models of every hub
    reachable through the DHT (and ``hubs`` in config.toml), each with the medians of
    the hardware class nearest this machine's; ``skip``: sha256s measured here."""
    from hainet.bench.profile import hardware_fingerprint
    from hainet.hub.discovery import network_candidates, pool_network
    from hainet.net.shares import hardware_class
    from hainet.store.records import Hardware

    mine = hardware_class(Hardware.model_validate(hardware_fingerprint()))

    async def work(node: Any) -> Any:
        return await pool_network(node, extra_hubs=cfg.hubs)

    answer = on_network(cfg, bootstrap, hub, work)
    return network_candidates(answer.pool.models(), mine, skip=skip)
