"""Does ``hainet hyper`` raise a held-out test score on a task the bundled model fails?

Task family: field extraction into a fixed format.  Each input is a one-line
shipping note ("Order 4821 from Ana ships to Lisbon on Monday."); the answer is
``"<customer> / <city>"``.  The starting agent asks for it zero-shot, and the bundled
base model (gemma-3-270m) answers with a city and a made-up continuation: 0 at
baseline.  The hyper loop (meta procedure with every operator, DGM parent
selection, paired-bootstrap acceptance on the validation set) runs for at most 20
generations or ``--max-seconds``; then the starting and the final spec are scored on
the test set, which nothing in the loop ever saw.  The result JSON reports both with
bootstrap confidence intervals and the paired difference; ``passed`` only if the
interval of the difference is above 0.

    .venv/bin/python benchmarks/self_improve.py [--generations 20] [--max-seconds 420]
    .venv/bin/python benchmarks/self_improve.py --make-data   # rewrite the data files

No human approves anything here (``risk_approval="never"``), and no tool is allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from hainet.agents.evolve import Budget, Evolver, load_cases
from hainet.agents.spec import load_spec
from hainet.agents.workflow import open_runner
from hainet.backends import Catalog
from hainet.bench import hardware_fingerprint
from hainet.config import atomic_write, load_settings
from hainet.hyper import Controls, HyperLoop, MetaProcedure, Policy, model_rewriter
from hainet.store import Store
from hainet.store.hyper import HyperStore

DATA = Path(__file__).parent / "data" / "self_improve"
RESULTS = Path(__file__).parent / "results" / "self_improve.json"

NAMES = [
    "Ana", "Ben", "Carla", "Dev", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kira", "Luis", "Mei", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sven", "Tariq",
]  # fmt: skip
CITIES = [
    "Lisbon", "Oslo", "Cairo", "Lima", "Dublin", "Quito", "Hanoi", "Perth", "Porto",
    "Zagreb", "Tunis", "Riga", "Accra", "Bern", "Kyoto", "Malmo", "Leeds", "Graz",
]  # fmt: skip
TEMPLATES = [
    "Order {n} from {name} ships to {city} on Monday.",
    "{name} paid for order {n}; deliver it to {city}.",
    "Please send parcel {n} to {city}, attention {name}.",
    "Shipment for {name} (ref {n}) leaves today for {city}.",
    "{city} depot: {name} asked about order {n}.",
    "Deliver box {n} to {name} in {city} before noon.",
]
SIZES = {"train": 16, "val": 8, "test": 20}

AGENT = {
    "name": "ship-note-extractor",
    "purpose": "Extract the customer name and the destination city from a shipping note.",
    "capabilities": ["extraction"],
    "requirements": {"models": ["gemma-3-270m"]},
    "workflow": [
        {
            "id": "answer",
            "kind": "generate",
            "template": "{examples}Note: {input}\nCustomer / city:",
            "example_template": "Note: {input}\nCustomer / city: {output}\n\n",
            "max_tokens": 10,
            "output": "answer",
        }
    ],
    "output": "answer",
}


def make_data() -> None:
    rng = random.Random(20261122)
    seen: set[str] = set()
    DATA.mkdir(parents=True, exist_ok=True)
    for split, size in SIZES.items():
        cases: list[dict[str, Any]] = []
        while len(cases) < size:
            name, city = rng.choice(NAMES), rng.choice(CITIES)
            text = rng.choice(TEMPLATES).format(n=rng.randint(1000, 9999), name=name, city=city)
            if text in seen:
                continue
            seen.add(text)
            cases.append(
                {"id": f"{split}{len(cases)}", "input": text, "target": f"{name} / {city}",
                 "scorer": "exact"}
            )  # fmt: skip
        atomic_write(DATA / f"{split}.json", json.dumps(cases, indent=1) + "\n")
    atomic_write(DATA / "agent.yaml", yaml.safe_dump(AGENT, sort_keys=False))


def _log(event: str, data: dict[str, Any]) -> None:
    if event == "generation":
        score = data.get("score")
        print(
            f"[{time.strftime('%H:%M:%S')}] gen {data['number']:>2} "
            f"{data.get('operator') or 'start':<14} {data['status']:<9} "
            f"val {'-' if score is None else f'{score:.3f}'}",
            file=sys.stderr,
            flush=True,
        )
    elif event in ("procedure", "final"):
        print(f"[{time.strftime('%H:%M:%S')}] {event}: {data}", file=sys.stderr, flush=True)


async def run(generations: int, max_seconds: float, seed: int) -> dict[str, Any]:
    spec = load_spec(DATA / "agent.yaml")
    train = load_cases(DATA / "train.json")
    val = load_cases(DATA / "val.json")
    test = load_cases(DATA / "test.json")
    cfg = load_settings()
    model = Catalog(cfg).resolve("gemma-3-270m")
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/hyper.db")
        async with open_runner(model, seed=seed) as runner:
            controls = Controls(
                evaluator=Evolver(runner, seed=seed),
                valset=tuple(val),
                testset=tuple(test),
                policy=Policy(risk_approval="never"),
                budget=Budget(max_seconds=max_seconds),
            )

            def proposers(proc: MetaProcedure) -> Evolver:
                return Evolver(
                    runner,
                    operators=proc.operators,
                    rewrite_template=proc.rewrite_template,
                    seed=seed + proc.version,
                )

            loop = HyperLoop(
                store,
                controls,
                proposers,
                trainset=train,
                procedure=MetaProcedure(candidates=1, meta_every=4, plateau_window=3),
                seed=seed,
                failure_cases=8,
                rewriter=model_rewriter(runner.backend),
                on_event=_log,
            )
            result = await loop.run(spec, generations=generations)
        hs = HyperStore(store)
        gens = hs.generations(result.id)
        procs = hs.procedures(result.id)
        audit = hs.audit(result.id)
    wall = time.perf_counter() - start
    final = result.final or {}
    base, last, delta = (
        final.get("baseline", {}),
        final.get("final", {}),
        final.get("test_delta", {}),
    )
    passed = bool(delta.get("significant")) and last.get("test", 0) > base.get("test", 0)
    return {
        "name": "self_improve",
        "what": (
            "held-out test score of a field-extraction agent on the bundled gemma-3-270m "
            f"before and after `hyper run` ({generations} generations max, "
            f"{max_seconds:.0f} s budget, seed {seed}); mean exact-match over "
            f"{len(test)} test cases with 90% bootstrap CIs"
        ),
        "figure": last.get("test"),
        "unit": "test score (0..1)",
        "baseline": {
            "test": base.get("test"),
            "test_ci": base.get("test_ci"),
            "valset": base.get("valset"),
        },
        "final": {
            "test": last.get("test"),
            "test_ci": last.get("test_ci"),
            "valset": last.get("valset"),
            "generation": last.get("number"),
        },
        "test_delta": delta,
        "ratio": None if not base.get("test") else round(last.get("test", 0) / base["test"], 4),
        "goal": "final test score above baseline, 90% CI of the paired difference above 0",
        "passed": passed,
        "run": {
            "status": result.status,
            "generations": max(g.number for g in gens),
            "candidates": len(gens) - 1,
            "accepted": sum(1 for g in gens if g.status == "accepted" and g.number > 0),
            "operators_accepted": sorted(
                {g.operator for g in gens if g.status == "accepted" and g.operator}
            ),
            "procedure_changes": [
                {"kind": p.change.get("kind"), "status": p.status, "reason": p.reason}
                for p in procs
                if p.status != "initial"
            ],
            "audit_entries": len(audit),
            "wall_s": round(wall, 1),
            # Other work on the machine slows every model call; say how busy it was.
            "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        },
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=480.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--make-data", action="store_true")
    args = parser.parse_args()
    if args.make_data or not (DATA / "test.json").exists():
        make_data()
        if args.make_data:
            return
    out = asyncio.run(run(args.generations, args.max_seconds, args.seed))
    atomic_write(RESULTS, json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("figure", "baseline", "passed")}, indent=2))


if __name__ == "__main__":
    main()
