"""Community validation, the hub side: ten other hubs run a listed agent's tests on
their own models, and anyone can turn their signed records into one verdict.

**As the origin** (the hub an agent was pushed to): once the hub's own gate lists a
version, :meth:`NetworkValidation.announce` computes the epoch and the validator set
(``net/validation.py``: the 10 DHT peers XOR-closest to the version's target, this
hub left out), stores the round with that set, and sends each member
``POST /v1/validations`` ``{"agent_id", "origin", "source", "epoch"}``.  It then
collects the members' records from the DHT (``validation:{spec_id}``) until all of
them reported; the verdict (:meth:`NetworkValidation.verdict`) counts only members
of the stored set, so a validator that died stays *missing* and is never replaced
by one that did not run the tests.

**As a validator**, a request is checked before any work: its shape and size, a rate
limit per address and per origin, the epoch (current or previous), the source URL
(it must be the one the origin's own signed ``hub:{origin}`` DHT pointer names, so
a request cannot send the hub to fetch arbitrary URLs), and the set: the hub
recomputes it and answers 403 unless it is a member.  Accepted requests are queued
(one gate at a time: the model is one resource) and the hub then pulls the spec
from the source (:meth:`HubClient.pull`: signature, author and content hash
checked), runs the spec's tests in its sandbox on its own gate model
(:func:`~hainet.agents.testing.test_agent`, the marketplace's gate cases), signs
an ``agent.validation`` record, stores it, serves it at
``GET /v1/agents/{id}/network`` and puts it, whole, in the DHT under
``validation:{spec_id}``.  A run with unscored gate cases is not signed (as the gate,
it cannot decide on them); the queue is in memory, so a validator that restarts
forgets requests it had not run (the origin's round shows them as missing).

**Anyone** can aggregate (:func:`aggregate_from_dht`): get ``validation:{spec_id}``,
recompute the set, keep the set's records, check each (signature, expiry, size,
the inner record signed by the same key as the DHT value), and call
:func:`hainet.net.validation.aggregate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from hainet.agents.testing import test_agent
from hainet.backends.catalog import sha256_file
from hainet.bench.profile import hardware_fingerprint
from hainet.errors import HainetError, ValidationError
from hainet.hub.client import HubClient
from hainet.hub.limits import RateLimiter
from hainet.hub.service import Hub
from hainet.inputs import Limits, parse_json
from hainet.net.dht import DhtNode
from hainet.net.identity import SignedRecord
from hainet.net.records import AGENT_VALIDATION, check_record, record_json
from hainet.net.shares import hardware_class
from hainet.net.validation import (
    N_VALIDATORS,
    NETWORK_THRESHOLD,
    VALIDATION_TTL,
    ValidationPayload,
    Verdict,
    aggregate,
    epoch_of,
    outcomes_hash,
    validation_target,
    validator_set,
)
from hainet.store.records import Hardware
from hainet.store.validations import ValidationStore

__all__ = [
    "NetworkValidation",
    "ValidationRequest",
    "aggregate_from_dht",
    "attach",
    "network_status",
    "validation_key",
]

log = logging.getLogger(__name__)

_REQUEST_LIMITS = Limits(max_bytes=4096, max_depth=4)


def validation_key(spec_id: str) -> str:
    return f"validation:{spec_id}"


class ValidationRequest(BaseModel):
    """What an origin hub asks a validator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="The version to validate.")
    origin: str = Field(pattern=r"^[0-9a-f]{64}$", description="Key id of the asking hub.")
    source: str = Field(min_length=8, max_length=2000, description="The origin's hub URL.")
    epoch: int = Field(ge=0, le=1 << 40)


class _Refused(HainetError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Job:
    request: ValidationRequest


async def _hub_urls(node: DhtNode, key_ids: list[str]) -> dict[str, str]:
    """Each key's own signed ``hub:{key_id}`` pointer's URL (others' are ignored)."""

    async def one(key_id: str) -> tuple[str, str | None]:
        try:
            records = await node.get(f"hub:{key_id}")
        except (TimeoutError, HainetError, OSError):
            return key_id, None
        for rec in records:
            value = rec.payload.get("value")
            if rec.key_id == key_id and isinstance(value, dict):
                url = value.get("url")
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    return key_id, url.rstrip("/")
        return key_id, None

    found = await asyncio.gather(*(one(k) for k in key_ids))
    return {k: u for k, u in found if u is not None}


def _inner(rec: SignedRecord) -> SignedRecord | None:
    """The ``agent.validation`` record a DHT value carries, checked, or None."""
    value = rec.payload.get("value")
    inner = value.get("record") if isinstance(value, dict) else None
    if not isinstance(inner, dict):
        return None
    try:
        checked = check_record(json.dumps(inner), None, domain=AGENT_VALIDATION)
    except ValidationError as exc:
        log.info("validation record from %s refused: %s", rec.key_id[:12], exc)
        return None
    if checked.record.key_id != rec.key_id:  # a DHT node re-putting another's record
        return None
    return checked.record


async def aggregate_from_dht(
    node: DhtNode,
    spec_id: str,
    *,
    origin: str,
    epoch: int,
    threshold: float = NETWORK_THRESHOLD,
    n: int = N_VALIDATORS,
) -> Verdict:
    """Anyone's verdict: recompute the set now, get the records, check, aggregate."""
    peers = await node.closest(validation_target(spec_id, epoch), n + 1)
    members = [p.key_id for p in validator_set(peers, spec_id, epoch, n=n, exclude=[origin])]
    records = [r for r in map(_inner, await node.get(validation_key(spec_id))) if r]
    return aggregate(
        records,
        spec_id=spec_id,
        epoch=epoch,
        origin=origin,
        validators=members,
        threshold=threshold,
    )


def network_status(hub: Hub, agent_id: str) -> dict[str, Any] | None:
    """The verdict of the round this hub announced for ``agent_id`` (None: none), read
    from the store only (the agent page and ``GET /v1/agents/{id}/network``)."""
    store = ValidationStore(hub.market.store)
    rnd = store.round(agent_id)
    if rnd is None:
        return None
    records = []
    for row in store.rows(agent_id):
        with contextlib.suppress(ValueError):
            records.append(SignedRecord.model_validate_json(row.record))
    verdict = aggregate(
        records,
        spec_id=agent_id,
        epoch=rnd.epoch,
        origin=rnd.origin,
        validators=rnd.validators,
    )
    out = verdict.to_dict()
    out["requests"] = rnd.requests
    out["announced_at"] = rnd.created_at.isoformat()
    return out


class NetworkValidation:
    """One hub's part in community validation (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        node: DhtNode,
        url: str,
        *,
        n: int = N_VALIDATORS,
        poll_s: float = 1.0,
        round_s: float = 3600.0,
        per_address: RateLimiter | None = None,
        per_origin: RateLimiter | None = None,
        http_timeout: float = 30.0,
    ) -> None:
        self.hub, self.node, self.url, self.n = hub, node, url.rstrip("/"), n
        self.store = ValidationStore(hub.market.store)
        self.poll_s, self.round_s, self.http_timeout = poll_s, round_s, http_timeout
        self.per_address = per_address or RateLimiter(60, 60.0)
        self.per_origin = per_origin or RateLimiter(30, 60.0)
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=1000)
        self._queued: set[tuple[str, int, str]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._model_keys: dict[str, str] = {}
        self.validated = asyncio.Event()
        """Set each time this hub signed a validation (tests wait on it)."""

    @property
    def key_id(self) -> str:
        return self.hub.identity.key_id

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._validate_worker()),
            asyncio.create_task(self._origin_watch()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # -- the origin ----------------------------------------------------------------------

    async def _members(self, spec_id: str, epoch: int, origin: str) -> list[str]:
        peers = await self.node.closest(validation_target(spec_id, epoch), self.n + 1)
        chosen = validator_set(peers, spec_id, epoch, n=self.n, exclude=[origin])
        return [p.key_id for p in chosen]

    async def announce(self, agent_id: str) -> list[str]:
        """Start a round for a listed version: the set, the stored round, the requests."""
        epoch = epoch_of()
        members = await self._members(agent_id, epoch, self.key_id)
        await run_in_threadpool(self.store.add_round, agent_id, epoch, self.key_id, members)
        urls = await _hub_urls(self.node, members)
        body = {"agent_id": agent_id, "origin": self.key_id, "source": self.url, "epoch": epoch}
        async with httpx.AsyncClient(timeout=self.http_timeout) as http:

            async def ask(member: str) -> None:
                url = urls.get(member)
                if url is None:
                    answer = "no hub: pointer in the DHT"
                else:
                    try:
                        resp = await http.post(f"{url}/v1/validations", json=body)
                        answer = (
                            "accepted"
                            if resp.status_code in (200, 202)
                            else (f"{resp.status_code} {resp.text[:300]}")
                        )
                    except httpx.HTTPError as exc:
                        answer = f"unreachable: {type(exc).__name__}"
                await run_in_threadpool(self.store.set_request, agent_id, member, answer)

            await asyncio.gather(*(ask(m) for m in members))
        log.info("validation round of %s: %d validators asked", agent_id[:12], len(members))
        return members

    async def collect(self, agent_id: str) -> int:
        """Store the round members' new records from the DHT; how many were new."""
        rnd = await run_in_threadpool(self.store.round, agent_id)
        if rnd is None:
            return 0
        members = set(rnd.validators)
        new = 0
        for rec in map(_inner, await self.node.get(validation_key(agent_id))):
            if rec is not None and rec.key_id in members:
                new += await run_in_threadpool(self._keep, rec)
        return new

    def _keep(self, rec: SignedRecord) -> bool:
        try:
            p = ValidationPayload.parse(rec.payload, f"validation from {rec.key_id[:12]}")
        except ValidationError as exc:
            log.info("%s", exc)
            return False
        return self.store.put(
            signer=rec.key_id,
            spec_id=p.spec_id,
            epoch=p.epoch,
            origin=p.origin,
            seq=rec.seq,
            success_rate=p.success_rate,
            record=record_json(rec),
            expires_at=p.expires_at,
        )

    def verdict(self, agent_id: str) -> dict[str, Any] | None:
        return network_status(self.hub, agent_id)

    async def _origin_watch(self) -> None:
        while True:
            try:
                await self._origin_step()
            except Exception:  # noqa: BLE001 - the watch must survive one bad round
                log.exception("community validation: origin step failed; retried")
            await asyncio.sleep(self.poll_s)

    async def _origin_step(self) -> None:
        listed = await run_in_threadpool(
            lambda: [p.agent_id for p in self.hub.ledger.publications(state="listed", limit=10_000)]
        )
        known = set(await run_in_threadpool(self.store.round_ids))
        for agent_id in listed:
            if agent_id not in known:
                await self.announce(agent_id)
        now = time.time()
        for agent_id in known:
            rnd = await run_in_threadpool(self.store.round, agent_id)
            if rnd is None or now - rnd.created_at.timestamp() > self.round_s:
                continue
            have = len(await run_in_threadpool(self.store.rows, agent_id))
            if have < len(rnd.validators):
                await self.collect(agent_id)

    # -- the validator -------------------------------------------------------------------

    async def request(self, body: bytes, address: str) -> tuple[int, dict[str, Any]]:
        """Check a validation request; queue it.  (status, answer)."""
        self.per_address.hit(address, what=f"address {address}")
        data = parse_json(body, where="validation request", limits=_REQUEST_LIMITS)
        try:
            req = ValidationRequest.model_validate(data)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise ValidationError(f"validation request: {where}: {first['msg']}") from None
        self.per_origin.hit(req.origin, what=f"origin hub {req.origin[:12]}")
        now_epoch = epoch_of()
        if req.epoch not in (now_epoch, now_epoch - 1):
            raise ValidationError(
                f"validation request: epoch {req.epoch} is not the current one ({now_epoch}) "
                "or the one before"
            )
        if req.origin == self.key_id:
            raise _Refused(403, "a hub does not validate the agents it announced itself")
        urls = await _hub_urls(self.node, [req.origin])
        if urls.get(req.origin) != req.source.rstrip("/"):
            raise _Refused(
                409,
                f"the source {req.source[:200]!r} is not the URL the origin "
                f"{req.origin[:12]} announces in the DHT (hub:{req.origin[:12]}...)",
            )
        members = await self._members(req.agent_id, req.epoch, req.origin)
        if self.key_id not in members:
            raise _Refused(
                403,
                f"this hub ({self.key_id[:12]}) is not in the validator set of "
                f"{req.agent_id[:12]} in epoch {req.epoch}",
            )
        where = f"/v1/agents/{req.agent_id}/network"
        mine = await run_in_threadpool(self.store.mine, self.key_id, req.agent_id)
        if mine is not None:
            rec = SignedRecord.model_validate_json(mine.record)
            if (rec.payload.get("epoch"), rec.payload.get("origin")) == (req.epoch, req.origin):
                return 200, {"agent_id": req.agent_id, "state": "validated", "network": where}
        key = (req.agent_id, req.epoch, req.origin)
        if key not in self._queued:
            try:
                self.queue.put_nowait(_Job(req))
            except asyncio.QueueFull:
                raise _Refused(503, "too many validations queued; ask again later") from None
            self._queued.add(key)
        return 202, {"agent_id": req.agent_id, "state": "queued", "network": where}

    async def _validate_worker(self) -> None:
        while True:
            job = await self.queue.get()
            req = job.request
            try:
                await self.validate(req)
            except Exception:  # noqa: BLE001 - one failed validation must not stop the rest
                log.exception("validation of %s failed; not signed", req.agent_id[:12])
            finally:
                self._queued.discard((req.agent_id, req.epoch, req.origin))
                self.queue.task_done()

    async def validate(self, req: ValidationRequest) -> SignedRecord | None:
        """Pull, run the gate cases on this hub's model, sign, store, put."""

        def pull() -> Any:
            with HubClient(req.source, timeout=self.http_timeout) as client:
                return client.pull(req.agent_id)

        pulled = await run_in_threadpool(pull)
        spec = pulled.spec
        gate_cases = [t for t in spec.tests if not t.holdout]
        async with self.hub.gate_runner() as runner:
            report = await test_agent(spec, runner, cases=gate_cases)
            model_spec = runner.backend.spec
        if report.unscored:
            log.warning(
                "validation of %s: %d case(s) could not be scored; not signed",
                req.agent_id[:12],
                len(report.unscored),
            )
            return None
        model = await run_in_threadpool(self._model_key, model_spec)
        hw = hardware_class(Hardware.model_validate(hardware_fingerprint()))
        payload = ValidationPayload(
            spec_id=spec.id,
            epoch=req.epoch,
            origin=req.origin,
            success_rate=report.passed / report.total if report.total else 0.0,
            passed=report.passed,
            total=report.total,
            outcomes_sha256=outcomes_hash(report.outcomes),
            model=model,
            model_name=model_spec.name[:200],
            hardware=hw,
            expires_at=int(time.time()) + VALIDATION_TTL,
        ).model_dump(mode="json")
        rec = SignedRecord.create(
            self.hub.identity, AGENT_VALIDATION, payload, time.time_ns() // 1000
        )
        await run_in_threadpool(self._keep, rec)
        await self.node.put(validation_key(spec.id), {"record": rec.model_dump(mode="json")})
        self.validated.set()
        log.info(
            "validated %s for %s: %d/%d on %s",
            spec.id[:12],
            req.origin[:12],
            report.passed,
            report.total,
            model_spec.name,
        )
        return rec

    def _model_key(self, spec: Any) -> str:
        if spec.sha256:
            return str(spec.sha256)
        path = str(spec.path or "")
        if path:
            if path not in self._model_keys:
                self._model_keys[path] = sha256_file(Path(path))
            return self._model_keys[path]
        return str(spec.model or spec.name)

    def own(self, agent_id: str) -> dict[str, Any] | None:
        row = self.store.mine(self.key_id, agent_id)
        return None if row is None else json.loads(row.record)


def attach(app: FastAPI, hub: Hub, node: DhtNode, url: str | None = None) -> NetworkValidation:
    """Add the validation endpoints to ``app`` and start this hub's validation tasks
    (called from the app's lifespan once its DHT node runs: ``hub/network.py``).
    ``url`` is this hub's public URL (default: the network options' ``public_url``)."""
    if url is None:
        network = getattr(app.state, "network", None)
        url = getattr(getattr(network, "options", None), "public_url", None)
    if not url:
        raise ValidationError("community validation needs the hub's public URL")
    nv = NetworkValidation(hub, node, url)
    app.state.validation = nv
    if not getattr(app.state, "validation_routes", False):
        _routes(app)
        app.state.validation_routes = True
    nv.start()
    return nv


def _routes(app: FastAPI) -> None:
    def current(request: Request) -> NetworkValidation:
        nv = getattr(request.app.state, "validation", None)
        if nv is None:
            raise _Refused(503, "this hub is not on the network (no DHT node)")
        assert isinstance(nv, NetworkValidation)
        return nv

    def refused(exc: _Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.post("/v1/validations", status_code=202)
    async def request_validation(request: Request) -> JSONResponse:
        """Ask this hub to validate an agent version (it must be in the version's
        validator set); 202 queued, 200 already validated, 403 not a member."""
        try:
            nv = current(request)
            host = request.client.host if request.client else "unknown"
            status, out = await nv.request(await request.body(), host)
        except _Refused as exc:
            return refused(exc)
        return JSONResponse(out, status_code=status)

    @app.get("/v1/agents/{agent_id}/network")
    async def network(agent_id: str, request: Request) -> JSONResponse:
        """The network verdict of a version this hub announced, and this hub's own
        signed validation of it, if it made one."""
        try:
            nv = current(request)
        except _Refused as exc:
            return refused(exc)
        if len(agent_id) != 64 or any(c not in "0123456789abcdef" for c in agent_id):
            return JSONResponse(
                {"detail": f"not an agent id (64 lowercase hex): {agent_id[:80]!r}"},
                status_code=400,
            )
        verdict = await run_in_threadpool(network_status, nv.hub, agent_id)
        own = await run_in_threadpool(nv.own, agent_id)
        if verdict is None and own is None:
            return JSONResponse(
                {"detail": f"no validation of {agent_id[:12]} on this hub"}, status_code=404
            )
        return JSONResponse({"hub": nv.key_id, "verdict": verdict, "own": own})
