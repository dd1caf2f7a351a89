"""store/ledger.py: seq claims, and a publication stored with its seq or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hainet.errors import StoreError
from hainet.store import Store
from hainet.store.ledger import Ledger


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


def test_a_publication_and_its_seq_are_stored_together(tmp_path: Path) -> None:
    ledger = Ledger(Store(f"sqlite:///{tmp_path / 'h.db'}"))
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
