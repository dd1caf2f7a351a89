"""``hainet bench`` refuses bad input with one line and an exit code, never a
traceback or a stored NaN (issue 12, input validation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hainet.cli import main


def hainet(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--temperatures", "nan"], "--temperatures"),
        (["--temperatures", "0", "inf"], "--temperatures"),
        (["--temperatures", "-inf"], "--temperatures"),
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "inf"], "--temperature"),
    ],
)
def test_non_finite_temperatures_are_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str], hainet_home: Path, args: list[str], flag: str
) -> None:
    code, out, err = hainet(capsys, "bench", "--quick", *args)
    assert code == 2, out + err
    # click's own range check catches `--temperature nan`; the rest is hainet's.
    assert f"{flag} must be finite and >= 0" in err or f"'{flag}'" in err
    assert "Traceback" not in out + err
    assert not (hainet_home / "hainet.db").exists() or "nan" not in (
        (hainet_home / "hainet.db").read_bytes().decode("latin-1").lower()
    )


def test_a_suite_nested_100000_deep_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "deep.json"
    case = {"id": "a", "input": "q", "target": "X"}
    text = json.dumps({"name": "d", "version": "1", "capability": "c", "cases": [case]})
    path.write_text(text.replace('"X"', "[" * 100_000 + "]" * 100_000))
    code, out, err = hainet(capsys, "bench", "--suites", str(path))
    assert code == 4, out + err
    assert "deep.json: nested deeper than 64 levels" in err
    assert "Traceback" not in out + err and "RecursionError" not in out + err
