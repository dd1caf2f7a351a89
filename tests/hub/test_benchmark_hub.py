"""benchmarks/hub.py's machinery, briefly, so it does not rot: a real ``hainet hub
serve`` process, a few requests of every kind, the JSON it writes.  Not a timing test:
no latency is asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "hub.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_hub", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is made
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_hub_benchmark_runs_briefly(tmp_path: Path) -> None:
    bench = load_benchmark()
    out = tmp_path / "hub.json"
    argv = ["--agents", "12", "--shares", "4", "--rate", "20", "--duration", "4"]
    argv += ["--clients", "3", "--keys", "4", "--drain", "30", "--output", str(out)]
    result = bench.main(argv)

    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    for key in ("name", "what", "figure", "unit", "baseline", "ratio", "goal", "passed"):
        assert key in data
    for key in ("machine", "at", "load_average", "versions", "setup", "http", "in_process"):
        assert key in data
    assert data["setup"]["agents_listed"] == 12
    assert data["versions"]["hainet"] and data["machine"]["cpu"]
    assert len(data["load_average"]["before"]) == 3

    http, local = data["http"], data["in_process"]
    for side in (http, local):
        assert side["errors"] == 0, side
        assert side["lost_writes"] == 0
        assert set(side["operations"]) == {"search", "list", "get", "publish"}
        assert sum(op["n"] for op in side["operations"].values()) == side["requests"]
        assert side["requests"] > 40  # about 80 scheduled at 20/s for 4 s
        assert side["operations"]["search"]["p99_ms"] > 0
    # Seed 0 schedules publishes; each one the hub accepted is gated and listed.
    assert http["accepted_publishes"] == http["operations"]["publish"]["n"] > 0
    assert http["states"] == {"listed": http["accepted_publishes"]}
    assert local["accepted_publishes"] == local["operations"]["publish"]["n"]
    assert data["figure"] == http["operations"]["search"]["p99_ms"]
    assert data["passed"] is False  # 20 requests/s is below the goal's rate
