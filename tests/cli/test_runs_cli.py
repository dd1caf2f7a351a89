"""``hainet runs``: a run whose process died shows as abandoned, with why."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hainet.cli import main
from hainet.config import load_settings
from hainet.store import Store


def hainet(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_runs_list_and_show_a_run_whose_process_died_as_abandoned(
    capsys: pytest.CaptureFixture[str], hainet_home: Path
) -> None:
    store = Store(load_settings().db_url)
    run = store.create_run(
        model_name="m", backend="mock", model={}, params={"temperature": 0}, suites=["s"]
    )
    store.close()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with sqlite3.connect(hainet_home / "hainet.db") as con:
        con.execute("UPDATE runs SET owner_pid = ?", (child.pid,))

    code, out, _ = hainet(capsys, "runs", "list")
    assert code == 0 and run.id[:8] in out and "abandoned" in out and "running" not in out
    code, out, _ = hainet(capsys, "runs", "list", "--json")
    [listed] = json.loads(out)
    assert listed["status"] == "abandoned" and listed["owner_pid"] == child.pid
    assert f"its process {child.pid} on host" in listed["error"]
    code, out, _ = hainet(capsys, "runs", "show", run.id[:8])
    assert code == 0 and f"abandoned: its process {child.pid} on host" in " ".join(out.split())
