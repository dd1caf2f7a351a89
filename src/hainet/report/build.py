"""Write a report: charts (PNG), ``analysis.json`` and one self-contained ``report.html``."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from pydantic import BaseModel, Field

from hainet.config import atomic_write
from hainet.errors import ConfigError
from hainet.report.analysis import analyze
from hainet.report.charts import CHARTS, draw_charts
from hainet.report.hyper import draw_hyper_charts, hyper_analysis, lineage_svg
from hainet.store import Run, Store

__all__ = ["ReportPaths", "build_report"]


class ReportPaths(BaseModel):
    """Where a report was written."""

    output_dir: Path
    html: Path = Field(description="The self-contained HTML report.")
    analysis: Path = Field(description="analysis.json: every comparison as data.")
    charts: dict[str, Path] = Field(description="Chart name -> PNG file.")
    skipped: dict[str, str] = Field(
        default_factory=dict, description="Charts drawn as 'no data' panels, and why."
    )


def _num(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hainet.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html.j2")


def render_html(
    analysis: dict[str, Any], charts: dict[str, Path], hyper_charts: dict[str, Path] | None = None
) -> str:
    embedded = [
        (
            name,
            {
                "title": CHARTS[name][1],
                "data": base64.b64encode(path.read_bytes()).decode("ascii"),
            },
        )
        for name, path in charts.items()
    ]
    hyper = [
        {
            **run,
            "chart_data": base64.b64encode((hyper_charts or {})[run["id"]].read_bytes()).decode(
                "ascii"
            )
            if run["id"] in (hyper_charts or {})
            else None,
            "lineage": Markup(lineage_svg(run)),
        }
        for run in analysis.get("hyper", [])
    ]
    # Inside <script>, "</" would end the element early.
    data = json.dumps(analysis, default=str).replace("</", "<\\/")
    return _template().render(
        a=analysis, charts=embedded, hyper=hyper, num=_num, analysis_json=Markup(data)
    )


def build_report(
    runs: Sequence[Run], output_dir: Path, *, hyper_store: Store | None = None
) -> ReportPaths:
    """Analyse ``runs`` and write the charts, ``analysis.json`` and ``report.html``.

    Reads only the runs given (never a backend), and with ``hyper_store`` the hyper
    runs in it (score over generations, lineage tree).  Raises :class:`ConfigError`
    when none of the runs completed.
    """
    analysis = analyze(runs)
    if not analysis["runs"]:
        raise ConfigError("no completed runs to report on", hint="run `hainet bench` first")
    output_dir.mkdir(parents=True, exist_ok=True)
    charts, skipped = draw_charts(analysis, output_dir)
    analysis["hyper"] = hyper_analysis(hyper_store) if hyper_store is not None else []
    hyper_charts = draw_hyper_charts(analysis["hyper"], output_dir)
    analysis["charts"] = {name: path.name for name, path in charts.items()}
    analysis["skipped"] = skipped
    analysis_path = output_dir / "analysis.json"
    atomic_write(analysis_path, json.dumps(analysis, indent=2, default=str) + "\n")
    html_path = output_dir / "report.html"
    atomic_write(html_path, render_html(analysis, charts, hyper_charts))
    return ReportPaths(
        output_dir=output_dir,
        html=html_path,
        analysis=analysis_path,
        charts={**charts, **{f"hyper-{k[:8]}": v for k, v in hyper_charts.items()}},
        skipped=skipped,
    )
