"""Real hubs on the network, in one process: uvicorn on 127.0.0.1 (port 0) in a
thread per hub, each with its DhtNode on its own event loop, the mock gate model."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from hainet.agents.marketplace import Marketplace
from hainet.agents.spec import parse_spec
from hainet.hub.app import create_app
from hainet.hub.network import HubNetwork, NetworkOptions
from hainet.hub.service import Hub
from hainet.net.dht import DhtConfig
from hainet.net.identity import Identity, SignedRecord, verify
from hainet.net.records import AGENT_PUBLISH, RESULT_SHARE, publish_payload, record_json
from hainet.store import Store
from tests.hub.servers import SHOUT, fake_embed, upper_runner, wait_for

T = TypeVar("T")
TEST_DHT = DhtConfig(ksize=3, pow_bits=4, per_prefix=100, maintain_s=3600.0)
DHT_ENV = {"HAINET_DHT_KSIZE": "3", "HAINET_DHT_POW_BITS": "4", "HAINET_DHT_PER_PREFIX": "100"}
HW = {"cpu": "Test CPU 9000", "cores": 64, "ram_gib": 256, "gpus": []}


@dataclass
class NetHub:
    url: str
    hub: Hub
    app: FastAPI
    store: Store

    @property
    def net(self) -> HubNetwork:
        net = self.app.state.network
        assert net is not None, "the hub is not on the network"
        return net  # type: ignore[no-any-return]

    @property
    def dht(self) -> tuple[str, int]:
        return self.net.address

    def call(self, work: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
        """Run ``work()`` on the hub's own event loop (where its DhtNode lives)."""
        loop = self.net.loop
        assert loop is not None

        async def run() -> T:
            return await work()

        fut: Future[T] = asyncio.run_coroutine_threadsafe(run(), loop)
        return fut.result(timeout)


@contextlib.contextmanager
def serving(build: Callable[[str], FastAPI]) -> Iterator[tuple[str, FastAPI]]:
    """Bind 127.0.0.1:0 first (so the app knows its URL), then serve it there."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = build(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.01)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@contextlib.contextmanager
def hubs_on_network(root: Path, n: int) -> Iterator[list[NetHub]]:
    """``n`` hubs; the first is the others' bootstrap node."""
    out: list[NetHub] = []
    with contextlib.ExitStack() as stack:
        for i in range(n):
            store = Store(f"sqlite:///{root / f'hub{i}.db'}")
            stack.callback(store.close)
            market = Marketplace(store, embedder=fake_embed, verify_signature=verify)
            hub = Hub(market, Identity.load_or_create(root / f"hub{i}"), upper_runner())
            boot = [out[0].dht] if out else []

            def build(url: str, hub: Hub = hub, boot: list[tuple[str, int]] = boot) -> FastAPI:
                opts = NetworkOptions(public_url=url, bootstrap=boot, config=TEST_DHT, sync_s=1.0)
                return create_app(hub, network=opts)

            url, app = stack.enter_context(serving(build))
            out.append(NetHub(url, hub, app, store))
        yield out


def push(h: NetHub, me: Identity, **changes: Any) -> str:
    """Publish an agent signed by ``me`` to ``h``; wait until its gate lists it."""
    spec = parse_spec({**SHOUT, "author": me.key_id, **changes})
    rec = SignedRecord.create(me, AGENT_PUBLISH, publish_payload(spec), time.time_ns() // 1000)
    resp = httpx.post(
        h.url + "/v1/agents",
        content=record_json(rec).encode(),
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 202, resp.text
    agent_id = str(resp.json()["id"])

    def listed() -> bool:
        return bool(httpx.get(f"{h.url}/v1/agents/{agent_id}/status").json()["state"] == "listed")

    wait_for(listed)
    return agent_id


def share_record(
    me: Identity,
    model: str,
    *,
    subject: str | None = None,
    decode: float = 40.0,
    hardware: dict[str, Any] | None = None,
    name: str = "net-model",
    seq: int | None = None,
) -> str:
    payload = {
        "subject": subject or f"run-of-{model[:8]}",  # one run is of one model
        "model": model,
        "model_name": name,
        "quantization": "Q4_K_M",
        "capabilities": {"reasoning": 0.6},
        "decode_tps": decode,
        "ttft_s": 0.2,
        "peak_rss_mb": 500.0,
        "hardware": hardware or HW,
        "day": "2026-12-01",
        "expires_at": int(time.time()) + 86_400,
    }
    seq = time.time_ns() // 1000 if seq is None else seq
    return record_json(SignedRecord.create(me, RESULT_SHARE, payload, seq))


def post_share(h: NetHub, raw: str) -> None:
    resp = httpx.post(
        h.url + "/v1/results", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 201, resp.text


def announced(h: NetHub, key: str, timeout: float = 20.0) -> None:
    """Wait until the hub has put ``key`` into the DHT."""
    wait_for(lambda: key in h.net.announced(), timeout)
