"""Per-run cost of the full sandbox against a plain interpreter subprocess.

Both sides run the same interpreter (Debian's ``/usr/bin/python3``, the one the
sandbox uses) on an empty program, interleaved run by run so that both see the same
machine noise.  The sandbox side is ``Sandbox.run("pass")`` as a scorer calls it:
uid lease, rlimits, bubblewrap, seccomp, the reading loop and the uid sweep.  The
rlimits-only path (``unsafe_no_sandbox``) is timed too, to show where the cost is.

    .venv/bin/python benchmarks/sandbox.py      # writes benchmarks/results/sandbox.json
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hainet.bench import hardware_fingerprint
from hainet.config import atomic_write
from hainet.sandbox import DEFAULT_PYTHON, Sandbox

RUNS = 200
WARMUP = 10
GOAL_MS = 50.0  # the issue measured 20-31 ms with all layers on this machine kind


def plain() -> None:
    subprocess.run([DEFAULT_PYTHON, "-I", "-S", "-c", "pass"], env={}, check=True)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    logging.disable(logging.WARNING)  # the unsafe box's warning is expected here
    box = Sandbox()
    unsafe = Sandbox(unsafe_no_sandbox=True)
    box.self_check()
    unsafe.self_check()

    def sandboxed() -> None:
        if not box.run("pass").ok:
            raise RuntimeError("sandboxed run failed")

    def rlimits_only() -> None:
        if not unsafe.run("pass").ok:
            raise RuntimeError("unsafe run failed")

    sides: dict[str, Callable[[], None]] = {
        "plain": plain,
        "sandbox": sandboxed,
        "rlimits_only": rlimits_only,
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(WARMUP + RUNS):
        for name, fn in sides.items():
            ms = timed(fn)
            if i >= WARMUP:
                times[name].append(ms)
    median = {name: statistics.median(values) for name, values in times.items()}
    p90 = {name: statistics.quantiles(values, n=10)[-1] for name, values in times.items()}
    for name in sides:
        print(f"{name:>13}: median {median[name]:6.1f} ms, p90 {p90[name]:6.1f} ms")
    figure, baseline = median["sandbox"], median["plain"]
    result = {
        "name": "sandbox",
        "what": (
            f"median wall time of one Sandbox.run('pass') with every layer (rlimits, "
            f"fresh uid, bubblewrap, seccomp) vs a plain `{DEFAULT_PYTHON} -I -S -c pass` "
            f"subprocess, {RUNS} interleaved runs each; rlimits-only path "
            f"{median['rlimits_only']:.1f} ms; overhead {figure - baseline:.1f} ms per run"
        ),
        "figure": round(figure, 2),
        "unit": "ms",
        "baseline": round(baseline, 2),
        "ratio": round(figure / baseline, 2),
        "goal": f"<= {GOAL_MS:.0f} ms per sandboxed run",
        "passed": figure <= GOAL_MS,
        "machine": hardware_fingerprint(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write(
        Path(__file__).parent / "results" / "sandbox.json", json.dumps(result, indent=2) + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
