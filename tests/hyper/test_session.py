"""``run_hyper``: a hyper loop from one configuration object, on the MockBackend task."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hainet.agents.workflow import AgentRunner
from hainet.backends import BUNDLED
from hainet.backends.mock import MockBackend
from hainet.config import load_settings
from hainet.errors import ValidationError
from hainet.hyper import session
from hainet.hyper.session import HyperConfig, run_hyper
from hainet.store import Store
from hainet.store.hyper import HyperStore
from tests.hyper.conftest import TRAIN, answer, cases, root_spec


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []

    @contextlib.asynccontextmanager
    async def fake(
        _cfg: Any, name: str, _others: Any, seed: int
    ) -> AsyncIterator[tuple[AgentRunner, dict[str, AgentRunner]]]:
        names.append(name)
        yield AgentRunner(MockBackend.from_function(answer), seed=seed), {}

    monkeypatch.setattr(session, "open_runners", fake)
    return names


@pytest.fixture
def config(tmp_path: Path) -> HyperConfig:
    agent = tmp_path / "agent.yaml"
    agent.write_text(yaml.safe_dump(root_spec().model_dump(mode="json", exclude={"id"})))
    paths = {}
    for name, data in {"train": TRAIN, "val": cases("v", 32), "test": cases("t", 32)}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps([c.model_dump(mode="json") for c in data]))
    return HyperConfig(
        agent=agent,
        trainset=paths["train"],
        valset=paths["val"],
        testset=paths["test"],
        generations=3,
        seed=1,
    )


def test_bad_risk_level_is_refused() -> None:
    with pytest.raises(ValidationError, match="risk-approval"):
        HyperConfig(agent="a", trainset=Path(), valset=Path(), testset=Path(),
                    risk_approval="sometimes")  # type: ignore[arg-type]  # fmt: skip


def test_run_hyper_stores_the_run_and_its_config(config: HyperConfig, opened: list[str]) -> None:
    events: list[str] = []
    cfg = load_settings()
    run = asyncio.run(run_hyper(config, cfg, on_event=lambda e, _d: events.append(e)))
    assert run.status == "completed" and run.agent_name == "yes-sayer"
    assert opened == [BUNDLED.name]  # the spec names no model
    assert events[0] == "run" and "generation" in events
    with Store(cfg.db_url) as store:
        hs = HyperStore(store)
        stored = hs.get_run(run.id)
        assert max(g.number for g in hs.generations(run.id)) == 3
    assert stored.config["agent_source"] == str(config.agent)
    assert stored.config["model"] == BUNDLED.name and stored.config["generations"] == 3


def test_resume_checks_the_data_sets(
    config: HyperConfig, opened: list[str], tmp_path: Path
) -> None:
    cfg = load_settings()
    run = asyncio.run(run_hyper(config, cfg))
    other = tmp_path / "other-val.json"
    other.write_text(json.dumps([c.model_dump(mode="json") for c in cases("w", 8)]))
    changed = HyperConfig(**{**config.__dict__, "valset": other, "resume": run.id[:8]})
    with pytest.raises(ValidationError, match="valset differs"):
        asyncio.run(run_hyper(changed, cfg))
