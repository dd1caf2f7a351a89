"""The hub's web pages: server-rendered (jinja2), no JavaScript, over the same
:class:`~hainet.hub.service.Hub` methods as the JSON API.

Everything on a page came from someone else (names, purposes, reviews, specs), so
templates are autoescaped, always.

Errors on a page (an unknown agent, an unknown path, a bad query) answer an HTML
page with the status, the reason and a link back to the catalog; under ``/v1`` and
the hub's other machine paths they stay JSON ``{"detail": ...}`` (``is_page``).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader
from starlette.exceptions import HTTPException

from hainet.hub.charts import leaderboard_charts
from hainet.hub.service import API_VERSION, Hub, NotFound
from hainet.hub.validation import network_status

__all__ = ["add_pages", "error_page", "is_page"]

# Paths that answer machines (JSON); every other path is a web page.
_MACHINE_PREFIXES = ("/v1/", "/.well-known/", "/openapi.json", "/docs", "/redoc")

_env = Environment(
    loader=PackageLoader("hainet.hub", "templates"), autoescape=True, auto_reload=False
)


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


def is_page(request: Request) -> bool:
    """Whether an error at this request's path answers an HTML page (not JSON)."""
    path = request.url.path
    return path != "/v1" and not path.startswith(_MACHINE_PREFIXES)


def error_page(status: int, detail: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The HTML page of an error: status, reason, a link back to the catalog."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    page = _env.get_template("error.html.j2").render(status=status, title=title, detail=detail)
    return HTMLResponse(page, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "query")
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(parts)


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if not is_page(request):
            return await http_exception_handler(request, exc)
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no page at {request.url.path[:200]} on this hub"
        return error_page(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _bad_query(request: Request, exc: RequestValidationError) -> Response:
        if not is_page(request):
            return await request_validation_exception_handler(request, exc)
        return error_page(400, _validation_detail(exc))


def add_pages(app: FastAPI, hub: Hub) -> None:
    """Add ``/``, ``/agents/{id}``, ``/leaderboard`` and ``/hub`` (not in the API's
    OpenAPI document), and HTML error pages for them."""
    _add_error_pages(app)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def catalog(
        q: str | None = Query(None, max_length=1000),
        cursor: str | None = Query(None, max_length=200),
    ) -> HTMLResponse:
        if q and q.strip():
            items, next_cursor = hub.search(q, threshold=0.25, top=30), None
        else:
            page = hub.list_agents(cursor=cursor, limit=30)
            items, next_cursor = page.items, page.next_cursor
        return _render("catalog.html.j2", items=items, q=q, next_cursor=next_cursor)

    @app.get("/agents/{agent_id}", response_class=HTMLResponse, include_in_schema=False)
    def agent(agent_id: str) -> HTMLResponse:
        pub = hub.publication(agent_id)
        item = hub.item(pub)
        try:
            versions = hub.versions(pub.name)
        except NotFound:  # this one is pending or refused: show it alone
            versions = []
        if not any(v["id"] == pub.agent_id for v in versions):
            versions.append(item)
        spec_text = json.dumps(json.loads(pub.spec_bytes), indent=2, ensure_ascii=False)
        return _render(
            "agent.html.j2",
            a=item,
            reports=hub.gate_reports(pub.agent_id),
            versions=versions,
            compat=hub.market.matrix(pub.agent_id),
            ratings=hub.ratings(pub.agent_id),
            spec_text=spec_text,
            network=network_status(hub, pub.agent_id),
        )

    @app.get("/leaderboard", response_class=HTMLResponse, include_in_schema=False)
    def leaderboard() -> HTMLResponse:
        by_hw: dict[str, list[dict[str, Any]]] = {}
        for group in hub.results():
            by_hw.setdefault(group["hardware_class"], []).append(group)
        for groups in by_hw.values():
            groups.sort(key=lambda g: -((g["figures"]["decode_tps"] or {}).get("median") or 0))
        sections = [
            (hw, groups, leaderboard_charts(groups, hw)) for hw, groups in sorted(by_hw.items())
        ]
        return _render("leaderboard.html.j2", by_hardware=sections)

    @app.get("/hub", response_class=HTMLResponse, include_in_schema=False)
    def hub_page() -> HTMLResponse:
        counts = {s: hub.ledger.count(state=s) for s in ("listed", "pending", "refused")}
        counts["result_groups"] = len(hub.results())
        return _render(
            "hub.html.j2", key_id=hub.identity.key_id, api_version=API_VERSION, counts=counts
        )
