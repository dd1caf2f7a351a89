"""The hub over PostgreSQL (a throwaway server from the Debian binaries): the same
flow as on SQLite, through the agent store, the ledger and the marketplace's gate."""

from __future__ import annotations

import time

import httpx
import pytest

from hainet.agents.marketplace import RATING_DOMAIN, Marketplace, rating_payload
from hainet.agents.spec import parse_spec
from hainet.hub.app import create_app
from hainet.hub.client import HubClient
from hainet.hub.service import Hub
from hainet.net.identity import Identity, SignedRecord, verify
from hainet.net.records import AGENT_PUBLISH, publish_payload, record_json
from hainet.store import Store
from hainet.store.ledger import Ledger
from tests.hub.servers import SHOUT, fake_embed, running, upper_runner, wait_for
from tests.store.pg import pg_bin, postgres_server


@pytest.mark.postgres
@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL binaries missing (make test installs)")
def test_the_hub_on_postgresql() -> None:
    with postgres_server() as db, Store(db) as store:
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
