"""report/charts.py draws on bare Figures, never pyplot, so charts can be drawn from
threads at once (the hub renders its leaderboard in its thread pool)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hainet.report import analyze
from hainet.report.charts import chart_png
from hainet.store import Run

PNG = b"\x89PNG\r\n\x1a\n"


def test_charts_drawn_from_threads_at_once_match_one_at_a_time(runs: list[Run]) -> None:
    analysis: dict[str, Any] = analyze(runs)
    names = ("speed", "memory", "capabilities")  # the leaderboard's; the others are alike
    alone = {name: chart_png(name, analysis) for name in names}
    assert all(data is not None and data[:8] == PNG for data in alone.values())
    jobs = [name for name in names for _ in range(2)]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda name: chart_png(name, analysis), jobs))
    assert together == [alone[name] for name in jobs]
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []  # no figure left in pyplot's registry


def test_a_chart_without_data_is_none() -> None:
    empty = {"speed": [], "memory": [], "capabilities": {"names": [], "by_config": []}}
    assert chart_png("speed", empty) is None and chart_png("capabilities", empty) is None
