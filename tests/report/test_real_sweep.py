"""A report from a real sweep on the bundled model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hainet.backends import Catalog
from hainet.bench import BenchOptions, SweepPlan, run_sweep
from hainet.config import load_settings
from hainet.report import CHARTS, build_report
from hainet.store import Store


@pytest.mark.model
def test_report_of_a_real_sweep(hainet_home: Path, tmp_path: Path) -> None:
    cfg = load_settings()
    store, catalog = Store(cfg.db_url), Catalog(cfg)
    plan = SweepPlan(
        models=("gemma-3-270m",), flash_attention=(True, False), temperatures=(0.0, 0.7)
    )
    outcome = asyncio.run(run_sweep(catalog, plan, store, BenchOptions(quick=True)))
    assert outcome.sweep.status == "completed"
    paths = build_report(store.list_runs(status="completed"), tmp_path / "out")
    # The default suite is reasoning alone: a radar needs three capabilities.
    assert set(paths.skipped) <= {"radar"}
    for name in CHARTS:
        assert paths.charts[name].stat().st_size > 5000
    data = json.loads(paths.analysis.read_text())
    assert len(data["runs"]) == 4 and len(data["flash_attention"]) == 2
    assert all(s["decode_tps"] for s in data["speed"])
    assert paths.html.stat().st_size > 50_000
