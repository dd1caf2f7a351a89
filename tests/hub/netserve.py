"""Hubs on the network in this process: real uvicorn servers on 127.0.0.1 (port
known before they start: the socket is bound first), each with its DHT node started
by the app's own lifespan (``hub/network.py``), on the mock gate model."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from hainet.agents.marketplace import Marketplace
from hainet.hub.app import create_app
from hainet.hub.limits import RateLimiter
from hainet.hub.network import NetworkOptions
from hainet.hub.service import Hub, RunnerFactory
from hainet.net.dht import DhtConfig
from hainet.net.identity import Identity, verify
from hainet.store import Store
from tests.hub.servers import fake_embed

T = TypeVar("T")

# A small bucket so that routing is exercised; loopback: every peer in one prefix.
DHT = DhtConfig(ksize=4, alpha=3, pow_bits=4, per_prefix=1000)


@dataclass
class NetHub:
    url: str
    hub: Hub
    app: FastAPI
    loop: asyncio.AbstractEventLoop

    @property
    def key_id(self) -> str:
        return self.hub.identity.key_id

    @property
    def dht_address(self) -> tuple[str, int]:
        node = self.app.state.dht
        assert node is not None, "the hub is not on the network"
        return tuple(node.address)  # type: ignore[return-value]

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` in the hub's own event loop (where its DHT node lives)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def net_hub(
    home: Path,
    runner: RunnerFactory,
    bootstrap: Sequence[tuple[str, int]] = (),
    *,
    threshold: float = 0.8,
) -> Iterator[NetHub]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    home.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{home / 'hub.db'}")
    hub = Hub(
        Marketplace(store, embedder=fake_embed, verify_signature=verify),
        Identity.load_or_create(home / "hub"),
        runner,
        threshold=threshold,
        key_limit=RateLimiter(100, 60),
    )
    options = NetworkOptions(public_url=url, bootstrap=tuple(bootstrap), config=DHT)
    app = create_app(hub, address_limit=RateLimiter(1000, 60), network=options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        async def main() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve(sockets=[sock])

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.01)
    try:
        yield NetHub(url, hub, app, loops[0])
    finally:
        server.should_exit = True
        thread.join(20)
        store.close()
        sock.close()


@contextlib.contextmanager
def network(
    root: Path, count: int, runner: RunnerFactory, *, threshold: float = 0.8
) -> Iterator[list[NetHub]]:
    """``count`` hubs, each joining through the first one."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(net_hub(root / "hub0", runner, threshold=threshold))
        hubs = [first]
        for i in range(1, count):
            hubs.append(
                stack.enter_context(
                    net_hub(root / f"hub{i}", runner, [first.dht_address], threshold=threshold)
                )
            )
        yield hubs
