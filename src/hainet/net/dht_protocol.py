"""The kademlia protocol hainet runs: proven node ids, signed records only.

kademlia 2.2.3 stores whatever anyone sends, answers ``get`` by majority vote and
never checks a node id.  This module keeps its RPC layer (rpcudp), its routing table
and its node arithmetic, and replaces what it trusts:

**Node ids are proven.**  A node's id is the first 20 bytes of its key id
(:func:`node_id_for`), so anyone recomputes it from the public key.  Before a node
enters a routing table it answers a ``prove`` RPC: it signs our random 32-byte
challenge (domain ``dht.prove``, binding its id and ours) and shows a proof of work
over its key id (:mod:`hainet.net.pow`) at our difficulty.  The proof is asked of
the address the node spoke from, so a spoofed source address cannot pass it.  Until
then it gets answers but no place in a table, and nothing it sends is stored.

**Buckets hold few peers per address prefix** (/24 for IPv4, /48 for IPv6;
``per_prefix``), counting the replacement list too, so one network cannot fill a
table.

**Only valid records are stored** (:func:`check_value`): a ``dht.value``
:class:`~hainet.net.identity.SignedRecord` under the size limit (checked before it
is parsed), signature, expiry (in the future, at most the domain's ``max_ttl``
ahead), its own key hashing to the key it is stored under, its signer's proof of
work; and per (key, signer) only the highest seq (:class:`RecordStore`): a lower
seq is a replay and refused.  A find_value answer carries every held record (one
per signer) and the closest nodes; the asker checks every record again.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from kademlia.node import Node
from kademlia.protocol import KademliaProtocol
from kademlia.routing import RoutingTable
from kademlia.utils import digest

from hainet.errors import ValidationError
from hainet.net import pow as pow_
from hainet.net.identity import Identity, SignedRecord, key_id_of, verify
from hainet.net.records import DHT_VALUE, DOMAINS, check_record

__all__ = [
    "MAX_SIGNERS_PER_KEY",
    "NODE_ID_BYTES",
    "HainetProtocol",
    "HeldRecord",
    "RecordStore",
    "address_prefix",
    "check_value",
    "digest",
    "node_id_for",
    "target_id",
]

log = logging.getLogger(__name__)

NODE_ID_BYTES = 20
PROVE_DOMAIN = "dht.prove"
MAX_SIGNERS_PER_KEY = 64
"""Records one node holds under one key (one per signer); more signers are refused."""
MAX_KEYS = 50_000
"""Keys one node holds; past it new keys are refused until some expire."""
RESPONSE_BYTES = 60_000
"""Records packed into one find_value answer (a UDP datagram is at most 65,507)."""
_CACHE = 4096  # proven / refused / dead peers remembered
_REFUSE_S = 60.0  # a node that failed its proof is not asked again for this long
_MAX_PROVING = 256  # proofs in flight at once; past it newcomers wait for a later contact
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def node_id_for(key: str | bytes) -> bytes:
    """A node's 20-byte id from its key id (hex) or its raw 32-byte public key."""
    if isinstance(key, bytes):
        if len(key) != 32:
            raise ValidationError(f"node id: a public key is 32 bytes, not {len(key)}")
        key = key_id_of(key)
    if not isinstance(key, str) or not _HEX64.match(key):
        raise ValidationError("node id: expected a 64-hex key id or a 32-byte public key")
    return bytes.fromhex(key)[:NODE_ID_BYTES]


def target_id(data: bytes) -> bytes:
    """sha256 of ``data`` truncated to the node-id width: an XOR target."""
    return hashlib.sha256(data).digest()[:NODE_ID_BYTES]


def address_prefix(ip: str) -> str:
    """The network a bucket counts peers in: /24 for IPv4, /48 for IPv6."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    bits = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@dataclass(frozen=True)
class HeldRecord:
    """A checked ``dht.value`` record and its bytes, as held by a node."""

    record: SignedRecord
    raw: bytes
    expires_at: int
    stored_at: float
    """time.monotonic() when stored or last replicated (republishing is due after)."""

    @property
    def key(self) -> str:
        return str(self.record.payload["key"])


def check_value(
    raw: object, dkey: bytes | None, pow_bits: int, *, now: float | None = None
) -> HeldRecord:
    """A ``dht.value`` record received from a peer, checked; ValidationError otherwise.

    ``dkey`` is the 20-byte key it was sent under (None: not checked)."""
    limit = DOMAINS[DHT_VALUE].max_bytes
    if not isinstance(raw, bytes):
        raise ValidationError(f"dht value: bytes expected, got {type(raw).__name__}")
    if len(raw) > limit:
        raise ValidationError(f"dht value: {len(raw)} bytes, over the limit of {limit}")
    checked = check_record(raw, None, domain=DHT_VALUE, now=now)
    rec = checked.record
    if dkey is not None and digest(rec.payload["key"]) != dkey:
        raise ValidationError(
            f"record {checked.who}: sent under another key than its own ({rec.payload['key']!r})"
        )
    if not pow_.check(rec.key_id, rec.payload["pow"], pow_bits):
        raise ValidationError(
            f"record {checked.who}: the signer's proof of work does not reach {pow_bits} bits"
        )
    return HeldRecord(rec, raw, int(rec.payload["expires_at"]), time.monotonic())


class RecordStore:
    """The records a node holds: per 20-byte key, one per signer, its highest seq."""

    def __init__(self, max_keys: int = MAX_KEYS, max_signers: int = MAX_SIGNERS_PER_KEY) -> None:
        self._data: dict[bytes, dict[str, HeldRecord]] = {}
        self.max_keys = max_keys
        self.max_signers = max_signers

    def offer(self, dkey: bytes, held: HeldRecord, *, now: float | None = None) -> bool:
        """Hold ``held`` unless an equal or higher seq of its signer is held.

        True when held (or already held, byte for byte); ValidationError naming why not."""
        now = time.time() if now is None else now
        rec = held.record
        who = f"{rec.key_id[:12]} seq {rec.seq} for {held.key!r}"
        per_key = self._data.get(dkey)
        if per_key is None:
            if len(self._data) >= self.max_keys:
                self.cull(now)
            if len(self._data) >= self.max_keys:
                raise ValidationError(f"dht value {who}: this node holds {self.max_keys} keys")
            per_key = self._data[dkey] = {}
        old = per_key.get(rec.key_id)
        if old is not None:
            if old.record.seq > rec.seq or (
                old.record.seq == rec.seq and old.record.signature != rec.signature
            ):
                raise ValidationError(
                    f"dht value {who}: seq {old.record.seq} is already held: replayed or older"
                )
            if old.record.seq == rec.seq:
                return True  # the same record again (another holder republishing it)
        else:
            if len(per_key) >= self.max_signers:
                self._cull_key(dkey, now)
                per_key = self._data.setdefault(dkey, {})
            if len(per_key) >= self.max_signers:
                raise ValidationError(
                    f"dht value {who}: this node holds {self.max_signers} signers' records "
                    "for the key"
                )
        per_key[rec.key_id] = held
        return True

    def records(self, dkey: bytes, *, now: float | None = None) -> list[HeldRecord]:
        """The unexpired records under ``dkey``, newest expiry first."""
        self._cull_key(dkey, time.time() if now is None else now)
        held = self._data.get(dkey, {})
        return sorted(held.values(), key=lambda h: (-h.expires_at, h.record.key_id))

    def touch(self, dkey: bytes, key_id: str) -> None:
        """Mark a record replicated now (its next republish is a period away)."""
        held = self._data.get(dkey, {}).get(key_id)
        if held is not None:
            self._data[dkey][key_id] = replace(held, stored_at=time.monotonic())

    def _cull_key(self, dkey: bytes, now: float) -> None:
        per_key = self._data.get(dkey)
        if per_key is None:
            return
        for key_id in [k for k, h in per_key.items() if h.expires_at <= now]:
            del per_key[key_id]
        if not per_key:
            del self._data[dkey]

    def cull(self, now: float | None = None) -> None:
        """Drop every expired record."""
        now = time.time() if now is None else now
        for dkey in list(self._data):
            self._cull_key(dkey, now)

    def items(self) -> Iterator[tuple[bytes, HeldRecord]]:
        for dkey, per_key in list(self._data.items()):
            for held in list(per_key.values()):
                yield dkey, held

    def __len__(self) -> int:
        return sum(len(p) for p in self._data.values())


class PrefixLimitedTable(RoutingTable):  # type: ignore[misc]  # kademlia is untyped
    """kademlia's routing table, with at most ``per_prefix`` peers per address
    prefix in a bucket (its replacement list included)."""

    def __init__(self, protocol: Any, ksize: int, node: Node, per_prefix: int) -> None:
        self.per_prefix = per_prefix
        super().__init__(protocol, ksize, node)

    def add_contact(self, node: Node) -> None:
        bucket = self.buckets[self.get_bucket_for(node)]
        if node.id not in bucket.nodes and node.id not in bucket.replacement_nodes:
            prefix = address_prefix(node.ip)
            held = chain(bucket.nodes.values(), bucket.replacement_nodes.values())
            if sum(1 for n in held if address_prefix(n.ip) == prefix) >= self.per_prefix:
                log.debug("bucket full for prefix %s: %s not added", prefix, node)
                return
        super().add_contact(node)

    def find_neighbors(
        self, node: Node, k: int | None = None, exclude: Node | None = None
    ) -> list[Node]:
        """The k known nodes XOR-closest to ``node``.  kademlia walks buckets
        outward from the target's and stops at k, which is not the k closest when
        the target's range differs from ours; a table is small enough to sort."""
        k = k or self.ksize
        nodes = [
            n
            for bucket in self.buckets
            for n in bucket.nodes.values()
            if n.id != node.id and (exclude is None or not n.same_home_as(exclude))
        ]
        return sorted(nodes, key=lambda n: n.distance_to(node))[:k]


def _prove_payload(challenge: bytes, prover: bytes, verifier: bytes) -> dict[str, Any]:
    return {"challenge": challenge.hex(), "prover": prover.hex(), "verifier": verifier.hex()}


def _addr_key(node: Node) -> tuple[bytes, str, int]:
    return (node.id, node.ip, node.port)


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE:
        cache.popitem(last=False)


class HainetProtocol(KademliaProtocol):  # type: ignore[misc]  # kademlia is untyped
    """kademlia's protocol with proven node ids and checked records (module docstring).

    Remote calls go through rpcudp's attribute magic: ``self.prove(addr, ...)`` sends
    a ``prove`` request, so this class never defines a method of an RPC's name."""

    def __init__(
        self,
        source_node: Node,
        storage: RecordStore,
        ksize: int,
        *,
        identity: Identity,
        pow_nonce: int,
        pow_bits: int,
        per_prefix: int,
        rpc_timeout_s: float,
    ) -> None:
        super().__init__(source_node, storage, ksize)
        self._wait_timeout = rpc_timeout_s
        self.router = PrefixLimitedTable(self, ksize, source_node, per_prefix)
        self.storage: RecordStore = storage
        self.identity = identity
        self.pow_nonce = pow_nonce
        self.pow_bits = pow_bits
        self.proven: OrderedDict[tuple[bytes, str, int], str] = OrderedDict()
        self.refused: OrderedDict[tuple[bytes, str, int], float] = OrderedDict()
        self.dead: OrderedDict[tuple[bytes, str, int], float] = OrderedDict()
        self._proving: dict[tuple[bytes, str, int], asyncio.Future[bool]] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self.bytes_received = 0
        self.datagrams_received = 0
        self.refused_values = 0
        # Smoothed round-trip time and its variation (RFC 6298), for lookups.
        self.srtt: float | None = None
        self.rttvar = 0.0

    # -- plumbing ---------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run ``coro`` in the background, kept until stop() and its errors logged."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("dht background task failed: %r", task.exception())

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.bytes_received += len(data)
        self.datagrams_received += 1
        self.spawn(self._solve_datagram(data, addr))

    async def _accept_request(self, msg_id: bytes, data: Any, address: Any) -> None:
        # rpcudp raises on a malformed request, or calls a handler with whatever
        # arguments arrived: a peer's garbage ends here, logged, never answered.
        try:
            await super()._accept_request(msg_id, data, address)
        except Exception as exc:
            log.debug("refused a request from %s: %r", address, exc)

    def close_outstanding(self) -> None:
        """Answer every request still waiting as failed (the node is stopping)."""
        for future, timer in list(self._outstanding.values()):
            timer.cancel()
            if not future.done():
                future.set_result((False, None))
        self._outstanding.clear()
        for fut in list(self._proving.values()):
            fut.cancel()
        for task in list(self.tasks):
            task.cancel()

    def observe_rtt(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt

    def _sender(self, sender: Any, nodeid: Any) -> Node | None:
        if not isinstance(nodeid, bytes) or len(nodeid) != NODE_ID_BYTES:
            return None
        if nodeid == self.source_node.id:
            return None
        return Node(nodeid, sender[0], sender[1])

    # -- proving a node id --------------------------------------------------------

    async def ensure_proven(self, node: Node) -> bool:
        """True once ``node`` has proven its id from its address (asked at most once at
        a time; a failure is remembered for a minute)."""
        key = _addr_key(node)
        if key in self.proven:
            return True
        refused_at = self.refused.get(key)
        if refused_at is not None and time.monotonic() - refused_at < _REFUSE_S:
            return False
        fut = self._proving.get(key)
        if fut is None:
            if len(self._proving) >= _MAX_PROVING:
                return False
            fut = asyncio.ensure_future(self._prove(node))
            self._proving[key] = fut
            fut.add_done_callback(lambda _f: self._proving.pop(key, None))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            return False

    async def _prove(self, node: Node) -> bool:
        key = _addr_key(node)
        challenge = os.urandom(32)
        ok, answer = await self.prove((node.ip, node.port), self.source_node.id, challenge)
        key_id = self._check_proof(node, challenge, answer) if ok else None
        if key_id is None:
            log.info("node %s at %s:%s did not prove its id", node.id.hex()[:12], *key[1:])
            _remember(self.refused, key, time.monotonic())
            return False
        _remember(self.proven, key, key_id)
        return True

    def _check_proof(self, node: Node, challenge: bytes, answer: Any) -> str | None:
        if not isinstance(answer, list | tuple) or len(answer) != 3:
            return None
        public, nonce, signature = answer
        if not isinstance(public, bytes) or len(public) != 32:
            return None
        if not isinstance(signature, bytes) or len(signature) != 64:
            return None
        key_id = key_id_of(public)
        if node_id_for(key_id) != node.id:
            return None  # a valid key, but not the one this id belongs to
        if not pow_.check(key_id, nonce, self.pow_bits):
            return None
        payload = _prove_payload(challenge, node.id, self.source_node.id)
        if not verify(public, PROVE_DOMAIN, payload, signature):
            return None
        return key_id

    def rpc_prove(self, sender: Any, nodeid: Any, challenge: Any) -> list[Any] | None:
        if not isinstance(nodeid, bytes) or len(nodeid) != NODE_ID_BYTES:
            return None
        if not isinstance(challenge, bytes) or len(challenge) != 32:
            return None
        payload = _prove_payload(challenge, self.source_node.id, nodeid)
        signature = self.identity.sign(PROVE_DOMAIN, payload)
        return [self.identity.public_key_bytes(), self.pow_nonce, signature]

    def key_id_of(self, node: Node) -> str | None:
        """The key id ``node`` proved from its address (None: not proven)."""
        return self.proven.get(_addr_key(node))

    # -- the routing table ------------------------------------------------------

    def welcome_if_new(self, node: Node) -> None:
        """Admit ``node`` to the table once it has proven its id (kademlia admits
        anyone who speaks)."""
        if node.id == self.source_node.id:
            return
        if _addr_key(node) in self.proven:
            self._admit(node)
        else:
            self.spawn(self._prove_then_admit(node))

    async def _prove_then_admit(self, node: Node) -> None:
        if await self.ensure_proven(node):
            self._admit(node)

    def _admit(self, node: Node) -> None:
        if not self.router.is_new_node(node):
            return
        # Section 2.5 of the paper, as kademlia does it: hand a newcomer the records
        # it is now among the closest for, if we were the closest so far.
        for dkey in {dkey for dkey, _ in self.storage.items()}:
            keynode = Node(dkey)
            neighbors = self.router.find_neighbors(keynode)
            if neighbors:
                new_close = node.distance_to(keynode) < neighbors[-1].distance_to(keynode)
                we_closest = self.source_node.distance_to(keynode) < neighbors[0].distance_to(
                    keynode
                )
            if not neighbors or (new_close and we_closest):
                for held in self.storage.records(dkey):
                    self.spawn(self.call_store(node, dkey, held.raw))
        self.router.add_contact(node)

    def handle_call_response(self, result: Any, node: Node) -> Any:
        if not result[0]:
            _remember(self.dead, _addr_key(node), time.monotonic())
            # Remove only the entry at this address: a peer naming a live node's id
            # at a dead address must not evict it.
            bucket = self.router.buckets[self.router.get_bucket_for(node)]
            held = bucket.nodes.get(node.id) or bucket.replacement_nodes.get(node.id)
            if held is not None and (held.ip, held.port) == (node.ip, node.port):
                self.router.remove_contact(node)
            return result
        self.welcome_if_new(node)
        return result

    def neighbor_tuples(self, key: bytes, exclude: Node | None) -> list[tuple[bytes, str, int]]:
        node = Node(key)
        return [tuple(n) for n in self.router.find_neighbors(node, exclude=exclude)]

    # -- RPC handlers -------------------------------------------------------------

    def rpc_ping(self, sender: Any, nodeid: Any) -> bytes:
        node = self._sender(sender, nodeid)
        if node is not None:
            self.welcome_if_new(node)
        return bytes(self.source_node.id)

    async def rpc_store(self, sender: Any, nodeid: Any, key: Any, value: Any) -> bool:
        node = self._sender(sender, nodeid)
        if node is None or not isinstance(key, bytes) or len(key) != NODE_ID_BYTES:
            return False
        if not await self.ensure_proven(node):
            self.refused_values += 1
            return False
        self.welcome_if_new(node)
        try:
            return self.storage.offer(key, check_value(value, key, self.pow_bits))
        except ValidationError as exc:
            self.refused_values += 1
            log.info("refused a dht value from %s:%s: %s", sender[0], sender[1], exc)
            return False

    def rpc_find_node(self, sender: Any, nodeid: Any, key: Any) -> list[tuple[bytes, str, int]]:
        node = self._sender(sender, nodeid)
        if not isinstance(key, bytes) or len(key) != NODE_ID_BYTES:
            return []
        if node is not None:
            self.welcome_if_new(node)
        return self.neighbor_tuples(key, node)

    def rpc_find_value(self, sender: Any, nodeid: Any, key: Any) -> dict[str, Any]:
        nodes = self.rpc_find_node(sender, nodeid, key)
        values: list[bytes] = []
        if isinstance(key, bytes):
            budget = RESPONSE_BYTES - 40 * len(nodes)
            for held in self.storage.records(key):
                budget -= len(held.raw) + 5
                if budget < 0:
                    break
                values.append(held.raw)
        return {"value": values, "nodes": nodes}
