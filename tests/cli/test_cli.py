import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hainet.cli import expand_multi, main


def hainet(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_multi_value_options_take_several_values() -> None:
    assert expand_multi(["bench", "--models", "a", "b", "--quick", "-s", "x", "y"]) == [
        "bench",
        "--models",
        "a",
        "--models",
        "b",
        "--quick",
        "-s",
        "x",
        "-s",
        "y",
    ]
    assert expand_multi(["bench", "--temperature", "-1", "--models", "a"]) == [
        "bench",
        "--temperature",
        "-1",
        "--models",
        "a",
    ]


@pytest.mark.model
def test_bench_quick_on_the_bundled_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "res.json"
    code, out, _ = hainet(capsys, "bench", "--quick", "--output", str(out_file))
    assert code == 0
    assert "gemma-3-270m" in out and "completed" in out and "stored run" in out
    written = json.loads(out_file.read_text())
    [run] = written["runs"]
    assert written["sweep"]["cells"] == 1 and written["sweep"]["loads"] == 1
    assert written["sweep"]["status"] == "completed" and run["cell"] == "gemma-3-270m|-|-|-"
    assert run["status"] == "completed" and run["quick"] is True
    assert run["summary"]["suites"]["reasoning"]["cases"] == 5
    assert run["summary"]["decode_tps"] > 0 and run["peak_rss_mb"] > 100 and run["load_s"] > 0
    assert run["summary"]["tier"] == "tiny" and "lightweight" in run["summary"]["categories"]
    assert set(run["summary"]["capabilities"]) == {"reasoning"}
    assert "tier: tiny" in out and "capabilities: reasoning" in out

    code, out, _ = hainet(capsys, "runs", "show", run["id"][:8], "--json")
    shown = json.loads(out)
    assert code == 0 and len(shown["results"]) == 5
    assert all(r["prompt"] and r["ttft_s"] > 0 for r in shown["results"])

    code, out, _ = hainet(capsys, "runs", "list", "--json")
    assert [r["id"] for r in json.loads(out)] == [run["id"]]


def test_models_list_and_add(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    assert hainet(capsys, "models", "add", "mine", "--path", str(gguf))[0] == 0
    assert (
        hainet(
            capsys,
            "models",
            "add",
            "srv",
            "--url",
            "http://127.0.0.1:9/v1",
            "--model",
            "qwen",
            "--mode",
            "chat",
        )[0]
        == 0
    )
    code, out, _ = hainet(capsys, "models", "--json")
    models = {m["name"]: m for m in json.loads(out)}
    assert list(models) == ["gemma-3-270m", "mine", "srv"]
    assert models["gemma-3-270m"]["parameters"] == 268_098_176
    assert models["gemma-3-270m"]["tier"] == "tiny" and models["srv"]["tier"] is None
    assert models["srv"]["backend"] == "openai" and models["srv"]["mode"] == "chat"
    code, _, err = hainet(capsys, "models", "add", "mine", "--path", str(gguf))
    assert code == 2 and "already exists" in err
    code, _, err = hainet(
        capsys, "models", "add", "x", "--url", "http://h/v1", "--model", "m", "--mode", "sing"
    )
    assert code == 2 and "mode" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["bench", "-m", "nope"], 2, "unknown model 'nope'"),
        (["bench", "-m", "/no/such/file.gguf"], 3, "model file not found: /no/such/file.gguf"),
        (["bench", "-s", "nope"], 4, "unknown suite 'nope'"),
        (["runs", "show", "abcdef"], 5, "no run with id 'abcdef'"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, _, err = hainet(capsys, *args)
    assert got == code
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_corrupt_gguf_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"\x00" * 1000)
    code, _, err = hainet(capsys, "bench", "-m", str(bad), "--quick")
    assert code == 3 and "is not a GGUF file" in err and len(err.strip().splitlines()) == 1


def test_database_that_is_not_a_database(
    capsys: pytest.CaptureFixture[str], hainet_home: Path
) -> None:
    db = hainet_home / "hainet.db"
    db.write_bytes(b"my thesis, not a database " * 100)
    before = db.read_bytes()
    code, _, err = hainet(capsys, "runs", "list")
    assert code == 5 and "is not a SQLite database" in err and len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.backends.servers import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    assert hainet(capsys, "models", "add", "gone", "--url", url, "--model", "m")[0] == 0
    code, out, err = hainet(capsys, "bench", "-m", "gone", "--quick")
    assert code == 3 and "cannot reach the server" in err
    code, out, _ = hainet(capsys, "runs", "list", "--json")
    [run] = json.loads(out)
    assert run["status"] == "failed" and "cannot reach" in run["error"]


# A case that cannot finish before the test signals: no stop, 1,900 tokens of counting
# (about 50 s on a quiet machine, minutes under load).
SLOW_SUITE = {
    "name": "slow",
    "version": "1",
    "capability": "reasoning",
    "scorer": "exact",
    "max_tokens": 1900,
    "prompt_template": "{input}",
    "quick": ["count"],
    "cases": [{"id": "count", "input": "Count to one thousand: 1, 2, 3,", "target": "x"}],
}


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db) as con:
            return int(con.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def _terminal_sigint() -> None:
    # As at a terminal, where Ctrl-C is never ignored: a test run started in the
    # background (`make test &` from a script) hands its children SIGINT ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.model
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_marks_the_run_interrupted_and_keeps_finished_cases(
    hainet_home: Path, sig: signal.Signals
) -> None:
    # The five quick reasoning cases on the real model, then a case that would run for
    # minutes: the test signals once the five are stored, so the slow case is on the
    # model thread (or about to be), and the process must still exit promptly.
    (hainet_home / "suites").mkdir()
    (hainet_home / "suites" / "slow.json").write_text(json.dumps(SLOW_SUITE))
    env = {**os.environ, "HAINET_HOME": str(hainet_home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hainet.cli import main; main()"]
        + ["bench", "--quick", "-s", "reasoning", "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_sigint,
    )
    db = hainet_home / "hainet.db"
    deadline = time.monotonic() + 300  # generous: only a loaded machine gets near it
    while _stored(db) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None and _stored(db) == 5, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(sig)
    signalled = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"bench had not exited 30 s after {sig.name}: {err[-2000:]}")
    exited_after = time.monotonic() - signalled
    assert proc.returncode == 130, err
    assert "interrupted" in err
    with sqlite3.connect(db) as con:
        status, n_cases, slow = con.execute(
            "SELECT status, json_extract(summary, '$.suites.reasoning.cases'),"
            " json_extract(summary, '$.suites.slow') FROM runs"
        ).fetchone()
        stored = con.execute("SELECT count(*) FROM results").fetchone()[0]
        whole = con.execute(
            "SELECT count(*) FROM results WHERE score IS NOT NULL AND output IS NOT NULL"
        ).fetchone()[0]
    assert status == "interrupted"
    assert 2 <= stored < 15 and n_cases == stored
    assert stored == whole == 5 and slow is None, (stored, whole, slow)
    assert exited_after < 30
