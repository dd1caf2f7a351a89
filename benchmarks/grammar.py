"""Grammar-constrained JSON decoding: hainet's sampler order against llama-cpp-python's.

llama-cpp-python adds the grammar sampler before greedy/top-k, so every step checks
the whole vocabulary (262,144 tokens on the bundled model) against the grammar.
hainet samples first and checks only the chosen token, re-sampling with the grammar
when it is rejected (llama.cpp's ``common_sampler`` order; see
``hainet.backends.llamacpp``).  Three modes on the same prompts, one model load, in
one run, rounds alternating the order of the modes:

* grammar-first: ``LlamaCppBackend.grammar_first = True``, i.e. llama-cpp-python's own
  ``_init_sampler`` with the grammar (same backend, same KV-cache clearing);
* hainet:        the default grammar-last path;
* free:          the same prompts without a schema, for reference.

At temperature 0 grammar-first and hainet must give the same text, or the run stops.
Tokens/s is completion tokens over wall time (prefill included): llama.cpp's own
decode counter leaves out sampling, which is where the grammar costs.  All calls go
through ``generate`` and so through the backend's one executor thread.

    .venv/bin/python benchmarks/grammar.py [--rounds 3] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hainet.backends.catalog import BUNDLED, ensure_bundled_model
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.bench import hardware_fingerprint
from hainet.config import atomic_write
from hainet.types import GenerationParams, Request

RESULTS = Path(__file__).parent / "results" / "grammar.json"
GOAL = 2.0  # hainet at least twice as fast as grammar-first
MAX_TOKENS = 80

CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "Describe a person as JSON:\n",
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    ),
    (
        "A large blue shirt costs 19.99 dollars. As JSON:\n",
        {
            "type": "object",
            "properties": {
                "colour": {"type": "string", "enum": ["red", "green", "blue"]},
                "size": {"type": "string", "enum": ["S", "M", "L"]},
                "price": {"type": "number"},
            },
            "required": ["colour", "size", "price"],
        },
    ),
    (
        "Paris is a city in France with 2.1 million people. As JSON:\n",
        {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "country": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "code": {"type": "string", "enum": ["FR", "DE", "IT"]},
                    },
                    "required": ["name", "code"],
                },
                "population_millions": {"type": "number"},
            },
            "required": ["city", "country", "population_millions"],
        },
    ),
    (
        "To compute 17 times 23, call a tool. JSON:\n",
        {
            "type": "object",
            "properties": {
                "tool": {"type": "string", "enum": ["calculator", "search"]},
                "args": {
                    "type": "object",
                    "properties": {"expression": {"type": "string"}},
                    "required": ["expression"],
                },
            },
            "required": ["tool", "args"],
        },
    ),
]
MODES = ("grammar-first", "hainet", "free")


async def run_mode(backend: LlamaCppBackend, mode: str) -> tuple[float, int, list[str]]:
    """All prompts once in one mode: total wall seconds, completion tokens, texts."""
    backend.grammar_first = mode == "grammar-first"
    wall, tokens, texts = 0.0, 0, []
    for prompt, schema in CASES:
        params = GenerationParams(
            max_tokens=MAX_TOKENS, temperature=0.0, json_schema=None if mode == "free" else schema
        )
        start = time.perf_counter()
        out = await backend.generate(Request(prompt=prompt, params=params))
        wall += time.perf_counter() - start
        tokens += out.completion_tokens
        texts.append(out.text)
    backend.grammar_first = False
    return wall, tokens, texts


async def measure(backend: LlamaCppBackend, rounds: int, budget_s: float) -> dict[str, Any]:
    times: dict[str, list[float]] = {m: [] for m in MODES}
    tokens: dict[str, int] = {}
    began = time.perf_counter()
    for i in range(rounds):
        order = MODES if i % 2 == 0 else tuple(reversed(MODES))
        texts: dict[str, list[str]] = {}
        for mode in order:
            wall, n, texts[mode] = await run_mode(backend, mode)
            times[mode].append(wall)
            tokens[mode] = n
        if texts["grammar-first"] != texts["hainet"]:
            sys.exit(f"round {i + 1}: hainet's text differs from grammar-first's")
        print(
            f"round {i + 1}: "
            + ", ".join(f"{m} {times[m][-1]:.2f} s/{tokens[m]} tok" for m in MODES)
            + f", load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if time.perf_counter() - began > budget_s and i + 1 < rounds:
            print(f"stopping after {i + 1} rounds: over the {budget_s:.0f} s budget")
            break
    return {"times": times, "tokens": tokens, "texts": texts}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="start no new round after this"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    path = ensure_bundled_model(Path(tempfile.mkdtemp(prefix="hainet-grammar-")))
    backend = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(path), "n_threads": 2}))
    try:
        asyncio.run(run_mode(backend, "free"))  # warm the page cache and the threads
        data = asyncio.run(measure(backend, args.rounds, args.budget_s))
    finally:
        backend.close()
    load_after = os.getloadavg()

    times, tokens = data["times"], data["tokens"]
    med = {m: statistics.median(times[m]) for m in MODES}
    tps = {m: tokens[m] / med[m] for m in MODES}
    speedup = med["grammar-first"] / med["hainet"]
    result = {
        "name": "grammar",
        "what": (
            f"wall time of {len(CASES)} JSON-schema prompts at temperature 0 (max_tokens "
            f"{MAX_TOKENS}, one model load), llama-cpp-python's grammar-first sampling / "
            f"hainet's grammar-last sampling, same text; median of {len(times['hainet'])} "
            "rounds"
        ),
        "figure": round(speedup, 3),
        "unit": "speedup",
        "baseline": {
            "grammar_first_median_s": round(med["grammar-first"], 3),
            "hainet_median_s": round(med["hainet"], 3),
            "free_median_s": round(med["free"], 3),
            "grammar_first_tokens_per_s": round(tps["grammar-first"], 2),
            "hainet_tokens_per_s": round(tps["hainet"], 2),
            "free_tokens_per_s": round(tps["free"], 2),
            "completion_tokens": tokens,
            "seconds": {m: [round(t, 3) for t in times[m]] for m in MODES},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "texts": data["texts"]["hainet"],
        },
        "ratio": round(speedup, 3),
        "goal": f">= {GOAL}",
        "passed": speedup >= GOAL,
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    shown = {k: result[k] for k in ("figure", "goal", "passed")}
    shown.update({k: v for k, v in result["baseline"].items() if k not in ("seconds", "texts")})
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
