"""net/dht.py against a hostile peer: every bad record and unproven id is refused,
and nothing is stored.  Real nodes on 127.0.0.1; the attacker speaks raw rpcudp."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import pytest
from kademlia.node import Node
from rpcudp.protocol import RPCProtocol

from hainet.errors import ValidationError
from hainet.net import pow as pow_
from hainet.net.dht import DhtNode
from hainet.net.dht_protocol import (
    PrefixLimitedTable,
    RecordStore,
    check_value,
    digest,
    node_id_for,
)
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import DHT_VALUE, DOMAINS, record_json

from .dht_util import TEST_CONFIG, cluster

BITS = TEST_CONFIG.pow_bits


def make(
    identity: Identity,
    key: str,
    value: dict[str, Any],
    *,
    seq: int = 1,
    expires_at: int | None = None,
    nonce: int | None = None,
) -> bytes:
    payload = {
        "key": key,
        "value": value,
        "expires_at": int(time.time() + 600) if expires_at is None else expires_at,
        "pow": pow_.solve(identity.key_id, BITS) if nonce is None else nonce,
    }
    return record_json(SignedRecord.create(identity, DHT_VALUE, payload, seq)).encode()


def failing_nonce(key_id: str, bits: int) -> int:
    return next(n for n in range(10_000) if not pow_.check(key_id, n, bits))


async def send(a: DhtNode, b: DhtNode, key: str, raw: Any) -> bool:
    ok, stored = await a._protocol.call_store(Node(b.node_id, *b.address), digest(key), raw)
    assert ok, "the store request was not answered"
    return bool(stored)


async def test_forged_replayed_expired_oversize_and_misfiled_records_are_never_stored() -> None:
    async with cluster(2) as (a, b):
        signer = Identity.generate()
        good = make(signer, "hub:x", {"url": "http://127.0.0.1:9"}, seq=5)
        forged = json.loads(good)
        forged["payload"]["value"]["url"] = "http://127.0.0.1:6666"
        now = int(time.time())
        limit = DOMAINS[DHT_VALUE].max_bytes
        bad = {
            "forged": json.dumps(forged).encode(),
            "expired": make(signer, "hub:x", {"u": 1}, expires_at=now - 1),
            "too far ahead": make(signer, "hub:x", {"u": 1}, expires_at=now + 30 * 86400),
            "oversize": make(signer, "hub:x", {"pad": "x" * (limit - 300)}),
            "no proof of work": make(
                signer, "hub:x", {"u": 1}, nonce=failing_nonce(signer.key_id, BITS)
            ),
            "not a record": b'{"hello": 1}',
            "not bytes": 12345,
        }
        assert len(bad["oversize"]) > limit
        for why, raw in bad.items():
            assert not await send(a, b, "hub:x", raw), why
        # Filed under another key than its own.
        assert not await send(a, b, "hub:y", good)
        assert len(b.store) == 0
        assert b._protocol.refused_values == len(bad) + 1

        # A replay: the newer seq is held, an older one is refused, the same one is a no-op.
        assert await send(a, b, "hub:x", good)
        older = make(signer, "hub:x", {"url": "http://127.0.0.1:1"}, seq=4)
        same_seq_other = make(signer, "hub:x", {"url": "http://127.0.0.1:2"}, seq=5)
        assert not await send(a, b, "hub:x", older)
        assert not await send(a, b, "hub:x", same_seq_other)
        assert await send(a, b, "hub:x", good)
        [held] = b.store.records(digest("hub:x"))
        assert held.record.seq == 5 and held.record.payload["value"] == {
            "url": "http://127.0.0.1:9"
        }
        assert [r.payload["value"] for r in await a.get("hub:x")] == [{"url": "http://127.0.0.1:9"}]


async def test_a_node_that_cannot_prove_its_id_gets_no_place_and_nothing_stored() -> None:
    async with cluster(3) as nodes:
        target = nodes[0]
        loop = asyncio.get_running_loop()
        # A bare rpcudp endpoint claiming a made-up id: it cannot answer the challenge.
        _, raw_peer = await loop.create_datagram_endpoint(
            lambda: RPCProtocol(wait_timeout=3), local_addr=("127.0.0.1", 0)
        )
        try:
            fake_id = bytes(range(20))
            ok, answer = await raw_peer.ping(target.address, fake_id)
            assert ok and answer == target.node_id
            signer = Identity.generate()
            raw = make(signer, "hub:z", {"u": 1})
            ok, stored = await raw_peer.store(target.address, fake_id, digest("hub:z"), raw)
            assert ok and stored is False
            assert fake_id not in {p.node_id for p in target.peers()}
            assert any(key[0] == fake_id for key in target._protocol.refused)
            assert len(target.store) == 0
        finally:
            raw_peer.transport.close()


async def test_an_id_claimed_with_another_key_is_refused() -> None:
    async with cluster(3) as nodes:
        target, victim = nodes[0], nodes[1]
        thief = await DhtNode.start(Identity.generate(), config=TEST_CONFIG)
        try:
            # The thief answers challenges with its own (valid) key and proof of work,
            # but names the victim's node id.
            thief._protocol.source_node = Node(victim.node_id)
            ok, _ = await thief._protocol.ping(target.address, victim.node_id)
            assert ok
            assert not await target._protocol.ensure_proven(Node(victim.node_id, *thief.address))
            entries = [(p.host, p.port) for p in target.peers() if p.node_id == victim.node_id]
            assert thief.address not in entries
            assert thief.identity.key_id not in {p.key_id for p in target.peers()}
        finally:
            await thief.stop()


async def test_sybil_flood_without_proof_of_work_gets_no_table_entry() -> None:
    config = dataclasses.replace(TEST_CONFIG, pow_bits=8)
    async with cluster(6, config) as honest:
        sybils = []
        try:
            for i in range(24):
                ident = Identity.generate()
                sybils.append(
                    await DhtNode.start(
                        ident,
                        bootstrap=[honest[i % 6].address],
                        config=config,
                        pow_nonce=failing_nonce(ident.key_id, 8),
                    )
                )
            with pytest.raises(ValidationError, match="proof of work"):
                await sybils[0].put("topic:coding", {"hub": "sybil"})
            for sybil in sybils[:6]:
                raw = make(sybil.identity, "topic:coding", {"hub": "sybil"}, nonce=sybil.pow_nonce)
                for h in honest:
                    await sybil._protocol.call_store(
                        Node(h.node_id, *h.address), digest("topic:coding"), raw
                    )
                await sybil.maintain()
            sybil_ids = {s.identity.key_id for s in sybils}
            # They did knock: every sybil was asked to prove itself and failed.
            refused = {(ip, port) for h in honest for _id, ip, port in h._protocol.refused}
            assert {s.address for s in sybils} <= refused
            assert sum(h._protocol.refused_values for h in honest) >= 6
            for node in honest:
                assert not sybil_ids & {p.key_id for p in node.peers()}
                assert all(h.record.key_id not in sybil_ids for _, h in node.store.items())
            # The honest network still works around them.
            await honest[2].put("topic:coding", {"hub": "honest"})
            for node in honest:
                assert [r.payload["value"] for r in await node.get("topic:coding")] == [
                    {"hub": "honest"}
                ]
        finally:
            for sybil in sybils:
                await sybil.stop()


@pytest.mark.slow
async def test_records_are_republished_and_a_node_that_leaves_expires() -> None:
    config = dataclasses.replace(TEST_CONFIG, republish_s=0.5)
    async with cluster(5, config) as nodes:
        leaver, stayer, reader = nodes[1], nodes[2], nodes[3]
        await leaver.put("hub:leaver", {"url": "a"}, ttl_s=2)
        first = await stayer.put("hub:stayer", {"url": "b"}, ttl_s=3)
        start = time.monotonic()
        await leaver.stop()
        await asyncio.sleep(1.0)
        await stayer.maintain()  # re-signs its own record: expires 3 s from now
        # The leaver's record expires within 3 s of its put (whole seconds, rounded up).
        await asyncio.sleep(3.1 - (time.monotonic() - start))
        assert await reader.get("hub:leaver") == []
        [again] = await reader.get("hub:stayer")
        assert again.seq > first.seq and again.payload["expires_at"] > first.payload["expires_at"]
        assert all(not n.store.records(digest("hub:leaver")) for n in nodes)


def test_check_value_names_what_is_wrong() -> None:
    signer = Identity.generate()
    raw = make(signer, "agent:a", {"hub": "h"})
    assert check_value(raw, digest("agent:a"), BITS).key == "agent:a"
    with pytest.raises(ValidationError, match="another key"):
        check_value(raw, digest("agent:b"), BITS)
    with pytest.raises(ValidationError, match="proof of work"):
        check_value(raw, None, 30)
    with pytest.raises(ValidationError, match="over the limit"):
        check_value(b"x" * 9000, None, BITS)
    with pytest.raises(ValidationError, match="exactly"):
        payload = {"key": "k", "value": {}, "expires_at": int(time.time() + 60)}
        check_value(
            record_json(SignedRecord.create(signer, DHT_VALUE, payload, 1)).encode(), None, 0
        )


def test_record_store_caps_signers_per_key() -> None:
    store = RecordStore(max_keys=2, max_signers=2)
    held = [check_value(make(Identity.generate(), "k", {"i": i}), None, BITS) for i in range(3)]
    assert store.offer(digest("k"), held[0]) and store.offer(digest("k"), held[1])
    with pytest.raises(ValidationError, match="2 signers"):
        store.offer(digest("k"), held[2])
    assert len(store) == 2
    # Expired records make room.
    assert store.records(digest("k"), now=time.time() + 10_000) == []
    assert store.offer(digest("k"), held[2], now=time.time())


def test_a_bucket_takes_few_peers_per_address_prefix() -> None:
    me = Node(node_id_for(Identity.generate().key_id))
    table = PrefixLimitedTable(None, 20, me, per_prefix=2)
    for i in range(5):
        table.add_contact(Node(node_id_for(Identity.generate().key_id), f"10.0.0.{i + 1}", 4000))
    for i in range(3):
        table.add_contact(Node(node_id_for(Identity.generate().key_id), f"10.0.{i + 1}.1", 4000))
    ips = [n.ip for b in table.buckets for n in b.nodes.values()]
    assert sum(ip.startswith("10.0.0.") for ip in ips) == 2
    assert len(ips) == 5


def test_proof_of_work_is_bound_to_the_key() -> None:
    a, b = Identity.generate().key_id, Identity.generate().key_id
    nonce = pow_.solve(a, 10)
    assert pow_.check(a, nonce, 10)
    assert pow_.check(a, nonce, 10) and not all(pow_.check(b, n, 10) for n in (nonce, nonce + 1))
    assert not pow_.check(a, -1, 10) and not pow_.check(a, True, 10)
    with pytest.raises(ValidationError, match="difficulty"):
        pow_.solve(a, 99)
