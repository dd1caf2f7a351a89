"""The suites' real-model tests share one way to run a quick subset."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from hainet.backends.catalog import BUNDLED
from hainet.bench import BenchOptions, run_model
from hainet.store import Run, Store
from hainet.suites import Suite

QuickRun = Callable[[Suite], tuple[Run, Store]]


@pytest.fixture
def run_quick(bundled_gguf: Path, tmp_path: Path) -> QuickRun:
    """Run a suite's quick subset on the bundled model into a fresh store."""

    def run(suite: Suite) -> tuple[Run, Store]:
        spec = BUNDLED.model_copy(update={"path": str(bundled_gguf)})
        store = Store(f"sqlite:///{tmp_path / 'quick.db'}")
        return asyncio.run(run_model(spec, [suite], store, BenchOptions(quick=True))), store

    return run
