"""Test data: suites of cases, and the scorers that score them."""

from hainet.suites.base import Case, Suite, load_suite, suite_names
from hainet.suites.scorers import Score, Scorer, ScoringUnavailable, get_scorer

__all__ = [
    "Case",
    "Score",
    "Scorer",
    "ScoringUnavailable",
    "Suite",
    "get_scorer",
    "load_suite",
    "suite_names",
]
