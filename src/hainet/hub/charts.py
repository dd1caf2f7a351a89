"""The leaderboard's chart: median decode speed per model of one hardware class, as a
PNG data URI (the page stays one file, no JavaScript).

Drawn on a bare :class:`matplotlib.figure.Figure`, not pyplot: pages render in the
app's thread pool, and pyplot keeps global state.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["decode_chart"]


def decode_chart(groups: list[dict[str, Any]]) -> str | None:
    """Horizontal bars of median decode tokens/s with min-max whiskers; None when no
    group has a decode figure."""
    rows = [
        (
            ", ".join(g["model_names"])[:40] + f" {g['quantization'] or ''}",
            g["figures"]["decode_tps"],
        )
        for g in groups
        if g["figures"].get("decode_tps")
    ]
    if not rows:
        return None
    fig = Figure(figsize=(7, 0.5 + 0.4 * len(rows)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    medians = [s["median"] for _, s in rows]
    low = [s["median"] - s["min"] for _, s in rows]
    high = [s["max"] - s["median"] for _, s in rows]
    ax.barh(ys, medians, xerr=[low, high], color="C0", capsize=3)
    ax.set_yticks(ys, [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("decode tokens/s (median, min-max)", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
