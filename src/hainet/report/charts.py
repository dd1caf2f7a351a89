"""PNG charts of an analysis (matplotlib's Agg canvas: no display needed).

Every chart file is always written.  A chart without data is drawn as a panel that
says what is missing and which sweep measures it (``NO_DATA``), and the analysis
lists it under ``"skipped"`` with the same message.

Each drawer takes an analysis and returns a bare :class:`~matplotlib.figure.Figure`
(None without data), never touching pyplot, whose figure registry is global state:
the hub draws the same charts from its thread pool (``chart_png``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["CHARTS", "NO_DATA", "chart_png", "draw_charts", "png"]

Analysis = dict[str, Any]

NO_DATA = {
    "speed": "no data: run `hainet bench` (no speed was measured)",
    "memory": "no data: run `hainet bench` with a local model (no peak RSS was measured)",
    "temperature": "no data: run a sweep with --temperatures 0 0.7 (two or more temperatures)",
    "capabilities": "no data: run `hainet bench` (no capability was scored)",
    "flash_attention": "no data: run a sweep with --flash-attention true false",
    "radar": "no data: a radar needs three or more capabilities; run `hainet bench --suites all`",
}

DPI = 80
COLORS = [f"C{i}" for i in range(10)]  # the default colour cycle


def _figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure, *, tight: bool = True) -> bytes:
    """The figure as PNG bytes at the report's resolution."""
    if tight:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _placeholder(title: str, message: str) -> Figure:
    fig = _figure((9, 2.5))
    fig.suptitle(title, fontsize=13)
    fig.text(0.5, 0.45, message, ha="center", va="center", fontsize=11, color="#a33")
    return fig


def _hbars(ax: Any, labels: list[str], values: list[float | None], title: str) -> None:
    ys = range(len(labels))
    ax.barh(list(ys), [v or 0.0 for v in values], color=COLORS[0])
    for y, v in zip(ys, values, strict=True):
        ax.text(v or 0.0, y, " -" if v is None else f" {v:.3g}", va="center", fontsize=8)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.15)


def speed_chart(analysis: Analysis) -> Figure | None:
    rows = [r for r in analysis["speed"] if r["decode_tps"] or r["prefill_tps"] or r["ttft_s"]]
    if not rows:
        return None
    labels = [r["config"] for r in rows]
    fig = _figure((15, 1.2 + 0.35 * len(rows)))
    axes = fig.subplots(1, 3, sharey=True)
    _hbars(axes[0], labels, [r["decode_tps"] for r in rows], "decode tokens/s (higher is better)")
    _hbars(axes[1], labels, [r["prefill_tps"] for r in rows], "prefill tokens/s (higher is better)")
    _hbars(axes[2], labels, [r["ttft_s"] for r in rows], "time to first token, s (lower is better)")
    fig.suptitle("Speed per configuration")
    return fig


def memory_chart(analysis: Analysis) -> Figure | None:
    rows = [r for r in analysis["memory"] if r["peak_rss_mb"] is not None]
    if not rows:
        return None
    labels = [r["config"] for r in rows]
    fig = _figure((10, 1.2 + 0.35 * len(rows)))
    ax = fig.subplots()
    ys = list(range(len(rows)))
    ax.barh(ys, [r["peak_rss_mb"] for r in rows], color=COLORS[1], label="peak RSS of the process")
    if any(r["model_rss_mb"] is not None for r in rows):  # not known of shared results
        ax.barh(
            ys,
            [r["model_rss_mb"] or 0.0 for r in rows],
            color=COLORS[2],
            height=0.4,
            label="model's share (peak minus RSS before loading)",
        )
    for y, r in zip(ys, rows, strict=True):
        ax.text(r["peak_rss_mb"], y, f" {r['peak_rss_mb']:.0f} MiB", va="center", fontsize=8)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Memory usage per configuration")
    return fig


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return math.ceil(n / cols), cols


def temperature_chart(analysis: Analysis) -> Figure | None:
    groups = [g for g in analysis["temperature_effect"] if len(g["points"]) >= 2]
    if not groups:
        return None
    rows, cols = _grid(len(groups), 2)
    fig = _figure((7 * cols, 4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, group in zip(axes.flat, groups, strict=False):
        temps = [p["temperature"] for p in group["points"]]
        names = sorted({n for p in group["points"] for n in p["capabilities"]})
        for i, name in enumerate(names):
            ys = [p["capabilities"].get(name) for p in group["points"]]
            ax.plot(
                temps,
                [math.nan if y is None else y for y in ys],
                marker="o",
                color=COLORS[i % len(COLORS)],
                label=name,
            )
        ax.set_title(f"{group['model']} {group['quantization'] or '-'}", fontsize=10)
        ax.set_xlabel("temperature")
        ax.set_ylabel("score")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.suptitle("Temperature effect on each capability")
    return fig


def capabilities_chart(analysis: Analysis) -> Figure | None:
    names: list[str] = analysis["capabilities"]["names"]
    configs = [c for c in analysis["capabilities"]["by_config"] if c["capabilities"]]
    if not names or not configs:
        return None
    models = list(dict.fromkeys(c["model"] for c in configs))
    fig = _figure((14, 4.2 * len(models)))
    axes = fig.subplots(len(models), 1, squeeze=False)
    for ax, model in zip(axes.flat, models, strict=True):
        mine = [c for c in configs if c["model"] == model]
        width = 0.8 / len(mine)
        for i, c in enumerate(mine):
            xs = [j + i * width - 0.4 + width / 2 for j in range(len(names))]
            ys = [c["capabilities"].get(n, 0.0) for n in names]
            label = c["config"][len(model) + 1 :]
            ax.bar(xs, ys, width=width, color=COLORS[i % len(COLORS)], label=label)
        ax.set_xticks(range(len(names)), names, fontsize=8, rotation=15)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score")
        ax.set_title(f"Task performance: {model}", fontsize=10)
        ax.legend(fontsize=7, ncols=min(4, len(mine)), loc="upper right")
    return fig


def flash_chart(analysis: Analysis) -> Figure | None:
    pairs = analysis["flash_attention"]
    if not pairs:
        return None
    labels = [p["label"] for p in pairs]
    fig = _figure((14, 1.5 + 0.5 * len(pairs)))
    axes = fig.subplots(1, 2, sharey=True)
    ys = list(range(len(pairs)))
    for ax, key, title in (
        (axes[0], "decode_tps", "decode tokens/s"),
        (axes[1], "mean_score", "mean capability score"),
    ):
        on = [p["on"][key] or 0.0 for p in pairs]
        off = [p["off"][key] or 0.0 for p in pairs]
        ax.barh([y - 0.2 for y in ys], on, height=0.4, color=COLORS[0], label="flash attention on")
        ax.barh([y + 0.2 for y in ys], off, height=0.4, color=COLORS[3], label="off")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="best")
    axes[0].set_yticks(ys, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle("Flash-attention impact (same model, quantization, temperature)")
    return fig


def radar_chart(analysis: Analysis) -> Figure | None:
    names: list[str] = analysis["capabilities"]["names"]
    configs = [c for c in analysis["capabilities"]["by_config"] if c["capabilities"]]
    if len(names) < 3 or not configs:
        return None
    rows, cols = _grid(len(configs), 4)
    fig = _figure((3.6 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False, subplot_kw={"projection": "polar"})
    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    for i, (ax, c) in enumerate(zip(axes.flat, configs, strict=False)):
        values = [c["capabilities"].get(n, 0.0) for n in names]
        color = COLORS[i % len(COLORS)]
        ax.plot([*angles, angles[0]], [*values, values[0]], color=color)
        ax.fill([*angles, angles[0]], [*values, values[0]], color=color, alpha=0.25)
        ax.set_xticks(angles, [n.replace("_", "\n") for n in names], fontsize=6)
        ax.set_ylim(0, 1)
        ax.set_yticks([0.5, 1.0], ["0.5", "1"], fontsize=6)
        ax.set_title(c["config"], fontsize=8)
    for ax in list(axes.flat)[len(configs) :]:
        ax.axis("off")
    return fig


# name -> (file, title, drawer)
CHARTS: dict[str, tuple[str, str, Callable[[Analysis], Figure | None]]] = {
    "speed": ("speed.png", "Speed comparison", speed_chart),
    "memory": ("memory.png", "Memory usage", memory_chart),
    "temperature": ("temperature.png", "Temperature effect on each capability", temperature_chart),
    "capabilities": ("capabilities.png", "Task performance per model", capabilities_chart),
    "flash_attention": ("flash_attention.png", "Flash-attention impact", flash_chart),
    "radar": ("radar.png", "Capability radar per configuration", radar_chart),
}


def chart_png(name: str, analysis: Analysis) -> bytes | None:
    """Chart ``name`` of :data:`CHARTS` as PNG bytes; None when it has no data."""
    fig = CHARTS[name][2](analysis)
    return None if fig is None else png(fig)


def draw_charts(analysis: Analysis, output_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Write every chart; return {name: path} and {name: no-data message}."""
    paths: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name, (file, title, _) in CHARTS.items():
        path = output_dir / file
        data = chart_png(name, analysis)
        if data is None:
            skipped[name] = NO_DATA[name]
            data = png(_placeholder(title, NO_DATA[name]), tight=False)
        path.write_bytes(data)
        paths[name] = path
    return paths, skipped
