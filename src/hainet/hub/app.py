"""The hub's HTTP edge: FastAPI over :class:`~hainet.hub.service.Hub`.

Thin like the CLI: each endpoint parses, calls one :class:`Hub` method, renders.
Request bodies are read as bytes and handed to :mod:`hainet.net.records` (never to
FastAPI's JSON parser, which would accept NaN and keep the last of two equal keys),
after :class:`BodyLimit` has refused anything over ``max_body`` bytes: by its
``Content-Length`` before reading, and by counting the bytes actually streamed.

Errors: a refused record or bad parameter is 400, an unknown agent 404, a record
that collides with what the hub holds 409, a body too large 413, too many writes
429 with ``Retry-After``; the body is always ``{"detail": "<what was wrong>"}``
under ``/v1``, and an HTML page with the same reason on the web pages
(``hub/pages.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hainet.errors import HainetError, StoreError
from hainet.hub.limits import RateLimited, RateLimiter
from hainet.hub.network import NetworkOptions, network_lifespan, records_router
from hainet.hub.pages import add_pages, error_page, is_page
from hainet.hub.service import MAX_PAGE, Conflict, Hub, NotFound
from hainet.net.identity import SignedRecord
from hainet.net.records import MAX_RECORD_BYTES

__all__ = ["BodyLimit", "create_app"]

log = logging.getLogger(__name__)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _error(send, 400, "Content-Length is not a number")
                return
            if declared > self.max_bytes:
                await _error(send, 413, self._too_big(f"{declared:,} bytes declared"))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _error(send, 413, self._too_big(f"more than {self.max_bytes:,} bytes sent"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_big(self, what: str) -> str:
        return f"request body too large: {what}, the limit is {self.max_bytes:,}"


async def _error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- response shapes (the OpenAPI document) -------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentItem(_Out):
    id: str = Field(description="Content hash of the spec (sha256).")
    name: str
    version: str
    purpose: str
    capabilities: list[str]
    author: str = Field(description="Key id of the signer, which is the spec's author.")
    lineage: list[str] = Field(description="Ids of the parents.")
    state: str = Field(description="pending, listed or refused (the hub's own gate).")
    success_rate: float | None = Field(description="The hub's gate success rate.")
    message: str | None = Field(description="Why the gate refused it.")
    score: float | None = Field(description="The marketplace score on this hub.")
    published_at: str
    similarity: float | None = Field(default=None, description="Search only.")
    rank: float | None = Field(default=None, description="Search only: 0.4 sim + 0.6 score.")
    agent_id: str | None = Field(default=None, description="Search only: same as id.")


class ListingMetadata(_Out):
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")
    count: int = Field(description="Items in this page.")


class Listing(_Out):
    items: list[AgentItem]
    metadata: ListingMetadata


class Accepted(_Out):
    id: str
    state: str
    status: str = Field(description="Where to follow the gate.")


class RatingOut(_Out):
    agent_id: str
    key_id: str
    stars: int


class RatingItem(_Out):
    key_id: str
    stars: int
    text: str
    at: str


class Stats(_Out):
    median: float
    min: float
    max: float
    n: int


class ResultGroup(_Out):
    model: str = Field(description="GGUF sha256, or the served name of a server model.")
    model_names: list[str]
    quantization: str | None
    hardware_class: str
    hardware: dict[str, Any]
    runs: int
    signers: int = Field(description="Distinct keys that shared runs of this group.")
    figures: dict[str, Stats | None] = Field(description="ttft_s, prefill_tps, decode_tps...")
    capabilities: dict[str, Stats | None]


class Results(_Out):
    items: list[ResultGroup]
    metadata: ListingMetadata


class Shared(_Out):
    subject: str
    model: str
    hardware_class: str


class Validation(_Out):
    model: str = Field(description="The hub's gate model.")
    success_rate: float
    passed: int
    total: int
    at: str


class Validations(_Out):
    hub: str = Field(description="Key id of the hub that ran them (this one).")
    items: list[Validation]


class Problem(_Out):
    detail: str


_RECORD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SignedRecord.model_json_schema()}},
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 404, 409, 413, 429)
}


def create_app(
    hub: Hub,
    *,
    max_body: int = MAX_RECORD_BYTES,
    address_limit: RateLimiter | None = None,
    network: NetworkOptions | None = None,
) -> FastAPI:
    """The hub as an ASGI app; the gate runs in a background task of its lifespan,
    and with ``network`` the hub joins the DHT for its lifetime (hub/network.py)."""
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def gate_worker() -> None:
        while True:
            agent_id = await queue.get()
            try:
                await hub.run_gate(agent_id)
                if app.state.network is not None:
                    app.state.network.poke()  # announce it if it was listed
            except Exception:  # noqa: BLE001 - one bad gate must not stop the others
                log.exception("gate of agent %s failed; it stays pending", agent_id[:12])
            finally:
                queue.task_done()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for agent_id in await run_in_threadpool(hub.pending):
            queue.put_nowait(agent_id)
        task = asyncio.create_task(gate_worker())
        try:
            async with network_lifespan(app, hub, network):
                yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="hainet hub",
        version="1",
        description="Agents shared as signed records; listed after the hub's own gate.",
        lifespan=lifespan,
    )
    app.state.gate_queue = queue
    app.state.network = app.state.dht = None
    app.add_middleware(BodyLimit, max_bytes=max_body)

    @app.exception_handler(HainetError)
    async def _hainet_error(request: Request, exc: HainetError) -> Response:
        status, headers = 400, {}
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, RateLimited):
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, StoreError):
            status = 503
        if is_page(request):
            return error_page(status, str(exc), headers)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    def limit_address(request: Request) -> None:
        if address_limit is not None:
            host = request.client.host if request.client else "unknown"
            address_limit.hit(host, what=f"address {host}")

    @app.get("/.well-known/hainet-hub")
    def well_known() -> dict[str, Any]:
        """The hub's signed hub.hello record: key id, API version, endpoints."""
        paths = {str(getattr(r, "path", "")) for r in app.routes}
        net = app.state.network
        dht = None if net is None else net.address
        return hub.hello(sorted(p for p in paths if p.startswith("/v1")), dht=dht)

    @app.get("/v1/agents", response_model=Listing, responses=_ERRORS)
    def list_agents(
        cursor: str | None = Query(None, max_length=200, description="From metadata."),
        limit: int = Query(30, ge=1, le=MAX_PAGE),
        state: str = Query("listed", pattern="^(pending|listed|refused)$"),
        q: str | None = Query(None, max_length=1000, description="Search words."),
        threshold: float = Query(0.25, ge=-1.0, le=1.0),
    ) -> dict[str, Any]:
        """Agents on this hub, by id with a cursor; with ``q``, the marketplace's
        search (similarity above the threshold, ranked 0.4 x similarity + 0.6 x score)."""
        if q is not None:
            items = hub.search(q, threshold=threshold, top=limit)
            return {"items": items, "metadata": {"next_cursor": None, "count": len(items)}}
        page = hub.list_agents(cursor=cursor, limit=limit, state=state)  # type: ignore[arg-type]
        meta = {"next_cursor": page.next_cursor, "count": len(page.items)}
        return {"items": page.items, "metadata": meta}

    @app.post(
        "/v1/agents",
        status_code=202,
        response_model=Accepted,
        responses=_ERRORS,
        openapi_extra=_RECORD_BODY,
    )
    async def publish(request: Request) -> dict[str, Any]:
        """Publish a signed agent.publish record; the hub's gate runs after this returns."""
        limit_address(request)
        body = await request.body()
        pub = await run_in_threadpool(hub.submit, body)
        queue.put_nowait(pub.agent_id)
        return {
            "id": pub.agent_id,
            "state": pub.state,
            "status": f"/v1/agents/{pub.agent_id}/status",
        }

    @app.get(
        "/v1/agents/{agent_id}",
        responses={200: {"content": {"application/json": {}}}, **_ERRORS},
    )
    def get_spec(agent_id: str) -> Response:
        """The spec's exact bytes (canonical JSON); its sha256 content hash is the id."""
        return Response(hub.publication(agent_id).spec_bytes, media_type="application/json")

    @app.get(
        "/v1/agents/{agent_id}/record",
        responses={200: {"content": {"application/json": {}}}, **_ERRORS},
    )
    def get_record(agent_id: str) -> Response:
        """The signed agent.publish record exactly as the hub received it."""
        return Response(hub.publication(agent_id).record, media_type="application/json")

    @app.get("/v1/agents/{agent_id}/status", response_model=AgentItem, responses=_ERRORS)
    def status(agent_id: str) -> dict[str, Any]:
        """The agent's listing and its gate state (pending, listed, refused)."""
        return hub.item(hub.publication(agent_id))

    @app.get("/v1/agents/{agent_id}/validations", response_model=Validations, responses=_ERRORS)
    def validations(agent_id: str) -> dict[str, Any]:
        """This hub's own gate runs of the agent (its model, rate, passed cases)."""
        return {"hub": hub.identity.key_id, "items": hub.gate_reports(agent_id)}

    @app.get("/v1/names/{name}/versions", response_model=Listing, responses=_ERRORS)
    def versions(name: str) -> dict[str, Any]:
        """Every listed version of a name, oldest first, each with its lineage."""
        items = hub.versions(name)
        return {"items": items, "metadata": {"next_cursor": None, "count": len(items)}}

    @app.post(
        "/v1/agents/{agent_id}/ratings",
        status_code=201,
        response_model=RatingOut,
        responses=_ERRORS,
        openapi_extra=_RECORD_BODY,
    )
    async def rate(agent_id: str, request: Request) -> dict[str, Any]:
        """Rate a listed agent with a signed agent.rating record (its agent_id is this id)."""
        limit_address(request)
        body = await request.body()
        out: dict[str, Any] = await run_in_threadpool(hub.rate, body, agent_id=agent_id)
        return out

    @app.get("/v1/agents/{agent_id}/ratings", response_model=list[RatingItem], responses=_ERRORS)
    def ratings(agent_id: str) -> list[dict[str, Any]]:
        """The agent's ratings on this hub, oldest first."""
        return hub.ratings(agent_id)

    @app.post(
        "/v1/results",
        status_code=201,
        response_model=Shared,
        responses=_ERRORS,
        openapi_extra=_RECORD_BODY,
    )
    async def share(request: Request) -> dict[str, Any]:
        """Share one bench run's summary: a signed result.share record."""
        limit_address(request)
        body = await request.body()
        out: dict[str, Any] = await run_in_threadpool(hub.share, body)
        if app.state.network is not None:
            app.state.network.poke()  # announce model:{sha} if it is new here
        return out

    @app.get("/v1/results", response_model=Results, responses=_ERRORS)
    def results(model: str | None = Query(None, max_length=200)) -> dict[str, Any]:
        """Shared results per (model, quantization, hardware class): distinct signers,
        median, min and max of every figure."""
        items = hub.results(model)
        return {"items": items, "metadata": {"next_cursor": None, "count": len(items)}}

    app.include_router(records_router(hub))
    add_pages(app, hub)
    return app
