"""Helpers for the DHT tests: a loopback cluster, and a transport that drops datagrams."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from hainet.net.dht import DhtConfig, DhtNode
from hainet.net.identity import Identity

# Small k so that lookups route (12 nodes are not a full mesh), low proof of work,
# every node on 127.0.0.1 so the per-prefix limit must be lifted, short timeouts.
TEST_CONFIG = DhtConfig(
    ksize=3, alpha=3, pow_bits=6, per_prefix=1000, rpc_timeout_s=0.5, maintain_s=3600
)


class DroppingTransport:
    """Wraps a node's UDP transport; drops what it sends to blocked addresses."""

    def __init__(self, inner: Any, blocked: Callable[[tuple[str, int]], bool]) -> None:
        self.inner = inner
        self.blocked = blocked
        self.dropped = 0

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.blocked((addr[0], addr[1])):
            self.dropped += 1
            return
        self.inner.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def partition(a: list[DhtNode], b: list[DhtNode]) -> Callable[[], None]:
    """Drop every datagram between the two halves; returns the function that heals."""
    side_a = {n.address for n in a}
    side_b = {n.address for n in b}
    wrapped = []
    for nodes, other in ((a, side_b), (b, side_a)):
        for node in nodes:
            proto = node._protocol
            inner = proto.transport
            proto.transport = DroppingTransport(inner, lambda addr, other=other: addr in other)
            wrapped.append((proto, inner))

    def heal() -> None:
        for proto, inner in wrapped:
            proto.transport = inner

    return heal


@contextlib.asynccontextmanager
async def cluster(n: int, config: DhtConfig = TEST_CONFIG) -> AsyncIterator[list[DhtNode]]:
    """n nodes on 127.0.0.1 (port 0), each joining through the first."""
    nodes: list[DhtNode] = []
    try:
        first = await DhtNode.start(Identity.generate(), config=config)
        nodes.append(first)
        for _ in range(n - 1):
            nodes.append(
                await DhtNode.start(Identity.generate(), bootstrap=[first.address], config=config)
            )
        # A second round of lookups so that early joiners learn of later ones.
        for node in nodes:
            await node.maintain()
        yield nodes
    finally:
        for node in nodes:
            await node.stop()
