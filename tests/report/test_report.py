"""build_report on runs built for the purpose: charts, analysis.json, HTML, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hainet.cli import app, expand_multi
from hainet.errors import ConfigError
from hainet.report import CHARTS, NO_DATA, analyze, build_report
from hainet.store import Run, Store

from .conftest import CAPS, decode, expected_score

PNG = b"\x89PNG\r\n\x1a\n"
KEYS = {
    "schema_version",
    "generated_at",
    "runs",
    "profiles",
    "speed",
    "memory",
    "temperature_effect",
    "flash_attention",
    "capabilities",
    "best",
    "charts",
    "skipped",
}


def test_every_output_is_written(runs: list[Run], tmp_path: Path) -> None:
    paths = build_report(runs, tmp_path / "out")
    assert set(paths.charts) == set(CHARTS) and paths.skipped == {}
    for path in paths.charts.values():
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5000
    data = json.loads(paths.analysis.read_text())
    assert set(data) >= KEYS
    assert sorted(data["runs"]) == sorted(r.id for r in runs)
    assert data["charts"] == {name: file for name, (file, _, _) in CHARTS.items()}
    html = paths.html.read_text()
    for name in CHARTS:
        assert f'id="chart-{name}"' in html
    assert html.count("data:image/png;base64,") == len(CHARTS)
    for table in ("configurations", "capabilities", "best", "flash"):
        assert f'id="table-{table}"' in html
    assert "http://" not in html and "https://" not in html  # nothing fetched


def test_numbers_in_the_analysis(runs: list[Run]) -> None:
    data = analyze(runs)
    assert len(data["profiles"]) == 16 and len(data["configurations"]) == 16
    speed = {s["config"]: s for s in data["speed"]}
    assert speed["big q8_0 fa t0.7"]["decode_tps"] == decode("big", "q8_0", True) == 30.0
    assert speed["small q4_k_m no-fa t0"]["prefill_tps"] == 200.0
    memory = {m["config"]: m for m in data["memory"]}
    assert memory["small q8_0 fa t0"]["peak_rss_mb"] == 500.0
    # Temperature effect: one group per (model, quantization), two points each.
    groups = {(g["model"], g["quantization"]): g for g in data["temperature_effect"]}
    assert len(groups) == 4
    points = groups[("big", "q4_k_m")]["points"]
    assert [p["temperature"] for p in points] == [0.0, 0.7]
    assert points[1]["capabilities"]["reasoning"] == pytest.approx(
        expected_score("big", "q4_k_m", 0.7, 0)
    )
    # Flash attention: 8 pairs, on/off speed ratio, no score change.
    pairs = {p["label"]: p for p in data["flash_attention"]}
    assert len(pairs) == 8
    pair = pairs["small q8_0 t0"]
    assert pair["decode_speedup"] == pytest.approx(70.0 / 60.0)
    assert pair["score_delta"] == pytest.approx(0.0)
    caps = data["capabilities"]
    assert caps["names"] == ["reasoning", "creativity", "coding", "tool_use"]
    row = next(c for c in caps["by_config"] if c["config"] == "small q8_0 no-fa t0")
    assert row["capabilities"]["coding"] == pytest.approx(
        expected_score("small", "q8_0", 0.0, CAPS.index("coding"))
    )
    cfg = next(c for c in data["configurations"] if c["config"] == "small q4_k_m fa t0")
    assert cfg["tier"] == "tiny" and "efficient" in cfg["categories"]
    assert set(data["best"]) >= {"task", "agent", "available"}


def test_best_per_type_comes_from_the_selector(runs: list[Run]) -> None:
    best = analyze(runs)["best"]
    assert best["available"] is True
    assert set(best["task"]) >= {"speed_critical", "memory_constrained", "tool_use"}
    assert set(best["agent"]) >= {"creative", "coding", "translation"}
    fast = best["task"]["speed_critical"]
    assert fast is not None and fast["selected_model"] == "small"


def test_missing_data_is_drawn_as_a_no_data_panel(store: Store, tmp_path: Path) -> None:
    run = store.create_run(
        model_name="m",
        backend="mock",
        model={"name": "m"},
        params={"temperature": 0.2},
        suites=["reasoning"],
    )
    caps = {"reasoning": {"score": 0.5, "cases": 1, "scored": 1, "errors": 0}}
    run = store.finish_run(run.id, "completed", summary={"capabilities": caps, "decode_tps": 9.0})
    paths = build_report([run], tmp_path)
    assert set(paths.skipped) == {"memory", "temperature", "flash_attention", "radar"}
    assert paths.skipped["flash_attention"] == NO_DATA["flash_attention"]
    assert "--flash-attention true false" in paths.skipped["flash_attention"]
    for path in paths.charts.values():
        assert path.read_bytes()[:8] == PNG
    data = json.loads(paths.analysis.read_text())
    assert data["skipped"] == paths.skipped and data["flash_attention"] == []
    assert NO_DATA["flash_attention"] in paths.html.read_text()


def test_no_completed_run_is_an_error(store: Store, tmp_path: Path) -> None:
    run = store.create_run(model_name="m", backend="mock", model={}, params={}, suites=[])
    with pytest.raises(ConfigError, match="hainet bench"):
        build_report([store.finish_run(run.id, "failed", error="x")], tmp_path)


def test_cli_reads_the_store_a_results_file_and_run_ids(hainet_home: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "r"
    result = cli.invoke(app, ["report", "--output-dir", str(out)])
    assert isinstance(result.exception, ConfigError) and "hainet bench" in str(result.exception)

    from .conftest import make_runs

    runs = make_runs(Store(f"sqlite:///{hainet_home / 'hainet.db'}"))
    result = cli.invoke(app, ["report", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out / "report.html") in result.output
    assert len(json.loads((out / "analysis.json").read_text())["runs"]) == 16

    args = expand_multi(["report", "--runs", runs[0].id[:8], runs[1].id, "-o", str(out)])
    assert cli.invoke(app, args).exit_code == 0
    assert len(json.loads((out / "analysis.json").read_text())["runs"]) == 2

    bench_file = tmp_path / "bench.json"
    bench_file.write_text(
        json.dumps({"sweep": {}, "runs": [r.model_dump(mode="json") for r in runs[:4]]})
    )
    result = cli.invoke(app, ["report", "--results", str(bench_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(json.loads((out / "analysis.json").read_text())["runs"]) == 4
