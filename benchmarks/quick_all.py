"""How long `hainet bench --suites all --quick` takes on the bundled model.

The eight capability suites' quick subsets, end to end (model load, generation,
sandboxed code execution, embeddings for creativity, store writes), in a fresh
HAINET_HOME.  Beside the wall time it reports the time spent inside the model
(the sum of every generation's wall time): the rest is hainet's own cost, mostly
scoring (the sandbox and the embedding model's first load).

    .venv/bin/python benchmarks/quick_all.py
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "quick_all.json"
GOAL_S = 300.0


def main() -> None:
    os.environ["HAINET_HOME"] = tempfile.mkdtemp(prefix="hainet-quick-all-")
    from hainet.backends import Catalog
    from hainet.bench import BenchOptions, SweepPlan, hardware_fingerprint, run_sweep
    from hainet.config import atomic_write, load_settings
    from hainet.store import Store

    cfg = load_settings()
    catalog = Catalog(cfg)
    catalog.resolve("gemma-3-270m")  # assemble the bundled model outside the timing
    store = Store(cfg.db_url)
    start = time.perf_counter()
    outcome = asyncio.run(
        run_sweep(
            catalog,
            SweepPlan(models=("gemma-3-270m",)),
            store,
            BenchOptions(suites=("all",), quick=True),
        )
    )
    wall = time.perf_counter() - start
    [run] = outcome.runs
    results = store.results(run.id)
    model_s = sum(r.wall_s or 0.0 for r in results)
    caps = {k: v["score"] for k, v in run.summary["capabilities"].items()}
    result = {
        "name": "quick_all",
        "what": (
            f"wall time of `hainet bench --suites all --quick` on gemma-3-270m "
            f"({len(results)} cases, 8 suites); baseline = time inside the model"
        ),
        "figure": round(wall, 2),
        "unit": "s",
        "baseline": {
            "model_s": round(model_s, 2),
            "cases": len(results),
            "errors": sum(1 for r in results if r.error),
            "capabilities": caps,
        },
        "ratio": round(wall / model_s, 3) if model_s else None,
        "goal": f"<= {GOAL_S:.0f} s",
        "passed": wall <= GOAL_S and run.status == "completed",
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("figure", "baseline", "ratio", "passed")}, indent=2))


if __name__ == "__main__":
    main()
