"""Build a hub from settings and serve it with uvicorn (``hainet hub serve``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from hainet.agents.marketplace import Marketplace
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.backends import Catalog
from hainet.config import Settings
from hainet.hub.app import create_app
from hainet.hub.limits import RateLimiter
from hainet.hub.service import Hub, RunnerFactory
from hainet.net.identity import Identity, verify
from hainet.store import Store

__all__ = ["HUB_IDENTITY_DIR", "build_app", "serve"]

HUB_IDENTITY_DIR = "hub"
"""The hub's key lives in ``HAINET_HOME/hub/identity/``, apart from the user's own."""


def _gate_runner(cfg: Settings) -> RunnerFactory:
    def factory() -> contextlib.AbstractAsyncContextManager[AgentRunner]:
        @contextlib.asynccontextmanager
        async def cm() -> AsyncIterator[AgentRunner]:
            async with open_runner(Catalog(cfg).resolve(cfg.default_model)) as runner:
                yield runner

        return cm()

    return factory


def build_app(
    cfg: Settings,
    *,
    gate_runner: RunnerFactory | None = None,
    publishes_per_minute: int = 10,
    writes_per_minute_per_address: int = 60,
) -> FastAPI:
    """A hub over ``cfg``'s store (``HAINET_DB``, else SQLite in home), its identity
    in home, its gate on ``cfg.default_model`` (the bundled model by default)."""
    store = Store(cfg.db_url)
    market = Marketplace(store, verify_signature=verify)
    hub = Hub(
        market,
        Identity.load_or_create(cfg.home / HUB_IDENTITY_DIR),
        gate_runner or _gate_runner(cfg),
        threshold=cfg.publish_threshold,
        key_limit=RateLimiter(publishes_per_minute, 60.0),
    )
    return create_app(hub, address_limit=RateLimiter(writes_per_minute_per_address, 60.0))


def serve(cfg: Settings, *, host: str = "127.0.0.1", port: int = 8731) -> None:
    import uvicorn

    uvicorn.run(build_app(cfg), host=host, port=port, log_level="info")
