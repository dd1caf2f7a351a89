"""The DHT hubs find each other with: kademlia, storing only signed records.

A :class:`DhtNode` is one peer: a UDP endpoint running
:class:`~hainet.net.dht_protocol.HainetProtocol` (proven node ids, checked records:
see that module) through kademlia's ``Server.protocol_class`` hook.

**Values.**  ``put(key, value)`` signs a ``dht.value`` record ``{key, value,
expires_at, pow}`` (:mod:`hainet.net.records`) and stores it at the ``ksize`` nodes
closest to sha1(key) and locally.  ``get(key)`` returns every valid record held
under the key, one per signer (its highest seq), each checked again on arrival:
never a majority vote, and nothing a peer returns is trusted.

**Lookups** are kademlia's iterative search, written here rather than kademlia's
``SpiderCrawl`` for two reasons: a value lookup gathers the records of every node
among the closest (kademlia stops at the first value and votes), and it keeps
``alpha`` requests in flight without waiting on a silent peer longer than a
retransmission timeout from the round-trip times seen (RFC 6298: srtt + 4 rttvar,
at least 50 ms).  The silent peer's RPC timeout still runs and removes it from the
table when it expires.

**Upkeep** (:meth:`DhtNode.maintain`, every ``maintain_s``): ping bootstrap peers
missing from the table (this is how a partition heals), ping every peer in the table
(one that left is dropped when its ping times out), refresh the neighbourhood,
re-sign this node's own records with a fresh expiry every ``republish_s``, and
re-send others' records to the current closest nodes every ``republish_s``.  A node
that leaves stops re-signing, so its records vanish when they expire.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from kademlia.network import Server
from kademlia.node import Node

from hainet.errors import ValidationError
from hainet.net import pow as pow_
from hainet.net.dht_protocol import (
    NODE_ID_BYTES,
    HainetProtocol,
    RecordStore,
    check_value,
    digest,
    node_id_for,
    target_id,
)
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import DHT_VALUE, DOMAINS, record_json

__all__ = ["DhtConfig", "DhtNode", "Peer", "node_id_for", "target_id"]

_MIN_RTO_S = 0.05
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DhtConfig:
    """How a node runs.  Tests use a small ksize, low pow_bits, large per_prefix."""

    ksize: int = 20
    alpha: int = 3
    pow_bits: int = 20
    """Proof-of-work difficulty a node id must show (about 2**bits hashes to make)."""
    per_prefix: int = 2
    """Peers per address prefix (/24, /48) per bucket; loopback tests need many."""
    republish_s: float = 3600.0
    ttl_s: float = 86400.0
    """Default expiry of a record put by this node."""
    rpc_timeout_s: float = 2.0
    """A request unanswered this long fails, and its node leaves the routing table."""
    maintain_s: float = 300.0
    """How often :meth:`DhtNode.maintain` runs by itself."""

    def __post_init__(self) -> None:
        for name in ("ksize", "alpha", "per_prefix"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"DhtConfig.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.pow_bits, bool) or not 0 <= self.pow_bits <= pow_.MAX_BITS:
            raise ValidationError(
                f"DhtConfig.pow_bits must be 0..{pow_.MAX_BITS}, got {self.pow_bits!r}"
            )
        for f in fields(self):
            if f.name.endswith("_s"):
                value = getattr(self, f.name)
                if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                    raise ValidationError(f"DhtConfig.{f.name} must be > 0 seconds, got {value!r}")
        max_ttl = DOMAINS[DHT_VALUE].max_ttl
        if self.ttl_s > max_ttl:
            raise ValidationError(f"DhtConfig.ttl_s is over the {max_ttl} s a peer accepts")


@dataclass(frozen=True)
class Peer:
    """A node that proved its id."""

    key_id: str
    """The Identity key id (hex)."""
    node_id: bytes
    """20 bytes, derived from the Ed25519 public key (:func:`node_id_for`)."""
    host: str
    port: int


@dataclass
class _Own:
    value: dict[str, Any]
    ttl_s: float
    put_at: float


@dataclass
class _Lookup:
    responded: list[Node]
    raws: list[bytes]


class _Server(Server):  # type: ignore[misc]  # kademlia is untyped
    protocol_class = HainetProtocol

    def __init__(self, identity: Identity, pow_nonce: int, config: DhtConfig) -> None:
        super().__init__(
            ksize=config.ksize,
            alpha=config.alpha,
            node_id=node_id_for(identity.key_id),
        )
        # Not through the argument: kademlia tests `storage or ForgetfulStorage()`,
        # and an empty RecordStore is falsy.
        self.storage = RecordStore()
        self._identity = identity
        self._pow_nonce = pow_nonce
        self._config = config

    def _create_protocol(self) -> HainetProtocol:
        c = self._config
        return HainetProtocol(
            self.node,
            self.storage,
            self.ksize,
            identity=self._identity,
            pow_nonce=self._pow_nonce,
            pow_bits=c.pow_bits,
            per_prefix=c.per_prefix,
            rpc_timeout_s=c.rpc_timeout_s,
        )

    def refresh_table(self, interval: int = 3600) -> None:
        """DhtNode.maintain does the upkeep (kademlia's would republish unchecked)."""


class DhtNode:
    """One peer of the DHT (module docstring).  Make one with :meth:`start`."""

    def __init__(
        self,
        identity: Identity,
        config: DhtConfig,
        server: _Server,
        bootstrap: list[tuple[str, int]],
    ) -> None:
        self.identity = identity
        self.config = config
        self.node_id: bytes = server.node.id
        self._server = server
        self._protocol: HainetProtocol = server.protocol
        self._bootstrap_addrs = bootstrap
        sockname = server.transport.get_extra_info("sockname")
        self.address: tuple[str, int] = (str(sockname[0]), int(sockname[1]))
        self._own: dict[str, _Own] = {}
        self._last_seq: dict[str, int] = {}
        self._maintainer: asyncio.Task[None] | None = None
        self._stopped = False

    @classmethod
    async def start(
        cls,
        identity: Identity,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bootstrap: Sequence[tuple[str, int]] = (),
        config: DhtConfig | None = None,
        pow_nonce: int | None = None,
    ) -> DhtNode:
        """Listen on (host, port) (0: any free port), prove the work for this key
        (or use ``pow_nonce``, a proof solved earlier) and join through ``bootstrap``."""
        config = DhtConfig() if config is None else config
        if pow_nonce is None:
            pow_nonce = await asyncio.to_thread(pow_.solve, identity.key_id, config.pow_bits)
        addrs = [await _resolve(h, p) for h, p in bootstrap]
        server = _Server(identity, pow_nonce, config)
        try:
            await server.listen(port, interface=host)
        except OSError as exc:
            raise ValidationError(f"dht: cannot listen on {host}:{port}: {exc}") from None
        node = cls(identity, config, server, addrs)
        if addrs:
            await node._join(addrs)
        node._maintainer = asyncio.ensure_future(node._maintain_loop())
        return node

    @property
    def pow_nonce(self) -> int:
        return int(self._protocol.pow_nonce)

    @property
    def store(self) -> RecordStore:
        """The records this node holds for the network (checked, one per signer)."""
        return self._protocol.storage

    @property
    def bytes_received(self) -> int:
        """UDP payload bytes this node has received (for benchmarks)."""
        return int(self._protocol.bytes_received)

    # -- joining and upkeep -------------------------------------------------------

    async def _join(self, addrs: Sequence[tuple[str, int]]) -> int:
        proto = self._protocol
        answers = await asyncio.gather(*(proto.ping(a, self.node_id) for a in addrs))
        seeds: list[Node] = []
        for (host, port), (ok, nid) in zip(addrs, answers, strict=True):
            if not ok or not isinstance(nid, bytes) or len(nid) != NODE_ID_BYTES:
                continue
            node = Node(nid, host, port)
            if nid != self.node_id and await proto.ensure_proven(node):
                proto.welcome_if_new(node)
                seeds.append(node)
        if seeds:
            await self._lookup(self.node_id, seeds=seeds)
        return len(seeds)

    async def _maintain_loop(self) -> None:
        while not self._stopped:
            await asyncio.sleep(self.config.maintain_s)
            try:
                await self.maintain()
            except Exception as exc:  # upkeep must outlive one bad round
                log.warning("dht upkeep failed: %r", exc)

    async def maintain(self) -> None:
        """One round of upkeep (module docstring); runs every ``maintain_s`` by itself."""
        proto = self._protocol
        self.store.cull()
        known = {(p.host, p.port) for p in self.peers()}
        missing = [a for a in self._bootstrap_addrs if a not in known and a != self.address]
        if missing:
            await self._join(missing)
        # Ping the table: a peer that left is removed when its ping times out, so
        # lookups stop waiting on it (kademlia only notices on the next request).
        table = [n for bucket in proto.router.buckets for n in bucket.get_nodes()]
        gate = asyncio.Semaphore(32)  # a burst of a few dozen datagrams, not the table

        async def ping(node: Node) -> None:
            async with gate:
                await proto.call_ping(node)

        await asyncio.gather(*(ping(n) for n in table))
        await self._lookup(self.node_id)
        now = time.monotonic()
        for key, own in list(self._own.items()):
            if now - own.put_at >= self.config.republish_s:
                await self.put(key, own.value, ttl_s=own.ttl_s)
        due: dict[bytes, list[bytes]] = {}
        for dkey, held in self.store.items():
            mine = held.record.key_id == self.identity.key_id
            if not mine and now - held.stored_at >= self.config.republish_s:
                due.setdefault(dkey, []).append(held.raw)
                self.store.touch(dkey, held.record.key_id)
        for dkey, raws in due.items():
            found = await self._lookup(dkey)
            await asyncio.gather(
                *(proto.call_store(n, dkey, raw) for n in found.responded for raw in raws)
            )

    # -- the API ------------------------------------------------------------------

    async def put(
        self, key: str, value: dict[str, Any], *, ttl_s: float | None = None
    ) -> SignedRecord:
        """Sign a ``dht.value`` record and store it at the k closest nodes and here.

        ValidationError when the key or value is malformed or the record too big for
        one datagram.  A later put of the same key replaces it (a higher seq)."""
        ttl = self.config.ttl_s if ttl_s is None else ttl_s
        max_ttl = DOMAINS[DHT_VALUE].max_ttl
        if not isinstance(ttl, int | float) or not 1 <= ttl <= max_ttl:
            raise ValidationError(f"dht put {key!r}: ttl_s must be 1..{max_ttl} seconds")
        if not isinstance(key, str) or not 0 < len(key) <= 256:
            raise ValidationError("dht put: the key must be a string of 1 to 256 characters")
        if not isinstance(value, dict):
            raise ValidationError(f"dht put {key!r}: the value must be a dict (a JSON object)")
        seq = max(time.time_ns() // 1000, self._last_seq.get(key, -1) + 1)
        payload = {
            "key": key,
            "value": value,
            "expires_at": math.ceil(time.time() + ttl),  # never sooner than asked
            "pow": self.pow_nonce,
        }
        record = SignedRecord.create(self.identity, DHT_VALUE, payload, seq)
        raw = record_json(record).encode("utf-8")
        limit = DOMAINS[DHT_VALUE].max_bytes
        if len(raw) > limit:
            raise ValidationError(
                f"dht put {key!r}: the signed record is {len(raw)} bytes, over the "
                f"{limit}-byte limit of one datagram (put a pointer, not a body)"
            )
        dkey = digest(key)
        self.store.offer(dkey, check_value(raw, dkey, self.config.pow_bits))
        self._last_seq[key] = seq
        self._own[key] = _Own(value=record.payload["value"], ttl_s=ttl, put_at=time.monotonic())
        found = await self._lookup(dkey)
        await asyncio.gather(*(self._protocol.call_store(n, dkey, raw) for n in found.responded))
        return record

    async def get(self, key: str) -> list[SignedRecord]:
        """Every valid, unexpired record under ``key``, one per signer (its highest
        seq), sorted by signer; [] when none is found."""
        if not isinstance(key, str) or not 0 < len(key) <= 256:
            raise ValidationError("dht get: the key must be a string of 1 to 256 characters")
        dkey = digest(key)
        found = await self._lookup(dkey, values=True)
        best: dict[str, SignedRecord] = {
            h.record.key_id: h.record for h in self.store.records(dkey)
        }
        for raw in found.raws:
            try:
                rec = check_value(raw, dkey, self.config.pow_bits).record
            except ValidationError as exc:
                log.info("dht get %r: a peer returned a bad record: %s", key, exc)
                continue
            held = best.get(rec.key_id)
            if held is None or rec.seq > held.seq:
                best[rec.key_id] = rec
        return [best[k] for k in sorted(best)]

    async def closest(self, target: bytes, n: int) -> list[Peer]:
        """The n proven peers (this node included) XOR-closest to ``target``."""
        if not isinstance(target, bytes) or len(target) != NODE_ID_BYTES:
            raise ValidationError(f"dht closest: the target is {NODE_ID_BYTES} bytes")
        if n < 1:
            raise ValidationError(f"dht closest: n must be >= 1, got {n}")
        found = await self._lookup(target, k=max(n, self.config.ksize))
        proto = self._protocol
        peers = [self._self_peer()]
        proofs = await asyncio.gather(*(proto.ensure_proven(node) for node in found.responded))
        for node, ok in zip(found.responded, proofs, strict=True):
            key_id = proto.key_id_of(node) if ok else None
            if key_id is not None:
                peers.append(Peer(key_id, node.id, node.ip, node.port))
        t = int.from_bytes(target, "big")
        peers.sort(key=lambda p: int.from_bytes(p.node_id, "big") ^ t)
        return peers[:n]

    def peers(self) -> list[Peer]:
        """This node's routing table (every peer in it proved its id)."""
        proto = self._protocol
        out = []
        for bucket in proto.router.buckets:
            for node in bucket.get_nodes():
                key_id = proto.key_id_of(node)
                if key_id is not None:
                    out.append(Peer(key_id, node.id, node.ip, node.port))
        return out

    async def stop(self) -> None:
        """Leave: stop listening and upkeep (this node's records expire in time)."""
        if self._stopped:
            return
        self._stopped = True
        if self._maintainer is not None:
            self._maintainer.cancel()
        self._server.stop()
        self._protocol.close_outstanding()
        await asyncio.sleep(0)

    def _self_peer(self) -> Peer:
        return Peer(self.identity.key_id, self.node_id, *self.address)

    # -- the iterative lookup ----------------------------------------------------------

    def _rto(self) -> float:
        proto = self._protocol
        if proto.srtt is None:
            return self.config.rpc_timeout_s
        rto = proto.srtt + 4 * proto.rttvar
        return min(max(rto, _MIN_RTO_S), self.config.rpc_timeout_s)

    async def _ask(
        self, node: Node, target: bytes, values: bool
    ) -> tuple[bool, list[Node], list[bytes]]:
        proto = self._protocol
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        addr = (node.ip, node.port)
        call = proto.find_value if values else proto.find_node
        result = await call(addr, self.node_id, target)
        proto.handle_call_response(result, node)
        ok, answer = result
        if not ok:
            return False, [], []
        proto.observe_rtt(loop.time() - t0)
        raws: list[bytes] = []
        if values:
            if not isinstance(answer, dict):
                return False, [], []
            got = answer.get("value")
            raws = [r for r in got if isinstance(r, bytes)] if isinstance(got, list) else []
            answer = answer.get("nodes")
        return True, _nodes(answer, self.config.ksize), raws

    async def _lookup(
        self,
        target: bytes,
        *,
        values: bool = False,
        k: int | None = None,
        seeds: Sequence[Node] = (),
    ) -> _Lookup:
        """Iterative lookup of the k nodes closest to target (module docstring)."""
        k = self.config.ksize if k is None else k
        proto = self._protocol
        loop = asyncio.get_running_loop()
        t = int.from_bytes(target, "big")

        def dist(node: Node) -> int:
            return int(node.long_id) ^ t

        known: dict[bytes, Node] = {n.id: n for n in seeds}
        # More of the table than k: when the closest known are dead, the next ones
        # are asked (asked only while they could still be among the k closest).
        for n in proto.router.find_neighbors(Node(target), 4 * k):
            known.setdefault(n.id, n)
        asked: set[bytes] = set()
        responded: list[Node] = []
        raws: list[bytes] = []
        pending: dict[asyncio.Future[Any], tuple[Node, float]] = {}
        while True:
            now = loop.time()
            rto = self._rto()
            active = [f for f, (_, t0) in pending.items() if now - t0 < rto]
            best = sorted(responded, key=dist)[:k]
            bound = dist(best[-1]) if len(best) >= k else None
            for node in sorted(known.values(), key=dist):
                if len(active) >= self.config.alpha:
                    break
                if bound is not None and dist(node) >= bound:
                    break
                if node.id in asked or (node.id, node.ip, node.port) in proto.dead:
                    continue
                asked.add(node.id)
                fut = proto.spawn(self._ask(node, target, values))
                pending[fut] = (node, now)
                active.append(fut)
            if not active:
                break
            wait = min(rto - (now - pending[f][1]) for f in active)
            done, _ = await asyncio.wait(
                list(pending), timeout=max(wait, 0.001), return_when=asyncio.FIRST_COMPLETED
            )
            for fut in done:
                node, _t0 = pending.pop(fut)
                if fut.cancelled() or fut.exception() is not None:
                    continue
                ok, nodes, got = fut.result()
                if not ok:
                    continue
                responded.append(node)
                raws.extend(got)
                for m in nodes:
                    if m.id != self.node_id:
                        known.setdefault(m.id, m)
        # Late answers keep running as background tasks (proto.spawn): a dead peer's
        # timeout still removes it from the table.
        return _Lookup(sorted(responded, key=dist)[:k], raws)


def _nodes(answer: Any, cap: int) -> list[Node]:
    """Node tuples from a peer's answer, malformed ones dropped, at most ``cap``."""
    out: list[Node] = []
    if not isinstance(answer, list):
        return out
    for item in answer[: cap * 2]:
        if not isinstance(item, list | tuple) or len(item) != 3:
            continue
        nid, host, port = item
        if not isinstance(nid, bytes) or len(nid) != NODE_ID_BYTES:
            continue
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            continue
        if not 0 < port < 65536:
            continue
        out.append(Node(nid, host, port))
        if len(out) >= cap:
            break
    return out


async def _resolve(host: str, port: int) -> tuple[str, int]:
    """kademlia compares addresses as given: resolve a bootstrap name to an IP."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValidationError(f"dht bootstrap {host}:{port}: not a port")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ValidationError(f"dht bootstrap {host}:{port}: {exc}") from None
    for family, _type, _proto, _name, sockaddr in infos:
        if family == socket.AF_INET:
            return str(sockaddr[0]), int(sockaddr[1])
    return str(infos[0][4][0]), int(infos[0][4][1])
