"""Runs built for the purpose: 2 models x 2 quantizations x flash on/off x 2 temperatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hainet.store import CaseResult, Run, Store

CAPS = ("reasoning", "coding", "creativity", "tool_use")


def expected_score(model: str, quant: str, temp: float, cap_index: int) -> float:
    base = 0.8 if model == "big" else 0.4
    return round(base - (0.1 if quant == "q4_k_m" else 0.0) - 0.2 * temp + 0.02 * cap_index, 4)


def decode(model: str, quant: str, flash: bool) -> float:
    return (20.0 if model == "big" else 60.0) * (1.5 if quant == "q4_k_m" else 1.0) + (
        10.0 if flash else 0.0
    )


def make_runs(store: Store) -> list[Run]:
    runs = []
    for model, params in (("big", 3_000_000_000), ("small", 270_000_000)):
        for quant in ("q4_k_m", "q8_0"):
            for flash in (True, False):
                for temp in (0.0, 0.7):
                    run = store.create_run(
                        model_name=model,
                        backend="mock",
                        model={
                            "name": model,
                            "quantization": quant,
                            "flash_attn": flash,
                            "parameters": params,
                            "file_size": 1000,
                        },
                        params={"temperature": temp},
                        suites=list(CAPS),
                    )
                    caps = {}
                    for i, cap in enumerate(CAPS):
                        score = expected_score(model, quant, temp, i)
                        store.add_result(
                            run.id,
                            CaseResult(
                                suite=cap, capability=cap, case_id="c1", prompt="p", score=score
                            ),
                        )
                        caps[cap] = {"score": score, "cases": 1, "scored": 1, "errors": 0}
                    summary = {
                        "suites": caps,
                        "capabilities": caps,
                        "decode_tps": decode(model, quant, flash),
                        "prefill_tps": 200.0 + (50.0 if flash else 0.0),
                        "ttft_s": 0.5 if model == "big" else 0.1,
                        "categories": [],
                        "tier": "small" if model == "big" else "tiny",
                    }
                    runs.append(
                        store.finish_run(
                            run.id,
                            "completed",
                            summary=summary,
                            peak_rss_mb=3000.0 if model == "big" else 500.0,
                            model_rss_mb=2500.0 if model == "big" else 300.0,
                            load_s=1.0,
                        )
                    )
    return runs


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'report.db'}")


@pytest.fixture
def runs(store: Store) -> list[Run]:
    return make_runs(store)
