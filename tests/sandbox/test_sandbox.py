"""Sandbox API, fail-closed behaviour and the unsafe escape hatch."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

import hainet.sandbox
from hainet.errors import SandboxError
from hainet.sandbox import (
    CallOutcome,
    CallResult,
    Limits,
    Sandbox,
    SandboxResult,
    _seccomp,
    same_value,
)

from .conftest import needs_root, no_processes_left, write_script

pytestmark = needs_root


def test_exported_names_are_locked() -> None:
    assert sorted(hainet.sandbox.__all__) == sorted(
        [
            "DEFAULT_PYTHON",
            "CallOutcome",
            "CallResult",
            "JSONValue",
            "KilledBy",
            "Limits",
            "Sandbox",
            "SandboxResult",
            "same_value",
        ]
    )


# -- running code -------------------------------------------------------------------


def test_runs_code_with_stdin_and_args_under_a_fresh_uid(sandbox: Sandbox) -> None:
    code = "import os, sys\nprint(sys.stdin.read().upper(), sys.argv[1:], os.getuid())"
    r = sandbox.run(code, stdin="héllo", args=["a", "b"])
    assert r.ok and r.sandboxed
    text, uid = r.stdout.rsplit(" ", 1)
    assert text == "HÉLLO ['a', 'b']"
    assert int(uid) == r.uid and r.uid != 0
    assert r.killed_by is None and not r.truncated
    assert no_processes_left(r.uid)


def test_exit_code_and_stderr_are_the_codes(sandbox: Sandbox) -> None:
    r = sandbox.run("import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)")
    assert (r.exit_code, r.stderr, r.ok) == (3, "oops\n", False)
    r = sandbox.run("raise ValueError('bad')")
    assert r.exit_code == 1 and "ValueError: bad" in r.stderr and r.killed_by is None


def test_large_stdin_is_fed_without_deadlock(sandbox: Sandbox) -> None:
    data = "x" * (3 * 1024 * 1024)
    r = sandbox.run("import sys\nprint(len(sys.stdin.read()))", stdin=data)
    assert r.stdout.strip() == str(len(data))


def test_files_form_a_program_that_imports_its_siblings(sandbox: Sandbox) -> None:
    files = {
        "main.py": "from pkg.util import double\nimport helper\nprint(double(helper.N))",
        "helper.py": "N = 21",
        "pkg/__init__.py": "",
        "pkg/util.py": "def double(x):\n    return 2 * x",
        "data/input.txt": "payload",
    }
    r = sandbox.run(files)
    assert r.stdout == "42\n", r.stderr
    r = sandbox.run(
        {"run.py": "print(open('data/input.txt').read())", "data/input.txt": "p"}, main="run.py"
    )
    assert r.stdout == "p\n"


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../escape.py", "a/../../b.py", "./x.py", "", ".hainet_harness.py"]
)
def test_bad_file_names_are_refused(sandbox: Sandbox, name: str) -> None:
    with pytest.raises(ValueError):
        sandbox.run({"main.py": "pass", name: "x"})


def test_main_must_be_among_the_files(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="not among the files"):
        sandbox.run({"other.py": "pass"})


def test_concurrent_runs_get_distinct_uids(sandbox: Sandbox) -> None:
    results: list[SandboxResult] = []
    code = "import time, os\ntime.sleep(0.3)\nprint(os.getuid())"

    def work() -> None:
        results.append(sandbox.run(code))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results)
    assert len({r.uid for r in results}) == 4
    assert all(int(r.stdout) == r.uid for r in results)


def test_x32_system_calls_kill_the_process(sandbox: Sandbox) -> None:
    # Another ABI's system calls would bypass a filter written for x86_64.
    r = sandbox.run("import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 39)\nprint('alive')")
    assert r.exit_code == -31  # SIGSYS
    assert "alive" not in r.stdout


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limits(timeout=0)
    with pytest.raises(ValueError):
        Limits(memory_mb=8)
    with pytest.raises(ValueError):
        Limits(max_processes=0)
    with pytest.raises(ValueError, match="output_overflow"):
        Limits(output_overflow="ignore")  # type: ignore[arg-type]
    assert Limits(timeout=2.5).cpu_limit == 3
    assert Limits(timeout=10, cpu_seconds=1).cpu_limit == 1


# -- call: verdicts computed outside ------------------------------------------------


def test_call_returns_plain_values_per_case(sandbox: Sandbox) -> None:
    code = """
def f(x, items):
    items.append(x)            # mutating an argument must not leak into the next case
    if x == 3:
        raise KeyError("three")
    return {"n": x, "items": items, "t": (1, 2.5, None, True)}
"""
    result = sandbox.call(code, "f", [[1, []], [2, []], [3, []]])
    assert result.load_error is None and result.run.ok
    assert result.outcomes[0] == CallOutcome(
        value={"n": 1, "items": [1], "t": [1, 2.5, None, True]}
    )
    assert result.outcomes[1] == CallOutcome(
        value={"n": 2, "items": [2], "t": [1, 2.5, None, True]}
    )
    assert result.outcomes[2] == CallOutcome(error="KeyError: 'three'")
    assert result.passed([{"n": 1, "items": [1], "t": [1, 2.5, None, True]}, None, None]) == [
        True,
        False,
        False,
    ]


def test_call_reports_load_errors(sandbox: Sandbox) -> None:
    result = sandbox.call("def g():\n    return 1", "f", [[]])
    assert result.load_error is not None and "AttributeError" in result.load_error
    assert result.outcomes == (None,)
    result = sandbox.call("def f(:\n    pass", "f", [[]])
    assert result.load_error is not None and "SyntaxError" in result.load_error


@pytest.mark.slow
def test_call_keeps_answers_given_before_a_timeout(sandbox: Sandbox) -> None:
    code = "import time\ndef f(x):\n    if x:\n        time.sleep(100)\n    return x"
    result = sandbox.call(code, "f", [[0], [1], [0]], timeout=1)
    assert result.run.killed_by == "timeout"
    assert result.outcomes[0] == CallOutcome(value=0)
    assert result.outcomes[1:] == (None, None)
    assert result.passed([0, 1, 0]) == [True, False, False]


def test_call_answers_past_the_output_cap_when_output_is_cut(sandbox: Sandbox) -> None:
    code = "def f(x):\n    print('x' * 100_000)\n    return x * 2"
    cut = sandbox.call(code, "f", [[1], [2], [3]], limits=Limits(output_overflow="cut"))
    assert cut.run.killed_by is None and cut.run.truncated
    assert cut.passed([2, 4, 6]) == [True, True, True]
    killed = sandbox.call(code, "f", [[1], [2], [3]])  # the default still stops it
    assert killed.run.killed_by == "output" and killed.run.truncated


def test_call_with_files(sandbox: Sandbox) -> None:
    files = {"sol.py": "from lib import k\ndef f():\n    return k", "lib.py": "k = 'v'"}
    result = sandbox.call(files, "f", [[]], module="sol.py")
    assert result.passed(["v"]) == [True]


def test_call_rejects_bad_input(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.call("def f(x): return x", "f", [[object()]])
    with pytest.raises(ValueError):
        sandbox.call("def f(x): return x", "f; import os", [[1]])


def test_same_value_keeps_booleans_apart() -> None:
    assert same_value(1, 1.0)
    assert not same_value(True, 1)
    assert not same_value(1, True)
    assert same_value([1, {"a": [True]}], [1.0, {"a": [True]}])
    assert not same_value({"a": 1}, {"a": 1, "b": 2})
    assert not same_value("1", 1)
    assert not same_value(None, [])


def test_passed_needs_one_expectation_per_case() -> None:
    run = SandboxResult(0, "", "", False, None, 0.0, 0.0, 1, True)
    with pytest.raises(ValueError):
        CallResult(run=run, outcomes=(None,)).passed([1, 2])


# -- failing closed -------------------------------------------------------------------


def test_missing_bubblewrap_refuses_to_run() -> None:
    box = Sandbox(bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxError) as err:
        box.run("print('ran')")
    assert "bubblewrap" in str(err.value)
    assert "apt-get install bubblewrap" in str(err.value)


def test_missing_prlimit_refuses_to_run() -> None:
    with pytest.raises(SandboxError, match="util-linux"):
        Sandbox(prlimit="/nonexistent/prlimit").run("pass")


def test_missing_seccomp_binding_refuses_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _seccomp.filter_bpf.cache_clear()
    monkeypatch.setitem(sys.modules, "pyseccomp", None)  # makes the import fail
    try:
        with pytest.raises(SandboxError) as err:
            Sandbox(python="/usr/bin/python3", uids=range(61000, 61100)).run("pass")
        assert "seccomp" in str(err.value) and "pip install" in str(err.value)
    finally:
        _seccomp.filter_bpf.cache_clear()


def test_interpreter_the_run_uid_cannot_read_is_refused(public_dir: Path) -> None:
    private = public_dir / "private"
    private.mkdir(mode=0o700)
    shutil.copy("/usr/bin/python3", private / "python3")
    with pytest.raises(SandboxError, match="cannot enter"):
        Sandbox(python=private / "python3").run("pass")
    with pytest.raises(SandboxError, match="not found"):
        Sandbox(python="/nonexistent/python3").run("pass")


def test_not_root_refuses_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SandboxError, match="needs root"):
        Sandbox().run("pass")


def test_a_bwrap_failure_is_a_sandbox_error_not_a_code_failure(public_dir: Path) -> None:
    fake = write_script(
        public_dir / "bwrap",
        "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\n"
        "exit 1\n",
    )
    with pytest.raises(SandboxError, match="failed before the code started.*namespace failed"):
        Sandbox(bwrap=fake).run("print('ran')")


def test_a_bwrap_failure_after_the_canary_is_still_a_sandbox_error(public_dir: Path) -> None:
    # Real bubblewrap for the canary; afterwards a bind whose source is missing, which
    # bubblewrap finds only inside the child it has already forked and reported.
    fake = write_script(
        public_dir / "bwrap",
        "#!/usr/bin/python3 -I\nimport os, sys\nargs = sys.argv[1:]\n"
        "if not any('.hainet_canary.py' in a for a in args):\n"
        "    args[:0] = ['--ro-bind', '/nonexistent-hainet', '/x']\n"
        "os.execve('/usr/bin/bwrap', ['bwrap', *args], {})\n",
    )
    box = Sandbox(bwrap=fake)
    box.self_check()
    with pytest.raises(SandboxError, match="Can't find source path /nonexistent-hainet"):
        box.run("print('ran')")


def test_code_that_imitates_a_bwrap_error_is_still_the_codes_failure(sandbox: Sandbox) -> None:
    code = 'import sys\nprint("bwrap: Can\'t mount proc", file=sys.stderr)\nsys.exit(1)'
    r = sandbox.run(code)
    assert (r.exit_code, r.stderr) == (1, "bwrap: Can't mount proc\n")


def test_a_timeout_too_short_to_start_is_a_sandbox_error(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="timed out while starting"):
        sandbox.run("print('ran')", timeout=0.001)


def test_a_layer_that_silently_fails_is_caught_by_the_canary(public_dir: Path) -> None:
    # A bwrap that drops the seccomp filter but otherwise works.
    fake = write_script(
        public_dir / "bwrap",
        "#!/usr/bin/python3 -I\nimport os, sys\nargs = sys.argv[1:]\n"
        "i = args.index('--seccomp')\ndel args[i:i + 2]\n"
        "os.execve('/usr/bin/bwrap', ['bwrap', *args], {})\n",
    )
    with pytest.raises(SandboxError, match="seccomp filter not active"):
        Sandbox(bwrap=fake).run("print('ran')")


# -- the unsafe escape hatch -----------------------------------------------------------


def test_unsafe_mode_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hainet.sandbox"):
        Sandbox(unsafe_no_sandbox=True)
    [record] = [r for r in caplog.records if r.name == "hainet.sandbox"]
    assert record.levelno == logging.WARNING
    assert "UNSAFE" in record.getMessage()


def test_safe_mode_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hainet.sandbox"):
        Sandbox()
    assert not [r for r in caplog.records if r.name == "hainet.sandbox"]


def test_unsafe_mode_still_applies_uid_rlimits_and_caps() -> None:
    # bubblewrap "missing" on purpose: the unsafe mode must not need it.
    box = Sandbox(unsafe_no_sandbox=True, bwrap="/nonexistent/bwrap")
    code = """
import os, resource
print(os.getuid(), resource.getrlimit(resource.RLIMIT_AS)[1] // 2**20,
      resource.getrlimit(resource.RLIMIT_NPROC)[1], os.environ.get("HAINET_HOME"))
"""
    r = box.run(code, limits=Limits(memory_mb=200, max_processes=5))
    assert not r.sandboxed
    uid, mem, nproc, leaked = r.stdout.split()
    assert int(uid) == r.uid != 0
    assert (mem, nproc, leaked) == ("200", "5", "None")
    r = box.run("print('x' * 10**6)", limits=Limits(max_output=1000))
    assert r.killed_by == "output" and len(r.stdout) == 1000
    r = box.run("x = bytearray(10**9)", memory_mb=100)
    assert r.killed_by == "memory"


@pytest.mark.slow
def test_unsafe_mode_kills_on_timeout_and_leaves_no_process() -> None:
    box = Sandbox(unsafe_no_sandbox=True)
    code = """
import os, time
if os.fork() == 0:
    os.setsid()          # leaves the process group the timeout kills
    time.sleep(100)
time.sleep(100)
"""
    r = box.run(code, timeout=1)
    assert r.killed_by == "timeout"
    assert no_processes_left(r.uid)
