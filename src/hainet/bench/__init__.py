"""Runs suites on backends, measures speed and memory, writes runs to the store.

A bench is a sweep (``sweep.py``): its plan's cells resolved into
:class:`~hainet.types.RunConfig` s (``cells.py``), grouped by model load, run by an
executor in this process, in worker processes or on Ray (``distribute.py``), each
configuration's cases by the runner (``runner.py``) with one shared
:class:`BenchContext` (``context.py``).
"""

from hainet.bench.categorize import Profile, categorize, profiles, tier
from hainet.bench.context import (
    BenchContext,
    BenchOptions,
    ExecutionOptions,
    Progress,
    ResultOptions,
)
from hainet.bench.profile import MemorySampler, hardware_fingerprint, library_versions
from hainet.bench.runner import run_loaded, run_model, summarize
from hainet.bench.sweep import Cell, SweepOutcome, SweepPlan, run_bench, run_sweep

__all__ = [
    "BenchContext",
    "BenchOptions",
    "Cell",
    "ExecutionOptions",
    "ResultOptions",
    "SweepOutcome",
    "SweepPlan",
    "run_loaded",
    "run_sweep",
    "MemorySampler",
    "Profile",
    "Progress",
    "categorize",
    "hardware_fingerprint",
    "library_versions",
    "profiles",
    "run_bench",
    "run_model",
    "summarize",
    "tier",
]
