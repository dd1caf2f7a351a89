"""The hub over PostgreSQL (a throwaway server from the Debian binaries): the same
flow as on SQLite, through the agent store, the ledger and the marketplace's gate."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hainet.agents.marketplace import RATING_DOMAIN, Marketplace, rating_payload
from hainet.agents.spec import parse_spec
from hainet.hub.app import create_app
from hainet.hub.client import HubClient
from hainet.hub.service import Hub
from hainet.net.identity import Identity, SignedRecord, verify
from hainet.net.records import (
    AGENT_PUBLISH,
    AGENT_RATING,
    RESULT_SHARE,
    publish_payload,
    record_json,
)
from hainet.store import Store
from hainet.store.ledger import Ledger
from tests.hub.servers import SHOUT, fake_embed, running, upper_runner, wait_for
from tests.store.pg import fresh_database, pg_bin, pg_server  # noqa: F401 - pg_server: a fixture

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL binaries missing (make test installs)"),
]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's throwaway server."""
    return fresh_database(request.getfixturevalue("pg_server"))


def test_the_hub_on_postgresql(pg_url: str) -> None:
    with Store(pg_url) as store:
        market = Marketplace(store, embedder=fake_embed, verify_signature=verify)
        hub = Hub(market, Identity.generate(), upper_runner())
        me, fan = Identity.generate(), Identity.generate()
        with running(create_app(hub)) as url, HubClient(url) as client:
            spec = parse_spec({**SHOUT, "author": me.key_id})
            assert client.push(spec, me, seq=1)["state"] == "pending"
            wait_for(lambda: client.status(spec.id)["state"] == "listed")
            child = spec.derive(version="1.1.0", lineage=[spec.id])
            client.push(child, me, seq=2)
            wait_for(lambda: client.status(child.id)["state"] == "listed")
            versions = httpx.get(url + "/v1/names/shout/versions").json()["items"]
            assert [v["lineage"] for v in versions] == [[], [spec.id]]
            assert client.list_agents(limit=1)["metadata"]["next_cursor"]
            assert [h["id"] for h in client.search("capital letters")][:2]
            assert client.pull("shout@1.0.0").spec.id == spec.id
            inner = fan.sign(RATING_DOMAIN, rating_payload(spec.id, fan.key_id, 4, ""))
            assert client.rate(spec.id, fan, 4, "", inner)["stars"] == 4
            replay = SignedRecord.create(me, AGENT_PUBLISH, publish_payload(spec), 1)
            resp = httpx.post(url + "/v1/agents", content=record_json(replay))
            assert resp.status_code == 400 and "replayed or older" in resp.json()["detail"]
        ledger = Ledger(store)
        assert ledger.count(state="listed") == 2
        assert ledger.highest(me.key_id, AGENT_PUBLISH, "shout") == 2
        assert market.agents.get(spec.id).status == "published"
        assert [r.stars for r in market.agents.ratings(spec.id)] == [4]
        big_seq = time.time_ns() // 1000  # the client's seq fits the column
        ledger.claim(me.key_id, "agent.rating", "x", big_seq)
        assert ledger.highest(me.key_id, "agent.rating", "x") == big_seq


def share(signer: Identity, subject: str, decode: float, cpu: str = "Xeon") -> bytes:
    payload: dict[str, Any] = {
        "subject": subject,
        "model": "ab" * 32,
        "model_name": "gemma-3-270m",
        "quantization": "Q4_K_M",
        "decode_tps": decode,
        "peak_rss_mb": 400.0,
        "capabilities": {"reasoning": decode / 100},
        "hardware": {"cpu": cpu, "cores": 2, "ram_gib": 16, "gpus": []},
        "day": "2026-12-01",
        "expires_at": int(time.time()) + 3600,
    }
    return record_json(SignedRecord.create(signer, RESULT_SHARE, payload, 1)).encode()


def test_shares_aggregate_and_concurrent_identical_ratings_store_one_on_postgresql(
    pg_url: str,
) -> None:
    with Store(pg_url) as store:
        market = Marketplace(store, embedder=fake_embed, verify_signature=verify)
        hub = Hub(market, Identity.generate(), upper_runner())
        a, b, fan = Identity.generate(), Identity.generate(), Identity.generate()
        with running(create_app(hub)) as url, HubClient(url) as client:
            for body in (
                share(a, "r1", 30.0),
                share(a, "r2", 40.0),
                share(b, "r3", 38.0),
                share(b, "r4", 20.0, cpu="Ryzen"),
            ):
                resp = httpx.post(url + "/v1/results", content=body)
                assert resp.status_code == 201, resp.text
            again = httpx.post(url + "/v1/results", content=share(a, "r1", 99.0))
            assert again.status_code == 400 and "replayed or older" in again.json()["detail"]
            groups = {g["hardware_class"]: g for g in client.results()}
            xeon = groups["Xeon / 2 cores / 16GiB / no gpu"]
            assert (xeon["runs"], xeon["signers"]) == (3, 2)
            assert xeon["figures"]["decode_tps"] == {
                "median": 38.0,
                "min": 30.0,
                "max": 40.0,
                "n": 3,
            }
            assert xeon["capabilities"]["reasoning"]["median"] == pytest.approx(0.38)
            assert groups["Ryzen / 2 cores / 16GiB / no gpu"]["runs"] == 1
            assert client.results("cd" * 32) == []

            me = Identity.generate()
            spec = parse_spec({**SHOUT, "author": me.key_id})
            client.push(spec, me, seq=1)
            wait_for(lambda: client.status(spec.id)["state"] == "listed")
            inner = fan.sign(RATING_DOMAIN, rating_payload(spec.id, fan.key_id, 5, "loud"))
            payload = {
                "agent_id": spec.id,
                "stars": 5,
                "text": "loud",
                "rating_signature": inner.hex(),
                "expires_at": int(time.time()) + 3600,
            }
            body = record_json(SignedRecord.create(fan, AGENT_RATING, payload, 7)).encode()
            path = f"{url}/v1/agents/{spec.id}/ratings"
            with ThreadPoolExecutor(6) as pool:
                codes = sorted(
                    pool.map(lambda _: httpx.post(path, content=body).status_code, range(6))
                )
            assert codes[0] == 201 and codes.count(201) == 1, codes
            assert set(codes[1:]) <= {400, 409}, codes
        assert [r.stars for r in market.agents.ratings(spec.id)] == [5]
        assert Ledger(store).highest(fan.key_id, AGENT_RATING, spec.id) == 7
