"""The store: runs and results in SQLite or any SQLAlchemy database."""

from hainet.store.db import Store
from hainet.store.models import SCHEMA_VERSION, CaseResult, Run, RunStatus, Sweep, SweepStatus

__all__ = ["SCHEMA_VERSION", "CaseResult", "Run", "RunStatus", "Store", "Sweep", "SweepStatus"]
