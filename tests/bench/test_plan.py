"""The sweep's plan and configuration: RunConfig per cell, the options' two halves,
a plan hash that old sweeps still resume by, and the bench's shape (parameters,
backend names)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import math
import queue
from pathlib import Path

import pytest

import hainet.bench
from hainet.backends import Catalog
from hainet.bench import (
    BenchOptions,
    ExecutionOptions,
    Progress,
    ResultOptions,
    SweepPlan,
    run_bench,
)
from hainet.bench import distribute as distribute_module
from hainet.bench.sweep import _plan_hash
from hainet.config import load_settings
from hainet.errors import ConfigError
from hainet.store import CaseResult, Store
from hainet.types import ModelSpec, RunConfig

SRC = Path(hainet.bench.__file__).resolve().parent.parent


def test_each_cell_resolves_once_into_a_run_config() -> None:
    plan = SweepPlan(models=("a", "b.gguf"), flash_attention=(True, None), temperatures=(0.7,))
    specs = {"a": ModelSpec(name="a"), "b.gguf": ModelSpec(name="b")}
    configs = plan.configs(specs, ResultOptions(seed=3, samples=2))
    assert [c.key for c in configs] == [c.key for c in plan.cells()]
    assert configs[0].key == "a|-|fa|t0.7" and configs[3].key == "b.gguf|-|-|t0.7"
    assert [c.load_key for c in configs] == [c.load_key for c in plan.cells()]
    assert all(c.seed == 3 and c.samples == 2 for c in configs)
    assert configs[2].model is specs["b.gguf"] and configs[2].flash_attn is True
    # Without a plan's name the key starts with the spec's own.
    assert RunConfig(model=ModelSpec(name="m"), temperature=None).key == "m|-|-|-"


# Hashes of these plans as the code before RunConfig computed them: a sweep stored
# then must still be found by --resume.
_OLD_HASHES = {
    "full": "aa7abe7b7cdad49f11eec987fdd15cbc3fc80d79fe217cef3e4e2162f39df24d",
    "default": "8da2d4eae3b090faca43da42e32a4763b49de513e51f06f3941413be98f593eb",
}


def test_the_plan_hash_is_stable_and_ignores_how_the_sweep_runs() -> None:
    plan = SweepPlan(
        models=("gemma-3-270m", "x.gguf"),
        quantizations=("q4_k_m", None),
        flash_attention=(True, None),
        temperatures=(0.0, 0.7),
    )
    options = BenchOptions(
        suites=("reasoning", "coding"),
        quick=True,
        seed=3,
        judge="j",
        samples=2,
        max_concurrent=3,
        ray="local",
        unsafe_no_sandbox=True,
        temperature=0.5,
        prefix_reuse=False,
    )
    # Sweeps from before prefix reuse prefilled every case in full: that mode keeps
    # their hash, so --no-prefix-reuse --resume finds them; the reuse mode does not.
    assert _plan_hash(plan.canonical(options.result)) == _OLD_HASHES["full"]
    other = BenchOptions(
        suites=("reasoning", "coding"), quick=True, seed=3, judge="j", samples=2, prefix_reuse=False
    )
    assert _plan_hash(plan.canonical(other.result)) == _OLD_HASHES["full"]
    full = SweepPlan(models=("gemma-3-270m",)).canonical(BenchOptions(prefix_reuse=False).result)
    assert _plan_hash(full) == _OLD_HASHES["default"]
    default = SweepPlan(models=("gemma-3-270m",)).canonical(BenchOptions().result)
    assert default["prefix_reuse"] is True
    assert _plan_hash(default) != _OLD_HASHES["default"]


def test_bench_options_split_into_what_defines_a_result_and_how_it_runs() -> None:
    options = BenchOptions(
        suites=["a"], quick=True, seed=2, samples=3, judge="j", max_concurrent=4, ray="auto"
    )
    assert options.result == ResultOptions(suites=("a",), quick=True, seed=2, samples=3, judge="j")
    assert options.execution == ExecutionOptions(max_concurrent=4, ray="auto")
    assert BenchOptions(server_concurrency=1).execution.server_concurrency == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_the_plan_refuses_a_temperature_that_is_not_finite_and_names_it(value: float) -> None:
    with pytest.raises(ConfigError, match=f"temperatures must be finite and >= 0, got {value}"):
        SweepPlan(models=("m",), temperatures=(0.0, value))
    store, catalog = Store(load_settings().db_url), Catalog(load_settings())
    with pytest.raises(ConfigError, match=str(value)):
        asyncio.run(run_bench(catalog, ["gemma-3-270m"], store, BenchOptions(temperature=value)))
    assert store.list_runs() == []


def _functions(root: Path) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((f"{path.name}:{node.lineno} {node.name}", node))
    return found


def test_no_function_in_bench_takes_more_than_six_parameters() -> None:
    too_many = []
    for where, fn in _functions(SRC / "bench"):
        a = fn.args
        names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
        names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
        names = [n for n in names if n not in ("self", "cls")]
        if len(names) > 6:
            too_many.append(f"{where}({', '.join(names)})")
    assert too_many == []
    # The public entry points too, as Python sees them (dataclass __init__s aside).
    for name in ("run_sweep", "run_bench", "run_model", "run_loaded"):
        assert len(inspect.signature(getattr(hainet.bench, name)).parameters) <= 6


BUILT_IN_BACKENDS = {"llamacpp", "openai", "transformers", "mock"}


def test_nothing_outside_backends_names_a_built_in_backend() -> None:
    """Backends know themselves (memory, quantization, remote, libraries, the spec's
    own checks); elsewhere a backend is a class asked, never a name compared."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "backends":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in BUILT_IN_BACKENDS:
                found.append(f"{relative}:{node.lineno} {node.value!r}")
    # The one exception: ModelSpec.backend's default (types.py is below the registry,
    # and a spec without a backend has always meant a GGUF for llama.cpp).
    assert [f for f in found if not f.startswith("types.py:")] == []
    assert len([f for f in found if f.startswith("types.py:")]) == 1
    assert ModelSpec.model_fields["backend"].default == "llamacpp"


class _Recorder:
    def __init__(self) -> None:
        self.cases: list[str] = []
        self.status: list[str] = []

    def progress(self) -> Progress:
        return Progress(
            on_case=lambda r: self.cases.append(r.case_id), on_status=self.status.append
        )


def test_events_from_other_processes_reach_the_progress_callbacks() -> None:
    """Workers and Ray tasks report per case through a queue, not the store's row
    count; the relay delivers what arrived before the work ended, and the rest."""
    events: queue.Queue[object] = queue.Queue()
    forward = distribute_module._forwarding(events)  # what a worker reports through
    seen = _Recorder()

    async def work() -> None:
        forward.on_status("loading")
        forward.on_case(CaseResult(suite="s", case_id="one", prompt="p"))
        await asyncio.sleep(0.6)  # one relay wait passes
        forward.on_case(CaseResult(suite="s", case_id="two", prompt="p"))

    asyncio.run(distribute_module._relay(work(), events, seen.progress()))
    assert seen.cases == ["one", "two"] and seen.status == ["loading"]


def test_the_executor_follows_the_execution_options() -> None:
    choose = distribute_module.executor_for
    assert choose(ExecutionOptions(), 3) == distribute_module.InProcess()
    assert choose(ExecutionOptions(max_concurrent=2), 1) == distribute_module.InProcess()
    assert choose(ExecutionOptions(max_concurrent=2), 2) == distribute_module.Workers(2)
    assert choose(ExecutionOptions(ray="local"), 2) == distribute_module.Ray("local")
    assert choose(ExecutionOptions(ray="local"), 0) == distribute_module.InProcess()


@pytest.mark.model
def test_worker_processes_report_each_case_without_polling_the_store(
    hainet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def polled(*args: object) -> int:
        raise AssertionError("progress came from the store's row count")

    monkeypatch.setattr(Store, "count_results", polled)  # in this process only
    cfg = load_settings()
    store, seen = Store(cfg.db_url), _Recorder()
    plan = SweepPlan(models=("gemma-3-270m",), flash_attention=(True, False))
    options = BenchOptions(quick=True, max_concurrent=2)
    outcome = asyncio.run(
        hainet.bench.run_sweep(Catalog(cfg), plan, store, options, seen.progress())
    )
    assert outcome.sweep.status == "completed"
    assert sorted(seen.cases) == sorted(2 * [r.case_id for r in store.results(outcome.runs[0].id)])
    assert len(seen.cases) == 10 and any("loading" in s for s in seen.status)
