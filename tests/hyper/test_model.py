"""The hyper loop on the bundled model: a few generations of the benchmark's task."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hainet.agents.evolve import Budget, Evolver, load_cases
from hainet.agents.spec import load_spec
from hainet.agents.workflow import open_runner
from hainet.backends import Catalog
from hainet.config import load_settings
from hainet.hyper import Controls, HyperLoop, MetaProcedure, Policy
from hainet.store import Store
from hainet.store.hyper import HyperStore

DATA = Path(__file__).parents[2] / "benchmarks" / "data" / "self_improve"


@pytest.mark.model
def test_two_generations_on_the_bundled_model(tmp_path: Path) -> None:
    spec = load_spec(DATA / "agent.yaml")
    train = load_cases(DATA / "train.json")[:6]
    val = load_cases(DATA / "val.json")[:4]
    test = load_cases(DATA / "test.json")[:4]
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")

    async def go() -> str:
        model = Catalog(load_settings()).resolve("gemma-3-270m")
        async with open_runner(model) as runner:
            controls = Controls(
                evaluator=Evolver(runner),
                valset=tuple(val),
                testset=tuple(test),
                policy=Policy(risk_approval="never", max_memory_mb=4096),
                budget=Budget(bootstrap=500),
            )
            loop = HyperLoop(
                store,
                controls,
                lambda proc: Evolver(runner, operators=proc.operators),
                trainset=train,
                failure_cases=3,
                procedure=MetaProcedure(operators={"few_shot": 1.0, "params": 1.0}, candidates=1),
            )
            run = await loop.run(spec, generations=2)
            return run.id

    run_id = asyncio.run(go())
    hs = HyperStore(store)
    run = hs.get_run(run_id)
    gens = hs.generations(run_id)
    assert run.status == "completed"
    assert sorted({g.number for g in gens}) == [0, 1, 2]
    for g in gens:
        assert g.score is not None and set(g.case_scores) == {c.id for c in val}
        se = g.self_eval
        assert se["tokens_per_case"] > 0 and se["latency_s_mean"] > 0
        assert se["peak_rss_mb"] is not None and 50 < se["peak_rss_mb"] < 4096
    assert run.final is not None
    for label in ("baseline", "final"):
        lo, hi = run.final[label]["test_ci"]
        assert lo <= run.final[label]["test"] <= hi
    json.dumps(run.final)  # the stored report is plain JSON
    events = [a.event for a in hs.audit(run_id)]
    assert events.count("proposed") == len(gens) - 1
