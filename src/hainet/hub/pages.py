"""The hub's web pages: server-rendered (jinja2), no JavaScript, over the same
:class:`~hainet.hub.service.Hub` methods as the JSON API.

Everything on a page came from someone else (names, purposes, reviews, specs), so
templates are autoescaped, always.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from hainet.hub.charts import decode_chart
from hainet.hub.service import API_VERSION, Hub, NotFound
from hainet.hub.validation import network_status

__all__ = ["add_pages"]

_env = Environment(
    loader=PackageLoader("hainet.hub", "templates"), autoescape=True, auto_reload=False
)


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


def add_pages(app: FastAPI, hub: Hub) -> None:
    """Add ``/``, ``/agents/{id}``, ``/leaderboard`` and ``/hub`` (not in the API's
    OpenAPI document)."""

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
        sections = [(hw, groups, decode_chart(groups)) for hw, groups in sorted(by_hw.items())]
        return _render("leaderboard.html.j2", by_hardware=sections)

    @app.get("/hub", response_class=HTMLResponse, include_in_schema=False)
    def hub_page() -> HTMLResponse:
        counts = {s: hub.ledger.count(state=s) for s in ("listed", "pending", "refused")}
        counts["result_groups"] = len(hub.results())
        return _render(
            "hub.html.j2", key_id=hub.identity.key_id, api_version=API_VERSION, counts=counts
        )
