from pathlib import Path

import pytest

from .test_cli import hainet


def test_check_reports_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = hainet(capsys, "sandbox", "check")
    assert code == 0 and "bubblewrap + seccomp" in out


def test_run_a_file_contained(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "p.py"
    prog.write_text(
        "import os, socket\nprint(input()[::-1])\n"
        "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError as e:\n    print('net', type(e).__name__)\n"
        "print(sorted(os.listdir('/')))\n"
    )
    data = tmp_path / "in.txt"
    data.write_text("olleh\n")
    code, out, err = hainet(capsys, "sandbox", "run", str(prog), "--stdin", str(data))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "hello" and lines[1].startswith("net ")
    assert "root" not in lines[2] and "home" not in lines[2] and "work" not in lines[2]
    assert "exit 0" in err


def test_run_reports_a_kill(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "loop.py"
    prog.write_text("while True:\n    pass\n")
    code, _, err = hainet(capsys, "sandbox", "run", str(prog), "--timeout", "1")
    assert code == 1 and ("killed by cpu" in err or "killed by timeout" in err)


def test_unsafe_mode_is_loud(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "p.py"
    prog.write_text("print('hi')\n")
    code, out, err = hainet(capsys, "sandbox", "run", str(prog), "--unsafe-no-sandbox")
    assert code == 0 and out == "hi\n"
    assert "WARNING" in err and "unsafe" in err.lower()


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = hainet(capsys, "sandbox", "run", str(tmp_path / "nope.py"))
    assert code == 2 and "cannot read" in err and len(err.strip().splitlines()) == 1
