"""The report's hyper section: score over generations and the lineage tree."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from hainet.hyper.loop import HyperLoop
from hainet.report import build_report
from hainet.store import Store
from hainet.store.hyper import HyperStore
from tests.report.conftest import make_runs

from .conftest import TRAIN, ScriptedProposer, make_controls, procedure, root_spec


def test_report_has_score_chart_and_lineage_when_hyper_runs_exist(
    store: Store, tmp_path: Path
) -> None:
    runs = make_runs(store)
    plain = build_report(runs, tmp_path / "plain", hyper_store=store)
    assert 'id="hyper"' not in plain.html.read_text()  # no hyper runs yet: no section

    controls, _ = make_controls()
    loop = HyperLoop(
        store, controls, lambda _p: ScriptedProposer(), trainset=TRAIN, procedure=procedure()
    )
    run = asyncio.run(loop.run(root_spec(), generations=5))
    gens = HyperStore(store).generations(run.id)

    paths = build_report(runs, tmp_path / "out", hyper_store=store)
    html = paths.html.read_text()
    assert 'id="hyper"' in html and f"run {run.id[:8]}" in html
    assert f'id="chart-hyper-{run.id[:8]}"' in html
    png = paths.charts[f"hyper-{run.id[:8]}"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = re.search(r"<svg[^>]*class=\"lineage\".*?</svg>", html, re.S)
    assert svg is not None
    assert svg.group(0).count("<circle") == len(gens)
    assert svg.group(0).count("<line") == len(gens) - 1  # every non-root has its parent edge
    assert 'stroke="#000"' in svg.group(0)  # the current generation is ringed
    analysis = json.loads(paths.analysis.read_text())
    assert [h["id"] for h in analysis["hyper"]] == [run.id]
    assert len(analysis["hyper"][0]["generations"]) == len(gens)


def test_hainet_report_command_includes_the_stores_hyper_runs(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hainet.cli import app

    make_runs(store)
    controls, _ = make_controls()
    loop = HyperLoop(
        store, controls, lambda _p: ScriptedProposer(), trainset=TRAIN, procedure=procedure()
    )
    run = asyncio.run(loop.run(root_spec(), generations=2))
    out = tmp_path / "cli-report"
    res = CliRunner().invoke(app, ["--db", db_url, "report", "--output-dir", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert 'id="hyper"' in html and f"run {run.id[:8]}" in html
