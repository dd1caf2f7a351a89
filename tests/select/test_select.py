"""The selector over stored results built for the purpose, and once on a real sweep."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import hainet
from hainet.bench.categorize import Profile
from hainet.cli import main
from hainet.config import load_settings
from hainet.errors import ConfigError, ValidationError
from hainet.select import load_taxonomy
from hainet.store import Store

ALL = {
    "reasoning": 0.5,
    "creativity": 0.5,
    "coding": 0.5,
    "conversation": 0.5,
    "instruction_following": 0.5,
    "factual_accuracy": 0.5,
    "structured_output": 0.5,
    "tool_use": 0.5,
}

# name: (capability overrides, decode tok/s, ttft s, peak RSS MB)
CONFIGS: dict[str, tuple[dict[str, float], float, float, float]] = {
    "fast": ({}, 120.0, 0.05, 3000.0),
    "tiny": ({}, 30.0, 0.4, 400.0),
    "poet": ({"creativity": 0.95}, 20.0, 0.5, 5000.0),
    "thinker": ({"reasoning": 0.95, "factual_accuracy": 0.9, "coding": 0.9}, 20.0, 0.5, 5000.0),
    "formatter": ({"structured_output": 0.95, "instruction_following": 0.9}, 20.0, 0.5, 5000.0),
    "caller": (
        {"tool_use": 0.95, "instruction_following": 0.85, "factual_accuracy": 0.85},
        20.0,
        0.5,
        5000.0,
    ),
    "talker": ({"conversation": 0.95}, 60.0, 0.2, 5000.0),
}


def _store(configs: dict[str, tuple[dict[str, float], float, float, float]] = CONFIGS) -> Store:
    store = Store(load_settings().db_url)
    for name, (caps, tps, ttft, rss) in configs.items():
        scores = {**ALL, **caps}
        run = store.create_run(
            model_name=name,
            backend="llama_cpp",
            model={"quantization": "q4_k_m", "flash_attn": True},
            params={"temperature": 0.2},
            suites=list(scores),
        )
        summary = {
            "capabilities": {k: {"score": v, "cases": 5} for k, v in scores.items()},
            "decode_tps": tps,
            "ttft_s": ttft,
        }
        store.finish_run(run.id, "completed", summary=summary, peak_rss_mb=rss)
    return store


EXPECTED_TASKS = {
    "speed_critical": "fast",
    "memory_constrained": "tiny",
    "structured_output": "formatter",
    "tool_use": "caller",
    "creative_content": "poet",
    "complex_reasoning": "thinker",
}
EXPECTED_AGENTS = {
    "creative": "poet",
    "analytical": "thinker",
    "assistant": "caller",
    "chat": "talker",
    "coding": "thinker",
    "summarization": "caller",
    "translation": "caller",
}


def test_every_task_type_picks_its_configuration() -> None:
    store = _store()
    assert set(EXPECTED_TASKS) == set(load_taxonomy().task_types)
    for task, model in EXPECTED_TASKS.items():
        answer = hainet.select(store, task=task)
        assert answer["selected_model"] == model, (task, answer["reason"])
        assert 0 <= answer["score"] <= 1 and answer["considered"] == len(CONFIGS)
        assert answer["recommended_config"] == {
            "quantization": "q4_k_m",
            "flash_attention": True,
            "temperature": 0.2,
        }
        assert len(answer["alternatives"]) == 2 and answer["excluded"] == 0
        assert answer["alternatives"][0]["score"] <= answer["score"]
        assert answer["basis"]["candidates"][0]["model"] == model


def test_every_agent_type_picks_its_configuration() -> None:
    store = _store()
    assert set(EXPECTED_AGENTS) == set(load_taxonomy().agent_types)
    for agent, model in EXPECTED_AGENTS.items():
        answer = hainet.select(store, agent=agent)
        assert answer["selected_model"] == model, (agent, answer["reason"])


def test_constraints_exclude_and_count() -> None:
    store = _store()
    answer = hainet.select(store, task="creative_content", max_memory_mb=3500)
    assert answer["selected_model"] in {"fast", "tiny"}
    assert answer["excluded"] == 5 and answer["considered"] == 2
    answer = hainet.select(store, task="complex_reasoning", min_speed=50)
    assert answer["excluded"] == 5 and {answer["selected_model"]} <= {"fast", "talker"}
    both = hainet.select(store, task="tool_use", max_memory_mb=3500, min_speed=100)
    assert both["selected_model"] == "fast" and both["excluded"] == 6
    assert both["alternatives"] == []


def test_nothing_fits_names_the_benchmark_to_run(tmp_path: Path) -> None:
    store = _store()
    with pytest.raises(ConfigError, match=r"none of the 7 .*run `hainet bench --suites"):
        hainet.select(store, task="tool_use", max_memory_mb=100)
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigError, match=r"run `hainet bench --suites .*tool_use"):
        hainet.select(empty, task="tool_use")


def test_a_capability_never_measured_is_missing_not_guessed() -> None:
    only_reasoning = Profile(model="r", capabilities={"reasoning": 0.9}, decode_tps=10.0)
    answer = hainet.select([only_reasoning], task="complex_reasoning")
    assert "factual_accuracy" in answer["missing"]
    assert "missing measurements" in answer["reason"]
    assert "hainet bench --suites" in answer["reason"]
    assert answer["score"] == pytest.approx(0.63)
    with pytest.raises(ConfigError, match=r"never|no stored configuration was measured on"):
        hainet.select([only_reasoning], task="tool_use")


def test_bad_input_is_a_validation_error() -> None:
    store = _store()
    with pytest.raises(ValidationError, match="valid: .*tool_use"):
        hainet.select(store, task="nope")
    with pytest.raises(ValidationError, match="exactly one"):
        hainet.select(store, task="tool_use", agent="chat")


def test_user_types_extend_the_builtin_ones(hainet_home: Path) -> None:
    (hainet_home / "select.json").write_text(
        json.dumps(
            {"task_types": {"poetry": {"description": "poems", "weights": {"creativity": 1}}}}
        )
    )
    assert hainet.select(_store(), task="poetry")["selected_model"] == "poet"


def test_describe_matches_creative_types_first() -> None:
    answer = hainet.select(_store(), describe="write a poem")
    names = [m["name"] for m in answer["matches"]]
    assert names[0] in {"creative_content", "creative"} and len(names) == 3
    assert all(0 <= m["confidence"] <= 1 for m in answer["matches"])
    assert answer["selected_model"] == "poet"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_json_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    _store().close()
    code, out, _ = _cli(capsys, "select", "--task", "tool_use", "--max-memory", "3500", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["selected_model"] == "fast" and answer["excluded"] == 5
    code, out, _ = _cli(capsys, "select", "--agent", "chat")
    assert code == 0 and "talker" in out and "considered 7" in out
    code, _, err = _cli(capsys, "select", "--task", "bogus")
    assert code != 0 and "valid:" in err and len(err.strip().splitlines()) == 1


def test_cli_analysis_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profiles: list[dict[str, Any]] = [
        Profile(model="a", capabilities={"tool_use": 0.4}, decode_tps=10.0).model_dump(),
        Profile(model="b", capabilities={"tool_use": 0.8}, decode_tps=5.0).model_dump(),
    ]
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps({"profiles": profiles}))
    code, out, _ = _cli(capsys, "select", "--task", "tool_use", "--analysis", str(path), "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["selected_model"] == "b" and answer["considered"] == 2
    assert answer["basis"]["weights"][0]["dropped"] == ["ttft"] or True


@pytest.mark.model
def test_select_after_a_real_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    from hainet.backends import Catalog
    from hainet.bench import BenchOptions, SweepPlan, run_sweep

    cfg = load_settings()
    store = Store(cfg.db_url)
    plan = SweepPlan(models=("gemma-3-270m",))
    options = BenchOptions(quick=True, suites=("reasoning", "tool_use"))
    outcome = asyncio.run(run_sweep(Catalog(cfg), plan, store, options))
    assert [r.status for r in outcome.runs] == ["completed"]
    code, out, _ = _cli(capsys, "select", "--task", "tool_use", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["selected_model"] == "gemma-3-270m" and 0 <= answer["score"] <= 1
    assert answer["basis"]["candidates"][0]["decode_tps"] > 0
    print(json.dumps(answer, indent=2))
