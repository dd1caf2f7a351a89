"""A real plugin package adds a scorer, an evolution operator and a tool, with no edit
to hainet: ``examples/extension-plugin`` is pip-installed (into a temporary
directory put on ``sys.path``, so the venv stays as it was) and found through its
entry points, exactly as hainet's own built-ins are."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest

from hainet.agents.builtin_tools import TOOLS, builtin_tool, tool_names
from hainet.agents.evolve import Budget, Evolver
from hainet.agents.operators import OPERATOR_REGISTRY, get_operator, operator_names
from hainet.agents.spec import AgentSpec, TestCase, parse_spec
from hainet.agents.testing import test_agent
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.hyper.control import Controls, Policy, needs_approval, risk_of
from hainet.hyper.loop import HyperLoop
from hainet.hyper.procedure import MetaProcedure
from hainet.sandbox import Sandbox
from hainet.store import Store
from hainet.store.hyper import HyperStore
from hainet.suites import Case, Scorers, Suite
from hainet.suites.scorers import SCORERS
from hainet.suites.scoring import score_completions
from hainet.types import Completion, Request, Timing

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "extension-plugin"
NAMES = {SCORERS: "shouted", OPERATOR_REGISTRY: "shout_system", TOOLS: "reverse"}

@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    cmd += ["--no-build-isolation", "--no-index", "--target", str(target), str(PLUGIN)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("hainet_extension", None)
        for registry, name in NAMES.items():
            registry.forget(name)


def test_the_package_is_installed_and_its_entry_points_are_known(plugin: Path) -> None:
    dist = distribution("hainet-extension-example")
    assert {ep.group for ep in dist.entry_points} == {
        "hainet.scorers",
        "hainet.operators",
        "hainet.tools",
    }
    assert "shouted" in SCORERS.names() and "shout_system" in operator_names()
    assert "reverse" in tool_names()


async def test_a_suite_case_is_scored_by_the_plugin_scorer(plugin: Path) -> None:
    suite = Suite(
        name="shout",
        version="1",
        capability="instruction_following",
        scorer="shouted",
        cases=[Case(id="s1", input="Say hello loudly.", target="hello")],
    )
    case = suite.cases[0]
    scorer = Scorers().get(suite.scorer_name(case))
    timing = Timing(wall_s=0.0)
    good = await score_completions(scorer, case, [Completion(text="HELLO\n", timing=timing)])
    bad = await score_completions(scorer, case, [Completion(text="hello", timing=timing)])
    assert (good.value, bad.value) == (1.0, 0.0)
    two = [Completion(text="HELLO", timing=timing), Completion(text="hi", timing=timing)]
    assert (await score_completions(scorer, case, two)).value == 0.5  # samples averaged


def _loud(request: Request) -> str:
    prompt = request.prompt or ""
    word = prompt.rsplit("Input: ", 1)[-1].split("\n", 1)[0]
    return word.upper() if "CAPITALS" in prompt else word


def _spec() -> AgentSpec:
    step = {
        "id": "answer",
        "kind": "generate",
        "template": "Input: {input}\nOutput:",
        "parser": "first_line",
        "output": "answer",
        "max_tokens": 8,
    }
    return parse_spec(
        {
            "name": "echo",
            "purpose": "Repeat the word in capitals.",
            "workflow": [step],
            "output": "answer",
            "tests": [{"id": "own", "input": "cat", "target": "cat", "scorer": "shouted"}],
        }
    )


WORDS = ["cat", "dog", "owl", "bee", "elk", "ant", "cow", "pig", "hen", "yak"]


def _cases(prefix: str) -> list[TestCase]:
    return [
        TestCase(id=f"{prefix}{i}", input=w, target=w, scorer="shouted")
        for i, w in enumerate(WORDS)
    ]


async def test_the_evolver_proposes_and_keeps_the_plugin_operator(plugin: Path) -> None:
    op = get_operator("shout_system")
    assert (op.name, op.risk, op.calls_model) == ("shout_system", "high", False)
    events: list[tuple[str, dict[str, object]]] = []
    evolver = Evolver(
        AgentRunner(MockBackend.from_function(_loud)),
        operators={"shout_system": 1.0},
        on_event=lambda e, d: events.append((e, d)),
    )
    parent = _spec()
    child = await evolver.evolve(
        parent, trainset=_cases("tr"), valset=_cases("v"), budget=Budget(candidates=1)
    )
    assert child is not parent and "CAPITALS" in child.workflow[0].template  # type: ignore[union-attr]
    done = next(d for e, d in events if e == "done")
    assert done["changed"] is True and done["operator"] == "shout_system"
    # The loop's risk is the operator's own: high, so the default policy asks a human.
    assert risk_of("shout_system", parent, child) == "high"
    assert needs_approval(risk_of("shout_system", parent, child), Policy())


def test_the_hyper_loop_holds_the_plugin_operators_child_for_approval(
    plugin: Path, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hyper.db'}")
    evolver = Evolver(AgentRunner(MockBackend.from_function(_loud)), seed=0)
    controls = Controls(
        evaluator=evolver,
        valset=tuple(_cases("v")),
        testset=tuple(_cases("t")),
        policy=Policy(approval_poll_s=0.01),  # risk_approval="high" (the default)
        budget=Budget(bootstrap=400),
    )
    hs = HyperStore(store)

    async def approve(_s: float) -> None:  # a human says yes while the loop waits
        run_id = hs.resolve_run(None)
        for g in hs.generations(run_id):
            if g.status == "pending_approval":
                hs.decide(g.id, "accepted", actor="human", require="pending_approval")
        await asyncio.sleep(0)

    loop = HyperLoop(
        store,
        controls,
        lambda _proc: evolver,
        trainset=_cases("tr"),
        procedure=MetaProcedure(operators={"shout_system": 1.0}, candidates=1),
        sleep=approve,
    )
    run = asyncio.run(loop.run(_spec(), generations=1))
    gens = hs.generations(run.id)
    child = next(g for g in gens if g.number == 1)
    assert child.operator == "shout_system" and child.risk == "high"
    assert child.status == "accepted" and child.decided_by == "human"
    assert any(a.event == "generation_pending_approval" for a in hs.audit(run.id))


def test_an_agent_workflow_calls_the_plugin_tool_in_the_sandbox(plugin: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root")
    box = Sandbox()
    box.self_check()
    assert builtin_tool("reverse").returns == "string"
    spec = parse_spec(
        {
            "name": "backwards",
            "purpose": "Spell a word backwards.",
            "workflow": [
                {
                    "id": "word",
                    "kind": "generate",
                    "template": "Repeat: {input}\n",
                    "parser": "first_line",
                    "output": "word",
                    "max_tokens": 8,
                },
                {
                    "id": "flip",
                    "kind": "tool",
                    "tool": "reverse",
                    "args": {"text": "{word}"},
                    "output": "answer",
                },
            ],
            "tools": [{"name": "reverse", "builtin": "reverse"}],
            "output": "answer",
            "tests": [{"id": "t1", "input": "stressed", "target": "desserts", "scorer": "exact"}],
        }
    )
    runner = AgentRunner(MockBackend.from_function(lambda r: "stressed"), sandbox=box)
    run = asyncio.run(runner.run(spec, "stressed"))
    assert run.ok and run.text == "desserts", run.error
    report = asyncio.run(test_agent(spec, runner))
    assert report.passed == report.total == 1
