"""What a user's machine asks the network (``hainet net``, ``agents search --network``,
``select --network``): pointers from the DHT, then the hubs they name over HTTP.

The DHT returns only records whose signature it verified (:mod:`hainet.net.dht`);
a pointer is also dropped here unless it is well formed, its ``url`` is http(s) and
the hub it names is its signer (a key can only speak for its own hub).  What the
hubs then answer is bounded by :class:`~hainet.hub.client.HubClient`, and shared
results are verified one by one by :func:`hainet.net.pooling.pool_records`; a hub
that fails or lies costs its own answers, never the others'.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from hainet.bench.categorize import Profile
from hainet.errors import ConfigError, HainetError
from hainet.hub.client import HubClient
from hainet.net.dht import DhtConfig, DhtNode
from hainet.net.identity import Identity
from hainet.net.pooling import ModelPool, Pool, nearest_class, pool_records
from hainet.net.shares import HardwareClass
from hainet.select.scoring import Candidate

__all__ = [
    "MAX_HUBS",
    "NetworkSearch",
    "Pointer",
    "PoolAnswer",
    "agent_key",
    "find",
    "hello_dht",
    "hub_urls",
    "network_candidates",
    "pool_model",
    "pool_network",
    "search_network",
    "topics_for",
    "with_node",
]

MAX_HUBS = 64
"""Most hubs one command asks (the DHT can name many; each costs a request)."""
MAX_PAGES = 40
"""Most pages of raw records fetched from one hub for one model (40 x 50 records)."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_WORD = re.compile(r"[a-z0-9_]{3,40}")
T = TypeVar("T")


@dataclass(frozen=True)
class Pointer:
    """A verified DHT pointer: a hub (its key id, which signed it) and its URL."""

    key: str
    hub: str
    url: str
    spec_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "hub": self.hub, "url": self.url, "spec_id": self.spec_id}


def agent_key(ref: str) -> str:
    """``agent:{id}`` for a spec id (64 hex), ``name:{name}`` for anything else."""
    return f"agent:{ref}" if _HEX64.match(ref) else f"name:{ref}"


def _pointer(key: str, signer: str, value: Any) -> Pointer | None:
    if not isinstance(value, dict):
        return None
    url, spec_id = value.get("url"), value.get("spec_id")
    hub = signer if key.startswith("hub:") else value.get("hub")
    if key.startswith("hub:") and key != f"hub:{signer}":
        return None  # only a hub's own key may say where it is
    if hub != signer or not isinstance(url, str) or len(url) > 300:
        return None
    if not url.startswith(("http://", "https://")):
        return None
    if spec_id is not None and not (isinstance(spec_id, str) and _HEX64.match(spec_id)):
        return None
    return Pointer(key, signer, url.rstrip("/"), spec_id)


async def find(node: DhtNode, key: str) -> list[Pointer]:
    """Every well-formed pointer under ``key``, one per signing hub."""
    out = []
    for rec in await node.get(key):
        value = rec.payload.get("value")
        ptr = _pointer(key, rec.key_id, value)
        if ptr is not None:
            out.append(ptr)
    return out


def hub_urls(pointers: Iterable[Pointer]) -> dict[str, str]:
    """URL -> the hub's key id, deduplicated, at most :data:`MAX_HUBS`."""
    out: dict[str, str] = {}
    for p in pointers:
        if len(out) >= MAX_HUBS:
            break
        out.setdefault(p.url, p.hub)
    return out


async def _each(
    items: Sequence[str], work: Callable[[str], T], *, at_once: int = 8
) -> list[tuple[str, T | HainetError]]:
    """``work(item)`` in threads, a few at a time; a HainetError is kept, not raised."""
    gate = asyncio.Semaphore(at_once)

    async def one(item: str) -> tuple[str, T | HainetError]:
        async with gate:
            try:
                return item, await asyncio.to_thread(work, item)
            except HainetError as exc:
                return item, exc

    return list(await asyncio.gather(*(one(i) for i in items)))


# -- agents ------------------------------------------------------------------------------


def topics_for(query: str, topics: Sequence[str] = ()) -> list[str]:
    """The ``topic:`` keys a search asks: the given topics, else the query's words and
    the suites' capabilities (a hub announces each capability of its listed agents)."""
    from hainet.suites.loader import CAPABILITIES

    if topics:
        return sorted({t.strip().lower() for t in topics if t.strip()})
    words = _WORD.findall(query.lower())[:12]
    return sorted(set(words) | set(CAPABILITIES))


@dataclass
class NetworkSearch:
    hits: list[dict[str, Any]]
    """Merged hits, deduplicated by spec id, each with ``hub`` (where this copy came
    from) and ``hubs`` (every hub that returned it), best rank first."""
    hubs: dict[str, str]
    """URL -> key id of every hub asked."""
    failed: dict[str, str] = field(default_factory=dict)
    """URL -> why the hub gave no answer."""


def merge_hits(answers: Iterable[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Dedupe hits from many hubs by spec id; the best-ranked copy is kept."""
    best: dict[str, dict[str, Any]] = {}
    seen: dict[str, list[str]] = {}
    for url, hits in answers:
        for hit in hits:
            spec_id = hit.get("id") if isinstance(hit, dict) else None
            if not isinstance(spec_id, str) or not _HEX64.match(spec_id):
                continue
            seen.setdefault(spec_id, [])
            if url not in seen[spec_id]:
                seen[spec_id].append(url)
            rank = hit.get("rank")
            held = best.get(spec_id)
            if held is None or (
                isinstance(rank, int | float) and rank > (held.get("rank") or float("-inf"))
            ):
                best[spec_id] = {**hit, "hub": url}
    out = [{**h, "hubs": sorted(seen[i])} for i, h in best.items()]
    out.sort(key=lambda h: (-(h.get("rank") or 0.0), h["id"]))
    return out


async def search_network(
    node: DhtNode,
    query: str,
    *,
    topics: Sequence[str] = (),
    threshold: float = 0.25,
    top: int = 10,
) -> NetworkSearch:
    """Ask every hub the DHT names for the query's topics, and merge their answers."""
    keys = [f"topic:{t}" for t in topics_for(query, topics)]
    found = await asyncio.gather(*(find(node, k) for k in keys))
    hubs = hub_urls(p for ps in found for p in ps)

    def ask(url: str) -> list[dict[str, Any]]:
        with HubClient(url, timeout=10.0) as client:
            return client.search(query, top=top, threshold=threshold)

    answers, failed = [], {}
    for url, got in await _each(list(hubs), ask):
        if isinstance(got, HainetError):
            failed[url] = str(got)
        else:
            answers.append((url, got))
    return NetworkSearch(merge_hits(answers)[:top], hubs, failed)


# -- model results -----------------------------------------------------------------------


@dataclass
class PoolAnswer:
    pool: Pool
    hubs: dict[str, str]
    failed: dict[str, str] = field(default_factory=dict)


def _fetch_records(url: str, model: str) -> list[str]:
    out: list[str] = []
    cursor: str | None = None
    with HubClient(url, timeout=15.0) as client:
        for _ in range(MAX_PAGES):
            items, cursor = client.result_records(model, cursor=cursor)
            out.extend(items)
            if cursor is None:
                break
    return out


async def _pool(
    models_hubs: dict[str, dict[str, str]],
) -> tuple[Pool, dict[str, str], dict[str, str]]:
    served: list[tuple[str, str]] = []
    failed: dict[str, str] = {}
    asked: dict[str, str] = {}
    for model, hubs in models_hubs.items():
        asked.update(hubs)
        for url, got in await _each(list(hubs), functools.partial(_fetch_records, model=model)):
            if isinstance(got, HainetError):
                failed[url] = str(got)
            else:
                served.extend((url, raw) for raw in got)
    return pool_records(served), asked, failed


async def pool_model(node: DhtNode, model: str) -> PoolAnswer:
    """Every hub the DHT names for ``model:{sha}``, their raw shares verified and
    pooled here."""
    hubs = hub_urls(await find(node, f"model:{model}"))
    pool, asked, failed = await _pool({model: hubs})
    return PoolAnswer(pool, asked, failed)


async def _known_hubs(node: DhtNode, extra: Sequence[str]) -> dict[str, str]:
    """Hubs reachable from here: ``hub:{key_id}`` of the peers the DHT knows (the
    routing table and a lookup of this node's own neighbourhood), and ``extra``."""
    peers = {p.key_id: p for p in node.peers()}
    for p in await node.closest(node.node_id, 32):
        peers.setdefault(p.key_id, p)
    found = await asyncio.gather(*(find(node, f"hub:{k}") for k in peers))
    hubs = hub_urls(p for ps in found for p in ps)
    for url in extra:
        hubs.setdefault(url.rstrip("/"), "")
    return hubs


async def pool_network(
    node: DhtNode, *, extra_hubs: Sequence[str] = (), max_models: int = 32
) -> PoolAnswer:
    """The network's shared results of every model the reachable hubs hold: their
    models (``/v1/results``), then ``model:{sha}`` for every hub holding each, then
    the raw shares, verified and pooled here."""
    hubs = await _known_hubs(node, extra_hubs)

    def models_of(url: str) -> list[str]:
        with HubClient(url, timeout=10.0) as client:
            return [str(g.get("model")) for g in client.results()]

    failed: dict[str, str] = {}
    models: dict[str, dict[str, str]] = {}
    for url, got in await _each(list(hubs), models_of):
        if isinstance(got, HainetError):
            failed[url] = str(got)
            continue
        for sha in got:
            if _HEX64.match(sha) and (sha in models or len(models) < max_models):
                models.setdefault(sha, {})[url] = hubs[url]
    named = await asyncio.gather(*(find(node, f"model:{sha}") for sha in models))
    for sha, pointers in zip(models, named, strict=True):
        for url, key_id in hub_urls(pointers).items():
            models[sha].setdefault(url, key_id)
    pool, asked, more_failed = await _pool(models)
    return PoolAnswer(pool, {**hubs, **asked}, {**failed, **more_failed})


def network_candidates(
    pools: Iterable[ModelPool], mine: HardwareClass, *, skip: Iterable[str] = ()
) -> list[Candidate]:
    """Selector candidates from network-tested models (``skip``: GGUF sha256s the
    user has measured here, whose own runs are the better evidence): each with the
    medians of the hardware class nearest the user's, and where they came from."""
    skipped = set(skip)
    out = []
    for mp in pools:
        if not mp.network_tested or mp.model in skipped:
            continue
        match = nearest_class(mp.classes, mine)
        if match is None:
            continue
        g = match.group
        caps = {c: s["median"] for c, s in g["capabilities"].items() if s is not None}

        def median(name: str, group: dict[str, Any] = g) -> float | None:
            stats = group["figures"].get(name)
            return None if stats is None else float(stats["median"])

        name = mp.model_names[0] if mp.model_names else mp.model[:12]
        profile = Profile(
            model=name,
            quantization=mp.quantization,
            capabilities=caps,
            peak_rss_mb=median("peak_rss_mb"),
            decode_tps=median("decode_tps"),
        )
        origin = {
            "source": "network",
            "model_sha256": mp.model,
            "model_names": mp.model_names,
            "signers": mp.signers,
            "hardware_class": g["hardware_class"],
            "same_hardware_class": match.same,
            "class_signers": g["signers"],
            "class_runs": g["runs"],
            "hubs": mp.hubs,
        }
        out.append(Candidate(profile, median("ttft_s"), origin=origin))
    return out


async def with_node(
    identity: Identity,
    bootstrap: Sequence[tuple[str, int]],
    work: Callable[[DhtNode], Awaitable[T]],
    *,
    config: DhtConfig | None = None,
    host: str | None = None,
) -> T:
    """``work`` with a short-lived DHT node of ``identity``, stopped after.  It binds
    loopback when every bootstrap peer is on loopback, else every interface (replies
    from other machines must reach it)."""
    if not bootstrap:
        raise ConfigError(
            "no DHT node to join through",
            hint="pass --bootstrap HOST:PORT, set dht_bootstrap in config.toml, or --hub "
            "URL of a hub on the network",
        )
    if host is None:
        loopback = all(h in ("127.0.0.1", "localhost", "::1") for h, _ in bootstrap)
        host = "127.0.0.1" if loopback else "0.0.0.0"  # noqa: S104 - see the docstring
    node = await DhtNode.start(
        identity, host=host, port=0, bootstrap=bootstrap, config=config or DhtConfig()
    )
    try:
        return await work(node)
    finally:
        await node.stop()


def hello_dht(url: str) -> tuple[str, int]:
    """The DHT address a hub's signed ``/.well-known/hainet-hub`` advertises."""
    with HubClient(url, timeout=10.0) as client:
        hello = client.hello()
    dht = hello.payload.get("dht")
    host = dht.get("host") if isinstance(dht, dict) else None
    port = dht.get("port") if isinstance(dht, dict) else None
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ConfigError(
            f"hub {url} is not on the network (its hello names no DHT address)",
            hint="pass --bootstrap HOST:PORT of a DHT node",
        )
    if host in ("0.0.0.0", "::"):  # noqa: S104 - bound to every interface: use the URL's
        host = httpx.URL(url).host
    return host, port
