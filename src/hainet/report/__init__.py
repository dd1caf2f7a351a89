"""Reports over stored runs: PNG charts, ``analysis.json`` and one HTML file.

Layer 5: reads runs (from the store or a bench JSON file), never calls a backend.
"""

from hainet.report.analysis import ANALYSIS_SCHEMA_VERSION, analyze, config_label
from hainet.report.build import ReportPaths, build_report, render_html
from hainet.report.charts import CHARTS, NO_DATA

__all__ = [
    "ANALYSIS_SCHEMA_VERSION",
    "CHARTS",
    "NO_DATA",
    "ReportPaths",
    "analyze",
    "build_report",
    "config_label",
    "render_html",
]
