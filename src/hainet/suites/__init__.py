"""Test data: suites of cases, and the scorers that score them."""

from hainet.suites.base import Case, Suite, Turn
from hainet.suites.loader import (
    CAPABILITIES,
    expand_suite_names,
    load_suite,
    parse_suite,
    suite_names,
)
from hainet.suites.scorers import (
    Score,
    Scorer,
    Scorers,
    ScoringContext,
    ScoringUnavailable,
    get_scorer,
    register_scorer,
)

__all__ = [
    "CAPABILITIES",
    "Case",
    "Score",
    "Scorer",
    "Scorers",
    "ScoringContext",
    "ScoringUnavailable",
    "Suite",
    "Turn",
    "expand_suite_names",
    "get_scorer",
    "load_suite",
    "parse_suite",
    "register_scorer",
    "suite_names",
]
