"""Build a hub from settings and serve it with uvicorn (``hainet hub serve``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI

from hainet.agents.marketplace import Marketplace
from hainet.agents.workflow import AgentRunner, open_runner
from hainet.backends import Catalog
from hainet.config import Settings
from hainet.errors import ConfigError
from hainet.hub.app import create_app
from hainet.hub.limits import RateLimiter
from hainet.hub.network import NetworkOptions, parse_address
from hainet.hub.service import Hub, RunnerFactory
from hainet.net.dht import DhtConfig
from hainet.net.identity import Identity, verify
from hainet.store import Store

__all__ = ["HUB_IDENTITY_DIR", "build_app", "dht_config", "network_options", "serve"]

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
    network: NetworkOptions | None = None,
) -> FastAPI:
    """A hub over ``cfg``'s store (``HAINET_DB``, else SQLite in home), its identity
    in home, its gate on ``cfg.default_model`` (the bundled model by default); on
    the DHT with ``network``."""
    store = Store(cfg.db_url)
    market = Marketplace(store, verify_signature=verify)
    hub = Hub(
        market,
        Identity.load_or_create(cfg.home / HUB_IDENTITY_DIR),
        gate_runner or _gate_runner(cfg),
        threshold=cfg.publish_threshold,
        key_limit=RateLimiter(publishes_per_minute, 60.0),
    )
    return create_app(
        hub, address_limit=RateLimiter(writes_per_minute_per_address, 60.0), network=network
    )


def dht_config(cfg: Settings) -> DhtConfig:
    """The DHT settings of config.toml (``dht_ksize``, ``dht_pow_bits``,
    ``dht_per_prefix``) over the defaults; every node of one network must agree."""
    given = {
        "ksize": cfg.dht_ksize,
        "pow_bits": cfg.dht_pow_bits,
        "per_prefix": cfg.dht_per_prefix,
    }
    return DhtConfig(**{k: v for k, v in given.items() if v is not None})


def network_options(
    cfg: Settings,
    *,
    public_url: str,
    host: str,
    dht_port: int | None = None,
    bootstrap: Sequence[str] = (),
) -> NetworkOptions | None:
    """How ``hub serve`` joins the DHT: flags over config.toml; None stays off it."""
    port = cfg.dht_port if dht_port is None else dht_port
    if port is None:
        return None
    peers = [parse_address(b) for b in (bootstrap or cfg.dht_bootstrap)]
    return NetworkOptions(
        public_url=public_url, host=host, port=port, bootstrap=peers, config=dht_config(cfg)
    )


def serve(
    cfg: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8731,
    dht_port: int | None = None,
    bootstrap: Sequence[str] = (),
    public_url: str | None = None,
) -> None:
    """Serve the hub; with a DHT port (flag or config), on the network too.

    The HTTP socket is bound here, before the app is built, so that with ``--port 0``
    the URL the hub announces has the port the system picked."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = public_url or f"http://{shown}:{bound}"
    network = network_options(
        cfg, public_url=url, host=host, dht_port=dht_port, bootstrap=bootstrap
    )
    config = uvicorn.Config(build_app(cfg, network=network), log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
