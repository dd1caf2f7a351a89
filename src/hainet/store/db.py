"""The store: the only code that writes SQL.

SQLite by default (``HAINET_HOME/hainet.db``), any SQLAlchemy URL through
``HAINET_DB`` (PostgreSQL included).  On SQLite: WAL, ``synchronous=FULL``,
``busy_timeout`` and ``BEGIN IMMEDIATE`` for every write transaction, because a plain
``BEGIN`` that upgrades to a write lock fails with "database is locked" under
concurrent writers (FIELD-NOTES.md: 1059 of 1200 lost; none with IMMEDIATE).
Each write is one transaction, so a crash never leaves a half-written record.

Runs and sweeps record their owner (host, pid, process start time) and a heartbeat;
opening the store or listing runs marks those whose owner is gone ``abandoned``
(``liveness.py`` says how it is judged).  Nothing non-finite is stored: NaN and
infinity in any JSON or float column are refused with a :class:`StoreError` naming
the field (JSON has no such numbers, and SQLite's ``json_extract`` fails on the
row).  The pydantic models stay lenient on reading so rows written before this
rule still load.

The parts, by concept: ``base.py`` (engine, transactions, errors, owners and
heartbeats), ``runs.py`` (runs and their results), ``sweeps.py``, ``tables.py`` (the
current tables), ``models.py`` and ``records.py`` (what is handed out).
"""

from __future__ import annotations

from hainet.store.runs import Reuse, RunsStore
from hainet.store.sweeps import SweepsStore

__all__ = ["Reuse", "Store"]


class Store(RunsStore, SweepsStore):
    """Open (creating and migrating if needed) the store at ``url``."""
