"""The leaderboard's charts: the report's own speed, memory and capability charts
(``hainet.report.charts``), drawn from the shared results of one hardware class, as
PNG data URIs (the page stays one file, no JavaScript).

The report draws on bare :class:`matplotlib.figure.Figure` objects, never pyplot,
so these can be drawn in the app's thread pool.  Each figure here is a group's
median over the runs shared; the page's table gives the ranges.
"""

from __future__ import annotations

import base64
from typing import Any, NamedTuple

from hainet.report.charts import chart_png

__all__ = ["Chart", "leaderboard_charts", "results_analysis"]

# (report chart, what the image shows: its alt text)
_SHOWN = (
    ("speed", "median decode, prefill tokens/s and time to first token per model"),
    ("memory", "median peak memory per model"),
    ("capabilities", "median capability scores per model"),
)


class Chart(NamedTuple):
    name: str
    alt: str
    uri: str
    """``data:image/png;base64,...``"""


def _label(group: dict[str, Any]) -> str:
    return ", ".join(group["model_names"])[:40] or group["model"][:12]


def _median(stats: dict[str, Any] | None) -> float | None:
    return None if stats is None else float(stats["median"])


def results_analysis(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts of a report ``Analysis`` its speed, memory and capability charts
    read, from ``/v1/results`` groups: one configuration per (model, quantization)."""
    speed, memory, by_config = [], [], []
    for g in groups:
        model = _label(g)
        config = f"{model} {g['quantization'] or '-'}"
        fig = g["figures"]
        speed.append(
            {
                "config": config,
                "decode_tps": _median(fig.get("decode_tps")),
                "prefill_tps": _median(fig.get("prefill_tps")),
                "ttft_s": _median(fig.get("ttft_s")),
            }
        )
        memory.append(
            {"config": config, "peak_rss_mb": _median(fig.get("peak_rss_mb")), "model_rss_mb": None}
        )
        caps = {c: s["median"] for c, s in g["capabilities"].items() if s is not None}
        by_config.append({"model": model, "config": config, "capabilities": caps})
    names = sorted({c for entry in by_config for c in entry["capabilities"]})
    return {
        "speed": speed,
        "memory": memory,
        "capabilities": {"names": names, "by_config": by_config},
    }


def leaderboard_charts(groups: list[dict[str, Any]], hardware: str) -> list[Chart]:
    """The charts with data for the groups of one hardware class."""
    analysis = results_analysis(groups)
    out = []
    for name, what in _SHOWN:
        data = chart_png(name, analysis)
        if data is not None:
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            out.append(Chart(name, f"{what} on {hardware}", uri))
    return out
