"""What hainet's bench path costs over a raw llama-cpp-python loop.

The same prompts (the built-in reasoning suite, rendered as the bench renders them)
with the same parameters go through:

* raw:    ``Llama(...)`` then ``create_completion`` per prompt;
* hainet: ``run_model`` — catalog spec, backend, per-case scoring, a SQLite write per
  case (``synchronous=FULL``), RSS sampling, hardware fingerprint.

Both load the model once per round and evaluate every prompt in full: hainet clears
the KV cache before each case (reproducibility), so the raw loop calls
``llm.reset()`` too.  What prefix reuse would have saved is reported on the side
(``raw_prefix_reuse_s``).  Rounds alternate raw/hainet; medians are compared.  Each
side runs in a fresh process: llama.cpp's OpenMP teams belong to the calling thread,
and two calling threads in one process slow each other down (both ~27%, measured).

    .venv/bin/python benchmarks/overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import llama_cpp

from hainet.backends.catalog import BUNDLED, ensure_bundled_model
from hainet.bench import BenchOptions, hardware_fingerprint, run_model
from hainet.config import atomic_write
from hainet.store import Store
from hainet.suites import load_suite
from hainet.types import GenerationParams

RESULTS = Path(__file__).parent / "results" / "overhead.json"
GOAL = 1.05


def raw_loop(
    path: Path, prompts: list[str], params: GenerationParams, *, reset: bool
) -> tuple[float, list[str]]:
    start = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=2048, n_threads=2, n_threads_batch=2, seed=0, verbose=False
    )
    texts = []
    for prompt in prompts:
        if reset:
            llm.reset()
        out = llm.create_completion(
            prompt,
            max_tokens=params.max_tokens,
            temperature=0.0,
            top_p=1.0,
            seed=0,
            stop=list(params.stop),
        )
        texts.append(out["choices"][0]["text"])
    llm.close()
    return time.perf_counter() - start, texts


def hainet_path(path: Path, store: Store) -> tuple[float, list[str]]:
    suite = load_suite("reasoning")
    spec = BUNDLED.model_copy(update={"path": str(path), "n_threads": 2})
    start = time.perf_counter()
    run = asyncio.run(run_model(spec, [suite], store, BenchOptions()))
    elapsed = time.perf_counter() - start
    return elapsed, [r.output for r in store.results(run.id)]


def side(name: str, work: Path) -> tuple[float, list[str]]:
    """Run one side in a fresh process; it prints its time and outputs as JSON."""
    proc = subprocess.run(
        [sys.executable, __file__, "--side", name, "--work", str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{name} side failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(data["s"]), list(data["texts"])


def child(name: str, work: Path) -> None:
    path = ensure_bundled_model(work)
    suite = load_suite("reasoning")
    requests = [suite.request(c, "prompt", GenerationParams()) for c in suite.cases]
    prompts = [r.prompt or "" for r in requests]
    if name == "hainet":
        elapsed, texts = hainet_path(path, Store(f"sqlite:///{work / 'bench.db'}"))
    else:
        elapsed, texts = raw_loop(path, prompts, requests[0].params, reset=name == "raw")
    print(json.dumps({"s": elapsed, "texts": texts}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--side", choices=["raw", "hainet", "raw-reuse"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args.side, args.work)
        return

    work = Path(tempfile.mkdtemp(prefix="hainet-overhead-"))
    ensure_bundled_model(work)
    suite = load_suite("reasoning")
    prompts = [c.id for c in suite.cases]
    req_params = suite.request(suite.cases[0], "prompt", GenerationParams()).params

    side("raw", work)  # warm the page cache
    raw_times, hainet_times, reuse_times = [], [], []
    for i in range(args.rounds):
        t_raw, raw_texts = side("raw", work)
        t_hainet, hainet_texts = side("hainet", work)
        raw_times.append(t_raw)
        hainet_times.append(t_hainet)
        if raw_texts != hainet_texts:
            sys.exit(f"outputs differ between raw and hainet in round {i}: not the same work")
        print(f"round {i + 1}: raw {t_raw:.3f} s, hainet {t_hainet:.3f} s", flush=True)
    reuse_times.append(side("raw-reuse", work)[0])

    raw_med, hainet_med = statistics.median(raw_times), statistics.median(hainet_times)
    ratio = hainet_med / raw_med
    result = {
        "name": "overhead",
        "what": (
            f"wall time of {len(prompts)} reasoning prompts (load included, max_tokens "
            f"{req_params.max_tokens}), hainet bench path / raw llama-cpp-python loop, "
            f"median of {args.rounds} alternating rounds"
        ),
        "figure": round(ratio, 4),
        "unit": "ratio",
        "baseline": {
            "raw_median_s": round(raw_med, 4),
            "hainet_median_s": round(hainet_med, 4),
            "raw_s": [round(t, 4) for t in raw_times],
            "hainet_s": [round(t, 4) for t in hainet_times],
            "raw_prefix_reuse_s": round(reuse_times[0], 4),
        },
        "ratio": round(ratio, 4),
        "goal": f"<= {GOAL}",
        "passed": ratio <= GOAL,
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("figure", "goal", "passed", "baseline")}, indent=2))


if __name__ == "__main__":
    main()
