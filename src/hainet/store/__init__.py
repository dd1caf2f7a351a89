"""The store: runs and results in SQLite or any SQLAlchemy database."""

from typing import TYPE_CHECKING

from hainet._lazy import lazy_exports
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

if TYPE_CHECKING:
    from hainet.store.agents import (
        AgentRecord,
        AgentStore,
        CompatRecord,
        RatingRecord,
        ReportRecord,
        ScoreRecord,
    )

# The agent tables (and numpy, for their embeddings) load when first used: `hainet
# bench` never needs them.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        name: "hainet.store.agents"
        for name in (
            "AgentRecord",
            "AgentStore",
            "CompatRecord",
            "RatingRecord",
            "ReportRecord",
            "ScoreRecord",
        )
    },
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
