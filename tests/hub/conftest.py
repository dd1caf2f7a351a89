from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hainet.agents.marketplace import Marketplace
from hainet.hub.app import create_app
from hainet.hub.limits import RateLimiter
from hainet.hub.service import Hub
from hainet.net.identity import Identity, verify
from hainet.store import Store
from tests.hub.servers import fake_embed, running, upper_runner


@dataclass
class HubUnderTest:
    url: str
    hub: Hub
    store: Store
    gate_open: threading.Event


@pytest.fixture
def hub_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HubUnderTest]:
    """A hub on a mock gate model (answers in capitals); the gate waits while the
    test holds ``gate_open`` cleared.  Indirect params set the rate limits."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    gate_open = threading.Event()
    gate_open.set()
    market = Marketplace(store, embedder=fake_embed, verify_signature=verify)
    limits = getattr(request, "param", {})
    hub = Hub(
        market,
        Identity.load_or_create(tmp_path / "hub-home"),
        upper_runner(gate_open),
        key_limit=RateLimiter(limits.get("per_key", 50), 60),
    )
    app = create_app(hub, address_limit=RateLimiter(limits.get("per_address", 200), 60))
    with running(app) as url:
        yield HubUnderTest(url, hub, store, gate_open)
    gate_open.set()
    store.close()
