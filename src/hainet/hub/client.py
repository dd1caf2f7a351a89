"""The hub's client (``hainet agents push / pull / search --hub URL``), over httpx.

Everything a hub answers is checked before it is used: a pulled spec's record must
pass :func:`hainet.net.records.check_record` (size before parse, signature, key id,
content hash, author is the signer) and its spec bytes must hash to the id asked
for.  Network failures are one :class:`~hainet.errors.HainetError` line naming the
hub and what failed.

**Seq.**  A push signs with seq = the current time in microseconds, so a later push
of the same name from the same key is always higher without any state kept locally.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx

from hainet.agents.spec import AgentSpec, parse_spec
from hainet.errors import HainetError, ValidationError
from hainet.inputs import SPEC_LIMITS, Limits, parse_json
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import (
    AGENT_PUBLISH,
    AGENT_RATING,
    MAX_RECORD_BYTES,
    RESULT_SHARE,
    CheckedRecord,
    check_record,
    publish_payload,
    record_json,
)

__all__ = ["HubClient", "HubError", "Pulled"]

_ANSWER_LIMITS = Limits(max_bytes=MAX_RECORD_BYTES + SPEC_LIMITS.max_bytes, max_depth=64)


class HubError(HainetError):
    """A hub could not be reached, or answered with an error."""


class Pulled:
    """A verified spec from a hub, with the signed record it came in."""

    def __init__(self, spec: AgentSpec, checked: CheckedRecord, record: str) -> None:
        self.spec, self.checked, self.record = spec, checked, record

    @property
    def signer(self) -> str:
        return self.checked.record.key_id


class HubClient:
    def __init__(self, url: str, *, timeout: float = 30.0, transport: Any = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise HubError(f"hub {url!r}: not an http(s) URL")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        what = f"{method} {path}"
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise HubError(f"hub {self.url}: {what} timed out") from None
        except httpx.HTTPError as exc:
            raise HubError(f"hub {self.url}: {what} failed: {exc or type(exc).__name__}") from None
        if len(resp.content) > _ANSWER_LIMITS.max_bytes:
            raise HubError(
                f"hub {self.url}: {what}: answer over {_ANSWER_LIMITS.max_bytes:,} bytes"
            )
        if resp.status_code >= 400:
            detail = resp.text[:500]
            with contextlib.suppress(ValueError, AttributeError):
                detail = str(resp.json().get("detail", detail))
            raise HubError(f"hub {self.url}: {what}: {resp.status_code} {detail}")
        return resp

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._call(method, path, **kw)
        return parse_json(
            resp.content, where=f"hub {self.url}: {method} {path}", limits=_ANSWER_LIMITS
        )

    # -- API ---------------------------------------------------------------------------

    def hello(self) -> SignedRecord:
        """The hub's signed hub.hello record, verified."""
        data = self._json("GET", "/.well-known/hainet-hub")
        try:
            rec = SignedRecord.model_validate(data)
        except ValueError as exc:
            raise HubError(
                f"hub {self.url}: /.well-known/hainet-hub: not a record: {exc}"
            ) from None
        rec.verify()
        return rec

    def push(
        self, spec: AgentSpec, identity: Identity, *, seq: int | None = None
    ) -> dict[str, Any]:
        """Sign ``spec`` (its author must be ``identity``) and publish it."""
        if spec.author != identity.key_id:
            raise ValidationError(
                f"agent {spec.name}: its author is {spec.author or 'not set'}, not your key "
                f"{identity.short_id}; push signs with your key, so the spec must name it"
            )
        seq = time.time_ns() // 1000 if seq is None else seq
        rec = SignedRecord.create(identity, AGENT_PUBLISH, publish_payload(spec), seq)
        out: dict[str, Any] = self._json(
            "POST",
            "/v1/agents",
            content=record_json(rec).encode(),
            headers={"content-type": "application/json"},
        )
        return out

    def status(self, agent_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/v1/agents/{agent_id}/status")
        return out

    def search(self, query: str, *, top: int = 10, threshold: float = 0.25) -> list[dict[str, Any]]:
        data = self._json(
            "GET", "/v1/agents", params={"q": query, "limit": top, "threshold": threshold}
        )
        return list(data["items"])

    def list_agents(self, *, cursor: str | None = None, limit: int = 30) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        out: dict[str, Any] = self._json("GET", "/v1/agents", params=params)
        return out

    def resolve(self, ref: str) -> str:
        """The id of ``ref``: an id (64 hex), a name (its newest listed version) or
        ``name@version``."""
        if len(ref) == 64 and all(c in "0123456789abcdef" for c in ref):
            return ref
        name, _, version = ref.partition("@")
        items = self._json("GET", f"/v1/names/{name}/versions")["items"]
        if version:
            items = [i for i in items if i["version"] == version]
            if not items:
                raise HubError(f"hub {self.url}: no listed version {version} of {name}")
        return str(items[-1]["id"])

    def pull(self, ref: str) -> Pulled:
        """Fetch and verify a listed agent; nothing is stored here."""
        agent_id = self.resolve(ref)
        where = f"hub {self.url}: agent {agent_id[:12]}"
        record = self._call("GET", f"/v1/agents/{agent_id}/record").content
        checked = check_record(record, None, domain=AGENT_PUBLISH)
        body = self._call("GET", f"/v1/agents/{agent_id}").content
        data = parse_json(body, where=where, limits=SPEC_LIMITS)
        spec = parse_spec(data, source=where)  # the id must be the content hash
        if spec.id != agent_id or checked.spec is None or checked.spec.id != agent_id:
            raise ValidationError(f"{where}: the hub sent another agent than the one asked for")
        return Pulled(spec, checked, record.decode("utf-8"))

    def rate(
        self, agent_id: str, identity: Identity, stars: int, text: str, rating_signature: bytes
    ) -> dict[str, Any]:
        payload = {
            "agent_id": agent_id,
            "stars": stars,
            "text": text,
            "rating_signature": rating_signature.hex(),
            "expires_at": int(time.time()) + 365 * 86_400,
        }
        rec = SignedRecord.create(identity, AGENT_RATING, payload, time.time_ns() // 1000)
        out: dict[str, Any] = self._json(
            "POST",
            f"/v1/agents/{agent_id}/ratings",
            content=record_json(rec).encode(),
            headers={"content-type": "application/json"},
        )
        return out

    @staticmethod
    def share_record(payload: dict[str, Any], identity: Identity) -> SignedRecord:
        """The signed result.share record of ``payload`` (``net.shares.share_payload``)."""
        return SignedRecord.create(identity, RESULT_SHARE, payload, time.time_ns() // 1000)

    def share(self, rec: SignedRecord) -> dict[str, Any]:
        out: dict[str, Any] = self._json(
            "POST",
            "/v1/results",
            content=record_json(rec).encode(),
            headers={"content-type": "application/json"},
        )
        return out

    def results(self, model: str | None = None) -> list[dict[str, Any]]:
        params = {"model": model} if model else {}
        return list(self._json("GET", "/v1/results", params=params)["items"])

    def network(self, agent_id: str) -> dict[str, Any] | None:
        """The community validation the hub reports for an agent (``verdict``: the
        round it announced, with the evidence; ``own``: its own signed validation);
        None when it has neither (or is not on the network)."""
        try:
            out: dict[str, Any] = self._json("GET", f"/v1/agents/{agent_id}/network")
        except HubError as exc:
            if "/network: 404 " in str(exc):
                return None
            raise
        return out

    def result_records(
        self, model: str, *, cursor: str | None = None, limit: int = 50
    ) -> tuple[list[str], str | None]:
        """One page of the raw result.share records the hub holds for ``model`` (not
        verified here: :func:`hainet.net.pooling.pool_records` checks each one), and
        the cursor of the next page."""
        params: dict[str, Any] = {"model": model, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._json("GET", "/v1/results/records", params=params)
        where = f"hub {self.url}: GET /v1/results/records"
        items = data.get("items") if isinstance(data, dict) else None
        meta = data.get("metadata") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise HubError(f"{where}: items is not a list of records")
        if len(items) > limit:
            raise HubError(f"{where}: {len(items)} items, more than the {limit} asked for")
        nxt = meta.get("next_cursor") if isinstance(meta, dict) else None
        if nxt is not None and not (isinstance(nxt, str) and len(nxt) <= 600):
            raise HubError(f"{where}: next_cursor is not a cursor")
        return items, nxt
