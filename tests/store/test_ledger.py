"""store/ledger.py: seq claims, a publication stored with its seq and its name or not
at all, and a rating with its seq; on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hainet.agents.spec import parse_spec
from hainet.errors import StoreError
from hainet.store import AgentStore, Store
from hainet.store.ledger import Ledger, NameTaken, SeqClaim
from hainet.store.migrations import MIGRATIONS, migrate
from tests.hub.servers import SHOUT
from tests.store.pg import ON_PG, pg_server, store_url  # noqa: F401 - pg_server: a fixture

K, OTHER = "k" * 64, "o" * 64


@pytest.fixture(params=["sqlite", ON_PG])
def ledger(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    store = Store(store_url(request, str(tmp_path / "h.db")))
    yield Ledger(store)
    store.close()


def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads released together; each outcome or exception."""
    start, out = threading.Barrier(n), [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def pub(ledger: Ledger, agent_id: str, seq: int, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "domain": "agent.publish",
        "subject": "shout",
        "agent_id": agent_id,
        "name": "shout",
        "version": "1.0.0",
        "signer": "k" * 64,
        "seq": seq,
        "record": "{}",
        "spec_bytes": "{}",
    }
    return ledger.add_publication(**(args | kw))


def test_a_publication_and_its_seq_are_stored_together(ledger: Ledger) -> None:
    assert pub(ledger, "a" * 64, 3).state == "pending"
    assert ledger.highest("k" * 64, "agent.publish", "shout") == 3
    with pytest.raises(StoreError, match="replayed or older"):
        pub(ledger, "b" * 64, 3)  # a racing record with an equal seq
    with pytest.raises(StoreError, match="already pushed"):
        pub(ledger, "a" * 64, 9)
    assert ledger.count() == 1 and ledger.highest("k" * 64, "agent.publish", "shout") == 3
    ledger.set_state("a" * 64, "listed", success_rate=1.0)
    assert [p.state for p in ledger.publications(state="listed")] == ["listed"]
    ledger.claim("k" * 64, "agent.rating", "x", 1)
    with pytest.raises(StoreError, match="not above"):
        ledger.claim("k" * 64, "agent.rating", "x", 1)


def test_a_name_is_the_first_signers_and_a_refused_claim_stores_nothing(ledger: Ledger) -> None:
    pub(ledger, "a" * 64, 1)
    assert ledger.owner("shout") == K and ledger.owner("other") is None
    with pytest.raises(NameTaken, match=f"belongs to key {K[:12]}"):
        pub(ledger, "b" * 64, 1, signer=OTHER, version="2.0.0")
    assert ledger.count() == 1 and ledger.highest(OTHER, "agent.publish", "shout") is None
    pub(ledger, "c" * 64, 2, version="1.1.0")  # the owner publishes a new version
    assert ledger.count() == 2 and ledger.owner("shout") == K


def test_racing_first_claims_of_a_name_leave_one_owner(ledger: Ledger) -> None:
    signers = [f"{i:x}" * 64 for i in range(1, 7)]
    out = race(6, lambda i: pub(ledger, f"{i + 1:x}" * 64, 1, signer=signers[i], name="new"))
    won = [i for i, o in enumerate(out) if not isinstance(o, Exception)]
    assert len(won) == 1, out
    assert all(isinstance(o, NameTaken) for i, o in enumerate(out) if i != won[0]), out
    assert ledger.owner("new") == signers[won[0]] and ledger.count() == 1
    lost = [s for i, s in enumerate(signers) if i != won[0]]
    assert all(ledger.highest(s, "agent.publish", "shout") is None for s in lost)


def _rated(ledger: Ledger) -> tuple[AgentStore, str]:
    agents = AgentStore(ledger.store)
    return agents, agents.add(parse_spec(SHOUT).model_dump(mode="json")).id


def _rate(agents: AgentStore, agent_id: str, seq: int, key: str = K) -> Any:
    claim = SeqClaim(key, "agent.rating", agent_id, seq)
    return agents.add_rating(
        agent_id, key_id=key, stars=4, text="", signature=b"s", public_key=b"p", claim=claim
    )


def test_a_rating_and_its_seq_are_stored_together_or_not_at_all(ledger: Ledger) -> None:
    agents, agent_id = _rated(ledger)
    _rate(agents, agent_id, 5)
    assert ledger.highest(K, "agent.rating", agent_id) == 5
    with pytest.raises(StoreError, match="replayed or older"):
        _rate(agents, agent_id, 5)
    with pytest.raises(StoreError, match="already rated"):
        _rate(agents, agent_id, 6)  # a newer record, but one rating per key
    assert ledger.highest(K, "agent.rating", agent_id) == 5  # the seq went back with it
    assert len(agents.ratings(agent_id)) == 1
    ledger.claim(OTHER, "agent.rating", agent_id, 3)  # a seq claimed by itself...
    with pytest.raises(StoreError, match="replayed or older"):
        _rate(agents, agent_id, 3, key=OTHER)
    assert len(agents.ratings(agent_id)) == 1  # ...stores no rating under it


def test_concurrent_identical_ratings_store_exactly_one(ledger: Ledger) -> None:
    agents, agent_id = _rated(ledger)
    out = race(8, lambda _: _rate(agents, agent_id, 7))
    stored = [o for o in out if not isinstance(o, Exception)]
    assert len(stored) == 1, out
    assert all(isinstance(o, StoreError) for o in out if o is not stored[0]), out
    assert len(agents.ratings(agent_id)) == 1 and ledger.highest(K, "agent.rating", agent_id) == 7


def test_migration_011_gives_each_name_to_its_earliest_publisher(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    before = [m for m in MIGRATIONS if m[0] < "011"]
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    pubs = sa.table(
        "hub_publications",
        *(sa.column(c) for c in ("agent_id", "name", "version", "signer", "seq", "record")),
        *(sa.column(c) for c in ("spec_bytes", "state", "created_at", "updated_at")),
    )
    with engine.begin() as conn:
        migrate(conn, before)
        for i, (name, signer, day) in enumerate(
            [("shout", OTHER, 3), ("shout", K, 2), ("whisper", OTHER, 5)]
        ):
            at = t0.replace(day=day)
            conn.execute(
                sa.insert(pubs).values(
                    agent_id=f"{i}" * 64, name=name, version=f"1.0.{i}", signer=signer, seq=1,
                    record="{}", spec_bytes="{}", state="listed", created_at=at, updated_at=at,
                )
            )  # fmt: skip
    engine.dispose()
    with Store(f"sqlite:///{tmp_path / 'old.db'}") as store:
        assert "011_hub_names" in store.migrations_run
        ledger = Ledger(store)
        assert ledger.owner("shout") == K and ledger.owner("whisper") == OTHER
