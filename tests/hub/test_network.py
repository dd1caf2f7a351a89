"""Hubs on the network: three real hubs (uvicorn + DhtNode each, one process) announce
their agents and shared models; others find them, search them, pool their results."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hainet.cli import app
from hainet.hub.discovery import find, pool_model
from hainet.net.dht import DhtNode
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import RESULT_SHARE
from tests.hub.networked import (
    DHT_ENV,
    TEST_DHT,
    NetHub,
    announced,
    hubs_on_network,
    post_share,
    push,
    share_record,
)

cli = CliRunner()
SHA_A = "a1" * 32  # shared by 5 signers over 3 hubs
SHA_B = "b2" * 32  # 4 honest signers, and a tampered share served by the third hub


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NetHub]]:
    with hubs_on_network(tmp_path_factory.mktemp("net"), 3) as out:
        yield out


@pytest.fixture(scope="module")
def shared(hubs: list[NetHub]) -> dict[str, Any]:
    a, b, c = hubs
    keys = [Identity.generate() for _ in range(6)]
    records = {k.key_id: share_record(k, SHA_A, name="pooled-a") for k in keys[:5]}
    where = [a, a, b, b, c]
    for k, h in zip(keys[:5], where, strict=True):
        post_share(h, records[k.key_id])
    post_share(b, records[keys[0].key_id])  # the same share on a second hub counts once
    for k, h in zip(keys[:4], [a, b, c, c], strict=True):
        post_share(h, share_record(k, SHA_B, name="pooled-b", decode=20.0))
    # A fifth "signer" of SHA_B: a share whose figures were raised after signing,
    # stored behind the hub's back (as a lying or broken hub would serve it).
    forged = json.loads(share_record(keys[5], SHA_B, name="pooled-b", decode=5.0))
    forged["payload"]["decode_tps"] = 5000.0
    rec = SignedRecord.model_validate(forged)
    c.hub.shares.put(
        domain=RESULT_SHARE,
        signer=rec.key_id,
        subject=rec.payload["subject"],
        seq=rec.seq,
        model=SHA_B,
        quantization="Q4_K_M",
        hardware_class="x",
        payload=json.dumps(rec.payload),
        record=json.dumps(forged),
        expires_at=int(rec.payload["expires_at"]),
    )
    for h in (a, b, c):
        announced(h, f"model:{SHA_A}")
        announced(h, f"model:{SHA_B}")
    return {"keys": keys}


async def client_node(h: NetHub) -> DhtNode:
    return await DhtNode.start(Identity.generate(), bootstrap=[h.dht], config=TEST_DHT)


def test_a_hub_finds_another_hubs_agent_by_name_and_id(hubs: list[NetHub]) -> None:
    a, _, c = hubs
    agent_id = push(a, Identity.generate())
    announced(a, "name:shout")
    me = a.hub.identity.key_id

    async def look() -> tuple[list[Any], list[Any], list[Any]]:
        node = c.net.node
        return (
            await find(node, "name:shout"),
            await find(node, f"agent:{agent_id}"),
            await find(node, f"hub:{me}"),
        )

    by_name, by_id, where = c.call(look)
    assert [(p.hub, p.url, p.spec_id) for p in by_name] == [(me, a.url, agent_id)]
    assert [(p.hub, p.url, p.spec_id) for p in by_id] == [(me, a.url, agent_id)]
    assert [p.url for p in where] == [a.url]
    # The hub's signed hello advertises its DHT node, so a client can join through it.
    hello = SignedRecord.model_validate(httpx.get(a.url + "/.well-known/hainet-hub").json())
    hello.verify()
    assert hello.payload["dht"] == {"host": a.dht[0], "port": a.dht[1]}


def test_agents_search_network_merges_answers_and_dedupes_by_spec_id(
    hubs: list[NetHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = hubs
    me = Identity.generate()
    loud = push(a, me, name="loud")
    assert push(b, me, name="loud") == loud  # the very same spec on two hubs
    louder = push(c, me, name="louder", purpose="Write the word in capital letters, louder.")
    for h in hubs:
        announced(h, "topic:formatting")
    for k, v in DHT_ENV.items():
        monkeypatch.setenv(k, v)
    args = ["agents", "search", "formatting capital letters", "--network", "--json"]
    out = cli.invoke(app, [*args, "--bootstrap", f"{b.dht[0]}:{b.dht[1]}", "--threshold", "-1"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.output)
    ids = [h["id"] for h in found["items"]]
    assert len(ids) == len(set(ids)) and {loud, louder} <= set(ids)
    by_id = {h["id"]: h for h in found["items"]}
    assert by_id[loud]["hubs"] == sorted([a.url, b.url]) and by_id[loud]["hub"] in (a.url, b.url)
    assert by_id[louder]["hubs"] == [c.url]
    assert set(found["hubs"]) == {a.url, b.url, c.url} and found["failed"] == {}


async def test_five_signers_over_three_hubs_make_a_model_network_tested(
    hubs: list[NetHub], shared: dict[str, Any]
) -> None:
    node = await client_node(hubs[1])
    try:
        answer = await pool_model(node, SHA_A)
    finally:
        await node.stop()
    mp = answer.pool.model(SHA_A)
    assert mp is not None and mp.signers == 5 and mp.network_tested
    assert mp.hubs == sorted(h.url for h in hubs) and answer.pool.dropped == []
    (group,) = mp.classes
    assert group["signers"] == 5 and group["runs"] == 5  # the copy on a second hub: once


async def test_four_signers_and_a_tampered_share_do_not(
    hubs: list[NetHub], shared: dict[str, Any]
) -> None:
    node = await client_node(hubs[0])
    try:
        answer = await pool_model(node, SHA_B)
    finally:
        await node.stop()
    mp = answer.pool.model(SHA_B)
    assert mp is not None and mp.signers == 4 and not mp.network_tested
    (dropped,) = answer.pool.dropped
    assert dropped.hub == hubs[2].url and "bad signature" in dropped.reason
    assert mp.classes[0]["figures"]["decode_tps"]["max"] == 20.0  # the 5000 never counted


def test_select_network_on_a_home_with_no_runs_picks_the_networks_model(
    hubs: list[NetHub], shared: dict[str, Any], monkeypatch: pytest.MonkeyPatch, hainet_home: Path
) -> None:
    for k, v in DHT_ENV.items():
        monkeypatch.setenv(k, v)
    plain = cli.invoke(app, ["select", "--task", "speed_critical", "--json"])
    assert plain.exit_code != 0  # nothing measured here
    boot = f"{hubs[2].dht[0]}:{hubs[2].dht[1]}"
    out = cli.invoke(
        app, ["select", "--task", "speed_critical", "--network", "--bootstrap", boot, "--json"]
    )
    assert out.exit_code == 0, out.output
    answer = json.loads(out.output)
    assert answer["selected_model"] == "pooled-a" and answer["considered"] == 1  # b: 4 signers
    origin = answer["origin"]
    assert origin["source"] == "network" and origin["model_sha256"] == SHA_A
    assert origin["signers"] == 5 and origin["same_hardware_class"] is False
    assert "not run here" in answer["reason"] and "nearest hardware class" in answer["reason"]
    assert answer["basis"]["network"]["candidates"] == 1
    assert answer["basis"]["candidates"][0]["origin"]["hardware_class"].startswith("Test CPU")
    text = cli.invoke(app, ["select", "--task", "speed_critical", "--network", "--bootstrap", boot])
    assert text.exit_code == 0 and "not run here" in text.output
