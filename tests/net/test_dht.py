"""net/dht.py on loopback: 12 real nodes over UDP, small k, so lookups route."""

from __future__ import annotations

import dataclasses

import pytest

from hainet.errors import ValidationError
from hainet.net.dht import DhtConfig, DhtNode, node_id_for, target_id
from hainet.net.dht_protocol import digest
from hainet.net.identity import Identity

from .dht_util import TEST_CONFIG, cluster, partition


def holders(nodes: list[DhtNode], key: str) -> list[DhtNode]:
    return [n for n in nodes if n.store.records(digest(key))]


async def test_a_record_put_at_one_node_is_found_from_every_other() -> None:
    async with cluster(12) as nodes:
        putter = nodes[5]
        rec = await putter.put("hub:demo", {"url": "http://127.0.0.1:1", "api": "v1"})
        # k = 3: the record sits at the 3 closest nodes and the putter, not everywhere.
        assert 1 < len(holders(nodes, "hub:demo")) <= 4
        for node in nodes:
            got = await node.get("hub:demo")
            assert [r.key_id for r in got] == [putter.identity.key_id], node.address
            assert got[0].payload["value"] == {"url": "http://127.0.0.1:1", "api": "v1"}
            assert got[0].seq == rec.seq
        assert await nodes[0].get("hub:nobody") == []


async def test_each_signer_has_its_own_record_and_a_higher_seq_replaces() -> None:
    async with cluster(12) as nodes:
        await nodes[1].put("topic:coding", {"hub": "a"})
        await nodes[2].put("topic:coding", {"hub": "b"})
        newer = await nodes[1].put("topic:coding", {"hub": "a2"})
        for node in (nodes[0], nodes[7], nodes[11]):
            got = await node.get("topic:coding")
            by_signer = {r.key_id: r.payload["value"] for r in got}
            assert by_signer == {
                nodes[1].identity.key_id: {"hub": "a2"},
                nodes[2].identity.key_id: {"hub": "b"},
            }
            assert max(r.seq for r in got if r.key_id == nodes[1].identity.key_id) == newer.seq


async def test_still_found_after_three_nodes_stop() -> None:
    async with cluster(12) as nodes:
        putter = nodes[4]
        await putter.put("agent:abc", {"hub": putter.identity.key_id})
        held = [n for n in holders(nodes, "agent:abc") if n is not putter]
        assert len(held) >= 2
        # The worst three to lose: the putter and two of the replicas.
        gone = [putter, *held[:2]]
        for node in gone:
            await node.stop()
        alive = [n for n in nodes if n not in gone]
        for node in alive:
            got = await node.get("agent:abc")
            assert [r.key_id for r in got] == [putter.identity.key_id]


async def test_a_partition_heals_when_lifted() -> None:
    config = dataclasses.replace(TEST_CONFIG, republish_s=0.01)
    async with cluster(12, config) as nodes:
        side_a, side_b = nodes[:6], nodes[6:]
        heal = partition(side_a, side_b)
        await side_a[2].put("model:feed", {"hub": "x"})
        assert all(not n.store.records(digest("model:feed")) for n in side_b)
        for node in side_b[:2]:
            assert await node.get("model:feed") == []
        heal()
        # Upkeep: B nodes ping their bootstrap (in A) again, then records are
        # republished to the k closest of the whole network.
        for _ in range(2):
            for node in nodes:
                await node.maintain()
        for node in side_b:
            got = await node.get("model:feed")
            assert [r.key_id for r in got] == [side_a[2].identity.key_id]


async def test_closest_matches_brute_force() -> None:
    async with cluster(12) as nodes:
        target = target_id(b"spec-id" + b"epoch-7")
        want = sorted(
            nodes, key=lambda n: int.from_bytes(n.node_id, "big") ^ int.from_bytes(target, "big")
        )
        for asker in (nodes[0], nodes[9]):
            peers = await asker.closest(target, 4)
            assert [p.node_id for p in peers] == [n.node_id for n in want[:4]]
            assert [p.key_id for p in peers] == [n.identity.key_id for n in want[:4]]
            assert all(node_id_for(p.key_id) == p.node_id for p in peers)


async def test_every_peer_in_a_table_is_a_proven_node_of_the_cluster() -> None:
    async with cluster(12) as nodes:
        ids = {n.identity.key_id: n for n in nodes}
        for node in nodes:
            assert node.peers()
            for peer in node.peers():
                assert ids[peer.key_id].address == (peer.host, peer.port)
                assert peer.node_id == node_id_for(peer.key_id)


async def test_put_refuses_oversize_and_malformed_values() -> None:
    async with cluster(2) as nodes:
        with pytest.raises(ValidationError, match=r"bytes, over the \d+-byte limit"):
            await nodes[0].put("agent:big", {"blob": "x" * 9000})
        with pytest.raises(ValidationError, match="ttl_s"):
            await nodes[0].put("agent:x", {"a": 1}, ttl_s=30 * 86400)
        with pytest.raises(ValidationError, match="key must be"):
            await nodes[0].put("", {"a": 1})
        assert len(nodes[0].store) == 0 and len(nodes[1].store) == 0


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="ksize"):
        DhtConfig(ksize=0)
    with pytest.raises(ValidationError, match="pow_bits"):
        DhtConfig(pow_bits=99)
    with pytest.raises(ValidationError, match="republish_s"):
        DhtConfig(republish_s=0)


def test_node_id_is_derived_from_the_key() -> None:
    ident = Identity.generate()
    assert node_id_for(ident.key_id) == node_id_for(ident.public_key_bytes())
    assert node_id_for(ident.key_id) == bytes.fromhex(ident.key_id)[:20]
    assert len(target_id(b"x")) == 20
    with pytest.raises(ValidationError):
        node_id_for("not hex")


async def test_start_refuses_a_bad_bootstrap_address() -> None:
    with pytest.raises(ValidationError, match="bootstrap"):
        await DhtNode.start(Identity.generate(), bootstrap=[("127.0.0.1", 0)], config=TEST_CONFIG)
