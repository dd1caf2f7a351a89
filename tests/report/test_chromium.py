"""The HTML report rendered by a real headless Chromium: charts, tables, sort script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hainet.report import CHARTS, build_report
from hainet.store import Run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make sysdeps` installs it (apt-get install chromium)")
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_renders_in_chromium(runs: list[Run], tmp_path: Path) -> None:
    paths = build_report(runs, tmp_path / "out")
    url = paths.html.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # The inline script ran to its end (it sorts a table first, as a click does).
    assert re.search(r'<body[^>]*data-ready="1"', html), html[:500]
    assert "sorted-asc" in html
    for name in CHARTS:
        assert re.search(rf'<img[^>]*id="chart-{name}"[^>]*src="data:image/png;base64,', html)
    for table in ("configurations", "capabilities", "best", "flash"):
        assert f'id="table-{table}"' in html
    assert html.count("<tr>") >= 16
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
