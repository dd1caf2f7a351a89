"""Sweeps: one ``hainet bench`` invocation, its plan, its model loads and its status."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hainet.store.base import StoreBase, utc
from hainet.store.finite import check_finite
from hainet.store.liveness import current_owner
from hainet.store.models import Sweep, SweepStatus
from hainet.store.records import StoredPlan, coerce
from hainet.store.tables import sweeps

__all__ = ["SweepsStore"]


class SweepsStore(StoreBase):
    """The sweeps part of :class:`~hainet.store.Store`."""

    def create_sweep(
        self, *, plan: StoredPlan | Mapping[str, Any], plan_hash: str, cells: int
    ) -> Sweep:
        """A new ``running`` sweep owned by this process; ``plan`` is stored as given."""
        owner, now = current_owner(), datetime.now(UTC)
        sweep = Sweep(
            id=uuid.uuid4().hex,
            created_at=now,
            status="running",
            plan=coerce(StoredPlan, plan, "create a sweep", "plan"),
            plan_hash=plan_hash,
            cells=cells,
            loads=0,
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
            heartbeat_at=now,
        )
        values = sweep.model_dump()
        check_finite("create a sweep", values)
        with self._guard("create a sweep"), self._write() as conn:
            conn.execute(sa.insert(sweeps).values(**values))
        self._heart.wanted()
        return sweep

    def get_sweep(self, sweep_id: str) -> Sweep:
        sweep_id = self.resolve_id(sweep_id, table=sweeps)
        with self._guard(f"read sweep {sweep_id[:8]}"), self._read() as conn:
            row = conn.execute(sa.select(sweeps).where(sweeps.c.id == sweep_id)).mappings().one()
        return self._sweep(row)

    def resumable_sweep(self, plan_hash: str) -> Sweep | None:
        """The newest sweep with this plan that did not complete, if any."""
        self.reap()
        query = (
            sa.select(sweeps)
            .where(sweeps.c.plan_hash == plan_hash, sweeps.c.status != "completed")
            .order_by(sweeps.c.created_at.desc())
            .limit(1)
        )
        with self._guard("look for a sweep to resume"), self._read() as conn:
            row = conn.execute(query).mappings().first()
        return self._sweep(row) if row else None

    def list_sweeps(self, *, limit: int = 20) -> list[Sweep]:
        self.reap()
        query = sa.select(sweeps).order_by(sweeps.c.created_at.desc()).limit(limit)
        with self._guard("list sweeps"), self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._sweep(r) for r in rows]

    def count_load(self, sweep_id: str) -> None:
        """One more model load in this sweep (atomic: workers may share the sweep)."""
        with self._guard(f"update sweep {sweep_id[:8]}"), self._write() as conn:
            conn.execute(
                sa.update(sweeps).where(sweeps.c.id == sweep_id).values(loads=sweeps.c.loads + 1)
            )

    def set_sweep_status(
        self, sweep_id: str, status: SweepStatus, *, error: str | None = None
    ) -> Sweep:
        """Set a sweep's status; ``running`` (a resume) makes this process its owner."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": now}
        if status == "running":
            owner = current_owner()
            values.update(
                finished_at=None,
                owner_host=owner.host,
                owner_pid=owner.pid,
                owner_started=owner.started,
                heartbeat_at=now,
            )
        with self._guard(f"update sweep {sweep_id[:8]}"), self._write() as conn:
            conn.execute(sa.update(sweeps).where(sweeps.c.id == sweep_id).values(**values))
        if status == "running":
            self._heart.wanted()
        return self.get_sweep(sweep_id)

    @staticmethod
    def _sweep(row: Any) -> Sweep:
        data = dict(row)
        for key in ("created_at", "finished_at", "heartbeat_at"):
            data[key] = utc(data[key])
        return Sweep.model_validate(data)
