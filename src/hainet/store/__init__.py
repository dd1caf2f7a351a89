"""The store: runs and results in SQLite or any SQLAlchemy database."""

from hainet.store.agents import (
    AgentRecord,
    AgentStore,
    CompatRecord,
    RatingRecord,
    ReportRecord,
    ScoreRecord,
)
from hainet.store.db import Reuse, Store
from hainet.store.models import (
    SCHEMA_VERSION,
    USABLE_STATUSES,
    CaseResult,
    Run,
    RunStatus,
    Sweep,
    SweepStatus,
)
from hainet.store.records import (
    GroupScore,
    Hardware,
    RunParams,
    RunSummary,
    StoredModel,
    StoredPlan,
)

__all__ = [
    "SCHEMA_VERSION",
    "USABLE_STATUSES",
    "AgentRecord",
    "AgentStore",
    "CaseResult",
    "CompatRecord",
    "GroupScore",
    "Hardware",
    "RatingRecord",
    "ReportRecord",
    "Reuse",
    "Run",
    "RunParams",
    "RunStatus",
    "RunSummary",
    "ScoreRecord",
    "Store",
    "StoredModel",
    "StoredPlan",
    "Sweep",
    "SweepStatus",
]
