from datetime import UTC, datetime, timedelta

import pytest

from hainet.bench import Profile, categorize, profiles, tier
from hainet.bench.categorize import CAPABILITIES
from hainet.store import Run


def profile(**kw: object) -> Profile:
    return categorize(Profile(model="m", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, None),
        (268_098_176, "tiny"),
        (999_999_999, "tiny"),
        (1_000_000_000, "small"),
        (6_900_000_000, "small"),
        (7_000_000_000, "medium"),
        (30_000_000_000, "medium"),
        (70_000_000_000, "large"),
    ],
)
def test_tiers(params: int | None, expected: str | None) -> None:
    assert tier(params) == expected


def test_generalist_needs_every_capability_above_0_7() -> None:
    all_good = dict.fromkeys(CAPABILITIES, 0.71)
    assert "generalist" in profile(capabilities=all_good).categories
    assert "generalist" not in profile(capabilities={**all_good, "coding": 0.7}).categories
    seven = {k: v for k, v in all_good.items() if k != "tool_use"}
    p = profile(capabilities=seven)
    assert "generalist" not in p.categories and p.missing == ["tool_use"]


def test_specialists_lightweight_efficient() -> None:
    p = profile(
        capabilities={"reasoning": 0.9, "creativity": 0.85, "coding": 0.86, "conversation": 0.2},
        peak_rss_mb=3999.0,
        decode_tps=50.5,
    )
    assert p.categories == ["analytical", "coding", "lightweight", "efficient"]
    heavy = profile(capabilities={}, peak_rss_mb=4000.0, decode_tps=50.0)
    assert heavy.categories == []
    unknown = profile(capabilities={})  # no memory or speed measured: no claim either way
    assert unknown.categories == [] and len(unknown.missing) == 8


def _run(
    rid: str,
    at: int,
    caps: dict[str, float],
    temperature: float | None = 0.0,
    status: str = "completed",
) -> Run:
    return Run(
        id=rid,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=at),
        status=status,
        model_name="m",
        backend="llamacpp",  # type: ignore[arg-type]
        model={"quantization": "Q4_K_M", "flash_attn": False, "parameters": 268_000_000},
        params={"temperature": temperature},
        suites=[],
        peak_rss_mb=450.0,
        summary={"decode_tps": 51.0, "capabilities": {k: {"score": v} for k, v in caps.items()}},
    )


def test_profiles_group_configurations_and_newest_score_wins() -> None:
    runs = [
        _run("a", 0, {"reasoning": 0.9, "coding": 0.1}),
        _run("b", 5, {"reasoning": 0.2}),
        _run("c", 3, {"reasoning": 0.95}, temperature=0.7),
        _run("d", 9, {"reasoning": 1.0}, status="failed"),
    ]
    by_temp = {p.temperature: p for p in profiles(runs)}
    assert set(by_temp) == {0.0, 0.7}
    cold = by_temp[0.0]
    assert cold.capabilities == {"reasoning": 0.2, "coding": 0.1}  # b is newer than a
    assert cold.runs == ["a", "b"] and cold.tier == "tiny"
    assert cold.categories == ["lightweight", "efficient"]
    assert "analytical" in by_temp[0.7].categories
