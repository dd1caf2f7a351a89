"""The report's self-improving-agents section: score over generations, lineage tree.

Reads hyper runs from the store (``hainet.store.hyper``), never the hyper package:
the report is a lower layer than the loop that wrote them.  The score chart is a PNG
(matplotlib, like the other charts); the lineage tree is inline SVG, so a reader can
hover a node for its operator, status and score.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hainet.store import Store  # noqa: E402
from hainet.store.hyper import GenerationRecord, HyperStore  # noqa: E402

__all__ = ["STATUS_COLORS", "draw_hyper_charts", "hyper_analysis", "lineage_svg"]

STATUS_COLORS = {
    "accepted": "#2a8a3e",
    "rejected": "#9a9a9a",
    "pending_approval": "#e08a00",
    "rolled_back": "#8a3ea8",
    "proposed": "#3e6ea8",
}
MAX_RUNS = 10
DPI = 80


def _gen(g: GenerationRecord) -> dict[str, Any]:
    return {
        "id": g.id,
        "number": g.number,
        "parent": g.parent_id,
        "operator": g.operator,
        "status": g.status,
        "risk": g.risk,
        "score": g.score,
        "spec_id": g.spec_id,
        "procedure_id": g.procedure_id,
    }


def hyper_analysis(store: Store, *, limit: int = MAX_RUNS) -> list[dict[str, Any]]:
    """The newest ``limit`` hyper runs with their generations and procedure versions."""
    hs = HyperStore(store)
    out = []
    for run in hs.list_runs(limit=limit):
        gens = hs.generations(run.id)
        if not gens:
            continue
        procs = hs.procedures(run.id)
        out.append(
            {
                "id": run.id,
                "agent": run.agent_name,
                "status": run.status,
                "created_at": run.created_at.isoformat(timespec="seconds"),
                "current": run.current_generation_id,
                "final": run.final,
                "generations": [_gen(g) for g in gens],
                "procedures": [
                    {
                        "procedure_id": p.procedure_id,
                        "at_generation": p.at_generation,
                        "status": p.status,
                        "kind": p.change.get("kind"),
                        "reason": p.reason,
                    }
                    for p in procs
                ],
            }
        )
    return out


def _score_chart(run: dict[str, Any], path: Path) -> None:
    gens = run["generations"]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for status, color in STATUS_COLORS.items():
        pts = [
            (g["number"], g["score"])
            for g in gens
            if g["status"] == status and g["score"] is not None
        ]
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            ax.scatter(xs, ys, s=22, color=color, label=status, zorder=3)
    last = max(g["number"] for g in gens)
    best: list[float | None] = []
    cur: float | None = None
    for n in range(last + 1):
        for g in gens:
            if g["number"] == n and g["status"] == "accepted" and g["score"] is not None:
                cur = g["score"] if cur is None else max(cur, g["score"])
        best.append(cur)
    ax.step(range(last + 1), [b if b is not None else float("nan") for b in best], where="post",
            color="#2a8a3e", lw=1.5, label="best accepted")  # fmt: skip
    for p in run["procedures"]:
        if p["status"] in ("trial", "kept", "reverted"):
            ax.axvline(p["at_generation"] - 0.5, color="#3e6ea8", ls="--", lw=0.8)
            ax.text(p["at_generation"] - 0.4, 0.02, f"{p['kind']}: {p['status']}", fontsize=7,
                    color="#3e6ea8", rotation=90, va="bottom")  # fmt: skip
    final = run.get("final") or {}
    title = f"{run['agent']} ({run['id'][:8]}): validation score by generation"
    if "baseline" in final and "final" in final:
        title += f"; test {final['baseline']['test']:.2f} -> {final['final']['test']:.2f}"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole
    ax.set_ylabel("valset score")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def draw_hyper_charts(runs: list[dict[str, Any]], output_dir: Path) -> dict[str, Path]:
    """One score-over-generations PNG per run; its file name goes into the run's dict."""
    out = {}
    for run in runs:
        path = output_dir / f"hyper-{run['id'][:8]}.png"
        _score_chart(run, path)
        run["chart"] = path.name
        out[run["id"]] = path
    return out


def lineage_svg(run: dict[str, Any], *, dx: int = 42, dy: int = 18) -> str:
    """The generation tree as inline SVG: x is the generation, children below parents."""
    gens = run["generations"]
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for g in gens:
        children[g["parent"]].append(g)
    rows: dict[str, float] = {}
    next_row = 0

    def place(g: dict[str, Any]) -> float:
        nonlocal next_row
        kids = sorted(children.get(g["id"], []), key=lambda k: k["number"])
        if not kids:
            rows[g["id"]] = next_row
            next_row += 1
        else:
            ys = [place(k) for k in kids]
            rows[g["id"]] = (ys[0] + ys[-1]) / 2
        return rows[g["id"]]

    for root in sorted(children.get(None, []), key=lambda g: g["number"]):
        place(root)
    last = max(g["number"] for g in gens)
    width, height = (last + 1) * dx + 60, max(next_row, 1) * dy + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="9" '
        'font-family="sans-serif">'
    ]

    def xy(g: dict[str, Any]) -> tuple[float, float]:
        return 20 + g["number"] * dx, 15 + rows[g["id"]] * dy

    for g in gens:
        if g["parent"] and g["parent"] in rows and g["id"] in rows:
            px, py = xy(next(p for p in gens if p["id"] == g["parent"]))
            x, y = xy(g)
            parts.append(f'<line x1="{px}" y1="{py}" x2="{x}" y2="{y}" stroke="#bbb"/>')
    for g in gens:
        if g["id"] not in rows:
            continue
        x, y = xy(g)
        color = STATUS_COLORS.get(g["status"], "#000")
        score = "-" if g["score"] is None else f"{g['score']:.2f}"
        ring = ' stroke="#000" stroke-width="2"' if g["id"] == run.get("current") else ""
        tip = escape(f"gen {g['number']} {g['operator'] or 'start'} {g['status']} val {score}")
        parts.append(
            f'<g><title>{tip}</title><circle cx="{x}" cy="{y}" r="5" fill="{color}"{ring}/>'
            f'<text x="{x + 7}" y="{y + 3}" fill="#444">{score}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
