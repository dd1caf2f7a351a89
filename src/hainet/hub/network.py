"""A hub on the network: its DHT node, the pointers it announces, its raw shares.

``hainet hub serve --dht-port P --bootstrap HOST:PORT`` gives the app a
:class:`NetworkOptions`; the app's lifespan then runs :func:`network_lifespan`,
which starts a :class:`~hainet.net.dht.DhtNode` with the hub's own identity, keeps
it on ``app.state.dht`` (and the :class:`HubNetwork` on ``app.state.network``), and
stops it on shutdown.

**What the hub announces** (small signed pointers; bodies stay on the hub's HTTP API
and are checked against their hashes by whoever fetches them):

* ``hub:{key_id}`` -> ``{"url", "api": "v1"}``;
* per listed agent: ``agent:{spec_id}`` and ``name:{name}`` -> ``{"hub", "url",
  "spec_id"}`` (``name:`` points at the newest listed version), and
  ``topic:{capability}`` -> ``{"hub", "url"}`` for each of its capabilities;
* per model with unexpired shares: ``model:{gguf sha256}`` -> ``{"hub", "url"}``.

:meth:`HubNetwork.sync` puts what is new or changed (all of it when the hub
starts); the app pokes it after each gate and share, and a timer runs it anyway.
The DHT node itself re-signs its own pointers with a fresh expiry every
``republish_s``, well before their ``ttl_s``, so a hub that leaves disappears from
the network when its pointers expire.

**Raw shares.**  ``GET /v1/results/records?model=SHA`` (:func:`records_router`)
serves the ``result.share`` records exactly as received, paged, so that another
machine verifies every signature itself (:mod:`hainet.net.pooling`) instead of
trusting this hub's aggregates.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hainet.errors import HainetError, ValidationError
from hainet.hub.service import API_VERSION, Hub
from hainet.hub.validation import attach as attach_validation
from hainet.inputs import parse_json
from hainet.net.dht import DhtConfig, DhtNode

__all__ = [
    "MAX_RECORDS_PAGE",
    "PAGE_BYTES",
    "HubNetwork",
    "NetworkOptions",
    "network_lifespan",
    "parse_address",
    "records_router",
]

log = logging.getLogger(__name__)

MAX_RECORDS_PAGE = 100
PAGE_BYTES = 512 * 1024
"""A page of raw records holds at most this many record bytes (and always one)."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (a bootstrap peer's UDP address); ValidationError naming it."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(f"bootstrap address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class NetworkOptions:
    """How a hub joins the network."""

    public_url: str
    """The URL other machines reach this hub's HTTP API at."""
    host: str = "127.0.0.1"
    port: int = 0
    bootstrap: Sequence[tuple[str, int]] = ()
    config: DhtConfig = field(default_factory=DhtConfig)
    sync_s: float = 60.0
    """Longest wait between two syncs when nothing pokes one."""


# -- raw shares ------------------------------------------------------------------------


class RecordsMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")
    count: int


class RecordsPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[str] = Field(description="result.share records, each exactly as received.")
    metadata: RecordsMetadata


def _cursor(signer: str, subject: str) -> str:
    raw = json.dumps([signer, subject], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[str, str]:
    bad = ValidationError(f"cursor {cursor[:40]!r} is not one this hub gave")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = parse_json(raw, where="cursor", error=ValidationError)
    except (ValueError, HainetError):
        raise bad from None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) and 0 < len(v) <= 256 for v in value)
    ):
        raise bad
    return value[0], value[1]


# The app's own error shape (hub/app.py's Problem, in the same OpenAPI document).
_BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A bad cursor or parameter.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}


def records_router(hub: Hub) -> APIRouter:
    """``GET /v1/results/records``: the raw signed shares of one model, paged."""
    router = APIRouter()

    @router.get("/v1/results/records", response_model=RecordsPage, responses=_BAD_REQUEST)
    def result_records(
        model: str = Query(..., min_length=1, max_length=200, description="GGUF sha256."),
        cursor: str | None = Query(None, max_length=600, description="From metadata."),
        limit: int = Query(50, ge=1, le=MAX_RECORDS_PAGE),
    ) -> dict[str, Any]:
        """Unexpired result.share records of ``model``, exactly as this hub received
        them, by signer; verify each one yourself (this hub's word is not proof)."""
        after = _after(cursor) if cursor else None
        rows = hub.shares.records(model=model, after=after, limit=limit + 1)
        items: list[str] = []
        size = 0
        for row in rows[:limit]:
            if items and size + len(row.record) > PAGE_BYTES:
                break
            items.append(row.record)
            size += len(row.record)
        more = len(items) < len(rows)
        last = rows[len(items) - 1] if items else None
        next_cursor = _cursor(last.signer, last.subject) if more and last else None
        return {"items": items, "metadata": {"next_cursor": next_cursor, "count": len(items)}}

    return router


# -- announcing ------------------------------------------------------------------------


def _pointers(hub: Hub, url: str) -> dict[str, dict[str, Any]]:
    """Every pointer this hub should have in the DHT now (reads the store)."""
    me = hub.identity.key_id
    out: dict[str, dict[str, Any]] = {f"hub:{me}": {"url": url, "api": API_VERSION}}
    newest: dict[str, tuple[tuple[int, ...], str]] = {}
    after: str | None = None
    while True:
        page = hub.ledger.publications(state="listed", after=after, limit=500)
        for pub in page:
            out[f"agent:{pub.agent_id}"] = {"hub": me, "url": url, "spec_id": pub.agent_id}
            version = tuple(int(x) for x in pub.version.split(".") if x.isdigit())
            if pub.name not in newest or version > newest[pub.name][0]:
                newest[pub.name] = (version, pub.agent_id)
            spec = parse_json(pub.spec_bytes, where=f"stored spec {pub.agent_id[:12]}")
            caps = spec.get("capabilities", []) if isinstance(spec, dict) else []
            for cap in caps if isinstance(caps, list) else []:
                if isinstance(cap, str) and cap:
                    out[f"topic:{cap.lower()}"] = {"hub": me, "url": url}
        if len(page) < 500:
            break
        after = page[-1].agent_id
    for name, (_, spec_id) in newest.items():
        out[f"name:{name}"] = {"hub": me, "url": url, "spec_id": spec_id}
    for model in hub.shares.models():
        if _SHA256.match(model):  # server models have a name, not a hash, to point at
            out[f"model:{model}"] = {"hub": me, "url": url}
    return out


class HubNetwork:
    """A hub's presence in the DHT: what it announced, and when."""

    def __init__(self, hub: Hub, node: DhtNode, options: NetworkOptions) -> None:
        self.hub, self.node, self.options = hub, node, options
        self._put: dict[str, str] = {}
        """Key -> the canonical JSON of the value put (the node re-signs it itself)."""
        self._poked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The loop the node runs on (the app's; other threads submit work to it)."""
        self.synced = asyncio.Event()
        """Set after each sync that put everything it meant to (tests wait on it)."""

    @classmethod
    async def join(cls, hub: Hub, options: NetworkOptions) -> HubNetwork:
        node = await DhtNode.start(
            hub.identity,
            host=options.host,
            port=options.port,
            bootstrap=options.bootstrap,
            config=options.config,
        )
        net = cls(hub, node, options)
        net.loop = asyncio.get_running_loop()
        await net.sync()
        net._task = asyncio.create_task(net._run())
        return net

    @property
    def address(self) -> tuple[str, int]:
        return self.node.address

    def announced(self) -> list[str]:
        return sorted(self._put)

    def poke(self) -> None:
        """Something changed (an agent listed, a result shared): sync soon."""
        self._poked.set()

    async def sync(self) -> int:
        """Put the pointers that are new or changed; returns how many were put."""
        self.synced.clear()
        wanted = await run_in_threadpool(_pointers, self.hub, self.options.public_url)
        due = []
        for key, value in wanted.items():
            text = json.dumps(value, sort_keys=True)
            if self._put.get(key) != text:
                due.append((key, value, text))
        gate = asyncio.Semaphore(8)
        failed = 0

        async def put(key: str, value: dict[str, Any], text: str) -> int:
            nonlocal failed
            async with gate:
                try:
                    await self.node.put(key, value)
                except (TimeoutError, HainetError, OSError) as exc:
                    failed += 1
                    log.warning("DHT put of %s failed (retried at the next sync): %s", key, exc)
                    return 0
            self._put[key] = text
            return 1

        done = sum(await asyncio.gather(*(put(*d) for d in due)))
        if not failed:
            self.synced.set()
        return done

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poked.wait(), timeout=self.options.sync_s)
            self._poked.clear()
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - a failed sync must not end the announcing
                log.exception("DHT sync failed; retried later")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.node.stop()


@contextlib.asynccontextmanager
async def network_lifespan(
    app: FastAPI, hub: Hub, options: NetworkOptions | None
) -> AsyncIterator[HubNetwork | None]:
    """Join the network for the app's lifetime (nothing when ``options`` is None)."""
    app.state.network = app.state.dht = None
    if options is None:
        yield None
        return
    net = await HubNetwork.join(hub, options)
    app.state.network, app.state.dht = net, net.node
    validation = None
    try:
        # Community validation (hub/validation.py) runs on this node while it runs.
        validation = attach_validation(app, hub, net.node, options.public_url)
        yield net
    finally:
        if validation is not None:
            await validation.stop()
        app.state.network = app.state.dht = None
        await net.stop()
