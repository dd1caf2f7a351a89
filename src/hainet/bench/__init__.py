"""Runs suites on backends, measures speed and memory, writes runs to the store."""

from hainet.bench.categorize import Profile, categorize, profiles, tier
from hainet.bench.profile import MemorySampler, hardware_fingerprint, library_versions
from hainet.bench.runner import BenchOptions, Progress, run_loaded, run_model, summarize
from hainet.bench.sweep import Cell, SweepOutcome, SweepPlan, run_bench, run_sweep

__all__ = [
    "BenchOptions",
    "Cell",
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
