"""What a hub does, without HTTP: accept signed records, gate, list, serve, rate.

:class:`Hub` is the library the HTTP edge (``hub/app.py``) calls, one method per
endpoint.  Writes go through :mod:`hainet.net.records` (every check before anything
is stored), the :class:`~hainet.agents.marketplace.Marketplace` (the publish gate,
search, ratings) and the :class:`~hainet.store.ledger.Ledger`; the hub writes no SQL.

**Publish.**  :meth:`Hub.submit` checks the record, stores the publication as
``pending`` with the record and exact spec bytes received, claims the seq, and
returns at once; :meth:`Hub.run_gate` (the app's background worker) then runs the
marketplace's own publish gate on the hub's model in its sandbox, and the state
becomes ``listed`` or ``refused`` with the measured rate.  Publications still
``pending`` when the hub stopped are gated again when it starts.

**Names are first-come per hub.**  The first key to publish a name owns it here;
a publish of that name signed by another key is refused (409, naming the owner's
short key id) before anything is stored or gated.  The claim is made in the
publication's transaction (``Ledger.add_publication``), so two keys racing for a
new name cannot both win.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from hainet.agents.marketplace import Marketplace, PublishRefused
from hainet.agents.spec import parse_spec
from hainet.agents.workflow import AgentRunner
from hainet.errors import HainetError, StoreError, ValidationError
from hainet.hub.limits import RateLimiter
from hainet.inputs import parse_json
from hainet.net.identity import Identity, SignedRecord, canonical_bytes
from hainet.net.records import (
    AGENT_PUBLISH,
    AGENT_RATING,
    HUB_HELLO,
    RESULT_SHARE,
    check_record,
)
from hainet.net.shares import SharedResult, aggregate
from hainet.store.ledger import Ledger, NameTaken, Publication, PublicationState, SeqClaim
from hainet.store.shares import ShareStore

__all__ = [
    "API_VERSION",
    "Conflict",
    "Hub",
    "NotFound",
    "RunnerFactory",
    "decode_cursor",
    "encode_cursor",
]

API_VERSION = "v1"
MAX_PAGE = 100
RunnerFactory = Callable[[], AbstractAsyncContextManager[AgentRunner]]


class NotFound(ValidationError):
    """No such agent (or version) on this hub."""


class Conflict(ValidationError):
    """The record is valid but collides with what the hub holds (already pushed)."""


def encode_cursor(agent_id: str) -> str:
    return base64.urlsafe_b64encode(agent_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(f"cursor {cursor[:40]!r} is not one this hub gave") from None
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValidationError(f"cursor {cursor[:40]!r} is not one this hub gave")
    return text


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


class Hub:
    """One hub: its store's marketplace and ledger, its identity, its gate model."""

    def __init__(
        self,
        market: Marketplace,
        identity: Identity,
        gate_runner: RunnerFactory,
        *,
        threshold: float = 0.8,
        key_limit: RateLimiter | None = None,
    ) -> None:
        self.market = market
        self.ledger = Ledger(market.store)
        self.shares = ShareStore(market.store)
        # The search index refreshes its in-memory matrix inside search(); the app
        # calls search from its thread pool, so one search runs at a time.
        self._search_lock = threading.Lock()
        self.identity = identity
        self.gate_runner = gate_runner
        self.threshold = threshold
        self.key_limit = key_limit

    # -- who the hub is ------------------------------------------------------------------

    def hello(self, endpoints: list[str], *, dht: tuple[str, int] | None = None) -> dict[str, Any]:
        """The hub's signed ``hub.hello`` record: key id, API version, endpoints, and
        its DHT node's UDP address when it is on the network."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "subject": "hub",
            "api_version": API_VERSION,
            "endpoints": sorted(endpoints),
            "expires_at": now + 86_400,
        }
        if dht is not None:
            payload["dht"] = {"host": dht[0], "port": dht[1]}
        # Seconds since the epoch: a later hello always has a higher seq.
        return SignedRecord.create(self.identity, HUB_HELLO, payload, now).model_dump(mode="json")

    # -- agents --------------------------------------------------------------------------

    def item(self, pub: Publication) -> dict[str, Any]:
        spec = self._spec_data(pub)
        score = self.market.score(pub.agent_id)
        return {
            "id": pub.agent_id,
            "name": pub.name,
            "version": pub.version,
            "purpose": spec.get("purpose", ""),
            "capabilities": spec.get("capabilities", []),
            "author": pub.signer,
            "lineage": spec.get("lineage", []),
            "state": pub.state,
            "success_rate": pub.success_rate,
            "message": pub.message,
            "score": None if score is None else score.total,
            "published_at": pub.created_at.isoformat(),
        }

    @staticmethod
    def _spec_data(pub: Publication) -> dict[str, Any]:
        data = parse_json(pub.spec_bytes, where=f"stored spec {pub.agent_id[:12]}")
        assert isinstance(data, dict)
        return data

    def list_agents(
        self, *, cursor: str | None, limit: int, state: PublicationState = "listed"
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"limit must be 1 to {MAX_PAGE}, got {limit}")
        after = decode_cursor(cursor) if cursor else None
        pubs = self.ledger.publications(state=state, after=after, limit=limit + 1)
        more = len(pubs) > limit
        pubs = pubs[:limit]
        return Page(
            [self.item(p) for p in pubs], encode_cursor(pubs[-1].agent_id) if more else None
        )

    def search(self, query: str, *, threshold: float, top: int) -> list[dict[str, Any]]:
        """The marketplace's own search and ranking, over what this hub listed."""
        if not query.strip():
            raise ValidationError("q: give some words to search for")
        if len(query) > 1000:
            raise ValidationError("q: at most 1,000 characters")
        if not 1 <= top <= MAX_PAGE:
            raise ValidationError(f"top must be 1 to {MAX_PAGE}, got {top}")
        out = []
        with self._search_lock:
            hits = self.market.search(query, threshold=threshold, top=top)
        for hit in hits:
            pub = self.ledger.publication(hit.agent_id)
            if pub is not None and pub.state == "listed":
                out.append(self.item(pub) | hit.to_dict())
        return out

    def publication(self, agent_id: str) -> Publication:
        if len(agent_id) != 64 or any(c not in "0123456789abcdef" for c in agent_id):
            raise ValidationError(f"not an agent id (64 lowercase hex): {agent_id[:80]!r}")
        pub = self.ledger.publication(agent_id)
        if pub is None:
            raise NotFound(f"no agent {agent_id[:12]} on this hub")
        return pub

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every listed version of ``name``, oldest first, with its lineage."""
        pubs = self.ledger.publications(state="listed", name=name, limit=MAX_PAGE)
        if not pubs:
            raise NotFound(f"no listed agent named {name[:80]!r} on this hub")

        def semver(p: Publication) -> tuple[int, ...]:
            return tuple(int(x) for x in p.version.split(".") if x.isdigit())

        return [self.item(p) for p in sorted(pubs, key=semver)]

    # -- publish -------------------------------------------------------------------------

    def submit(self, body: bytes) -> Publication:
        """Check a publish record, store it ``pending``; the gate runs later."""
        checked = check_record(body, self.ledger, domain=AGENT_PUBLISH)
        self._limit(checked.record.key_id)
        spec = checked.spec
        assert spec is not None
        owner = self.ledger.owner(spec.name)
        if owner is not None and owner != checked.record.key_id:
            raise Conflict(str(NameTaken(spec.name, owner)))
        if self.ledger.publication(spec.id) is not None:
            raise Conflict(f"agent {spec.name} {spec.version} ({spec.short_id}) was already pushed")
        for other in self.ledger.publications(name=spec.name, limit=MAX_PAGE):
            if other.version == spec.version and other.state != "refused":
                raise Conflict(
                    f"agent {spec.name} {spec.version} is already on this hub (id "
                    f"{other.agent_id[:12]}); a published version is immutable: bump the version"
                )
        try:
            pub = self.ledger.add_publication(
                domain=AGENT_PUBLISH,
                subject=checked.subject,
                agent_id=spec.id,
                name=spec.name,
                version=spec.version,
                signer=checked.record.key_id,
                seq=checked.record.seq,
                record=body.decode("utf-8"),
                spec_bytes=checked.spec_bytes(),
            )
        except StoreError as exc:
            if "replayed or older" in str(exc):  # lost a race to an equal seq
                raise ValidationError(str(exc)) from None
            raise Conflict(str(exc)) from None
        return pub

    def _limit(self, key_id: str) -> None:
        # After the signature is verified: nobody can spend another key's budget
        # without that key's signature.
        if self.key_limit is not None:
            self.key_limit.hit(key_id, what=f"key {key_id[:12]}")

    def pending(self) -> list[str]:
        return [p.agent_id for p in self.ledger.publications(state="pending", limit=10_000)]

    async def run_gate(self, agent_id: str) -> Publication:
        """The marketplace's publish gate on the hub's model; records the outcome."""
        pub = self.publication(agent_id)
        spec = parse_spec(self._spec_data(pub), source=f"pushed agent {pub.name}")
        try:
            async with self.gate_runner() as runner:
                result = await self.market.publish(spec, runner, threshold=self.threshold)
        except PublishRefused as exc:
            self.ledger.set_state(agent_id, "refused", success_rate=exc.rate, message=str(exc))
        except HainetError as exc:
            self.ledger.set_state(agent_id, "refused", message=f"gate failed: {exc}")
        except Exception as exc:  # noqa: BLE001 - a crashed gate refuses, the hub goes on
            self.ledger.set_state(
                agent_id, "refused", message=f"gate crashed: {type(exc).__name__}: {exc}"
            )
        else:
            self.ledger.set_state(agent_id, "listed", success_rate=result.success_rate)
        return self.publication(agent_id)

    # -- ratings -------------------------------------------------------------------------

    def rate(self, body: bytes, *, agent_id: str | None = None) -> dict[str, Any]:
        """A signed ``agent.rating`` record of a listed agent (``agent_id``, if given,
        must be the one the record names)."""
        checked = check_record(body, self.ledger, domain=AGENT_RATING)
        if agent_id is not None and checked.subject != agent_id:
            raise ValidationError("the rating's agent_id is not the agent of this URL")
        self._limit(checked.record.key_id)
        rec = checked.record
        pub = self.publication(checked.subject)
        if pub.state != "listed":
            raise Conflict(f"agent {pub.name} {pub.version} is {pub.state}, not listed")
        stars, text, inner = (rec.payload.get(k) for k in ("stars", "text", "rating_signature"))
        if isinstance(stars, bool) or not isinstance(stars, int):
            raise ValidationError("rating: stars must be an integer 1 to 5")
        if not isinstance(text, str) or len(text) > 2000:
            raise ValidationError("rating: text must be a string of at most 2,000 characters")
        try:
            signature = bytes.fromhex(inner) if isinstance(inner, str) else b""
        except ValueError:
            raise ValidationError("rating: rating_signature is not hex") from None
        try:
            stored = self.market.rate(
                pub.agent_id,
                rec.key_id,
                stars,
                text,
                signature,
                bytes.fromhex(rec.public_key),
                # The rating and its seq in one transaction: a crash or a racing
                # duplicate leaves neither a claimed seq without its rating nor a
                # rating without its seq.
                claim=SeqClaim(rec.key_id, rec.domain, checked.subject, rec.seq),
            )
        except StoreError as exc:
            if "replayed or older" in str(exc):  # lost a race to an equal seq
                raise ValidationError(str(exc)) from None
            raise Conflict(str(exc)) from None
        return {"agent_id": stored.agent_id, "key_id": stored.key_id, "stars": stored.stars}

    def gate_reports(self, agent_id: str) -> list[dict[str, Any]]:
        """This hub's own gate reports of the agent, oldest first."""
        pub = self.publication(agent_id)
        return [
            {
                "model": r.model,
                "success_rate": r.success_rate,
                "passed": r.report.passed,
                "total": r.report.total,
                "at": r.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for r in self.market.agents.reports(pub.agent_id, purpose="gate")
        ]

    def ratings(self, agent_id: str) -> list[dict[str, Any]]:
        pub = self.publication(agent_id)
        return [
            {"key_id": r.key_id, "stars": r.stars, "text": r.text, "at": r.created_at.isoformat()}
            for r in self.market.agents.ratings(pub.agent_id)
        ]

    # -- shared results ------------------------------------------------------------------

    def share(self, body: bytes) -> dict[str, Any]:
        """A signed ``result.share`` record: one run's summary (``net/shares.py``).
        A higher seq of the same signer and subject replaces the earlier share."""
        checked = check_record(body, self.ledger, domain=RESULT_SHARE)
        rec = checked.record
        result = SharedResult.parse(rec.payload, checked.who)
        self._limit(rec.key_id)
        try:
            self.shares.put(
                domain=RESULT_SHARE,
                signer=rec.key_id,
                subject=checked.subject,
                seq=rec.seq,
                model=result.model,
                quantization=result.quantization,
                hardware_class=result.hardware.key(),
                payload=canonical_bytes(rec.payload).decode("utf-8"),
                record=body.decode("utf-8"),
                expires_at=result.expires_at,
            )
        except StoreError as exc:
            if "replayed or older" in str(exc):
                raise ValidationError(str(exc)) from None
            raise
        return {
            "subject": checked.subject,
            "model": result.model,
            "hardware_class": result.hardware.key(),
        }

    def results(self, model: str | None = None) -> list[dict[str, Any]]:
        """Unexpired shares aggregated per (model, quantization, hardware class)."""
        if model is not None and not 0 < len(model) <= 200:
            raise ValidationError("model: 1 to 200 characters")
        rows = self.shares.rows(model=model)
        return aggregate([(r.signer, SharedResult.model_validate_json(r.payload)) for r in rows])
