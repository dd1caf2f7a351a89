"""The attack battery: each attack is contained, with the expected outcome, and the
host is unchanged afterwards.  Attacks print what they got, so a failed containment
shows up as a leaked secret or a file on the host, not only as an exit code."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from hainet.sandbox import Limits, Sandbox

from .conftest import needs_root, no_processes_left

pytestmark = needs_root

# Places on the host an escaped write could land.
HOST_DIRS = ["/", "/usr", "/etc", "/tmp", "/var/tmp", "/dev/shm", "/root"]


def marker() -> str:
    return f"hainet-pwned-{uuid.uuid4().hex[:12]}"


def landed(name: str, *extra: Path) -> list[str]:
    dirs = [Path(d) for d in HOST_DIRS] + list(extra)
    return [str(d / name) for d in dirs if (d / name).exists()]


def attempts(result_stdout: str) -> dict[str, str]:
    return json.loads(result_stdout.strip().splitlines()[-1])


# A helper the attacks share: try each action, report "ok" or the error's name.
TRY = """
import json, os, sys
out = {}
def attempt(name, action):
    try:
        value = action()
        out[name] = "ok" if value is None else "ok:" + str(value)
    except BaseException as exc:
        out[name] = type(exc).__name__ + ":" + str(getattr(exc, "errno", ""))
"""


@pytest.mark.slow
def test_busy_loop_is_killed_at_the_cpu_limit(sandbox: Sandbox) -> None:
    r = sandbox.run("while True:\n    pass", limits=Limits(timeout=20, cpu_seconds=1))
    assert r.killed_by == "cpu"
    assert r.exit_code < 0
    assert 0.75 <= r.cpu_time < 3  # rusage reads low on a busy machine
    assert r.duration < 5  # the CPU limit, not the 20 s wall clock, ended it
    assert no_processes_left(r.uid)


@pytest.mark.slow
def test_sleep_forever_is_killed_at_the_wall_clock(sandbox: Sandbox) -> None:
    r = sandbox.run("import time\nwhile True:\n    time.sleep(1000)", timeout=1)
    assert r.killed_by == "timeout"
    assert r.exit_code == -9
    assert 0.9 < r.duration < 3
    assert no_processes_left(r.uid)


def test_memory_bomb_hits_the_address_space_limit(sandbox: Sandbox) -> None:
    code = "hoard = []\nwhile True:\n    hoard.append(bytearray(10_000_000))"
    r = sandbox.run(code, memory_mb=128)
    assert r.exit_code == 1
    assert r.killed_by == "memory"
    assert "MemoryError" in r.stderr


def test_tmpfs_and_dev_shm_are_no_way_around_the_memory_limit(sandbox: Sandbox) -> None:
    code = (
        TRY
        + """
def fill(path, mib):
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(b"x" * 1048576)
attempt("one_big_file", lambda: fill("/tmp/big", 100))
for i in range(8):
    attempt(f"many_{i}", lambda: fill(f"/tmp/part{i}", 15))
attempt("dev_shm", lambda: fill("/dev/shm/big", 1))
attempt("dev", lambda: fill("/dev/big", 1))
print(json.dumps(out))
"""
    )
    r = sandbox.run(code, limits=Limits(tmp_mb=64, max_file_mb=16))
    seen = attempts(r.stdout)
    assert seen["one_big_file"] == "OSError:27"  # EFBIG: RLIMIT_FSIZE
    assert "OSError:28" in seen.values()  # ENOSPC: /tmp is 64 MiB, whatever the file count
    assert seen["dev_shm"].startswith(("OSError:30", "FileNotFoundError", "PermissionError"))
    assert seen["dev"].startswith("OSError:30")  # EROFS
    assert landed("big") == []


@pytest.mark.slow
def test_fork_bomb_is_contained_and_leaves_nothing(sandbox: Sandbox) -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    start = time.monotonic()
    r = sandbox.run(code, limits=Limits(timeout=2, max_processes=16))
    assert r.killed_by in ("timeout", "cpu")
    assert time.monotonic() - start < 10
    assert no_processes_left(r.uid)
    # The host can still start processes: the limit was the sandbox's, not ours.
    assert subprocess.run(["true"], check=False).returncode == 0


def test_thread_bomb_stops_at_the_process_limit(sandbox: Sandbox) -> None:
    code = """
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        n += 1
except RuntimeError as exc:
    print(n, exc)
"""
    r = sandbox.run(code, limits=Limits(max_processes=8, memory_mb=512))
    started = int(r.stdout.split()[0])
    assert started < 8
    assert "can't start new thread" in r.stdout
    assert no_processes_left(r.uid)


def test_writes_outside_tmp_fail_and_the_host_is_unchanged(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    name = marker()
    targets = {
        "root": f"/{name}",
        "usr": f"/usr/{name}",
        "usr_bin": f"/usr/bin/{name}",
        "etc": f"/etc/{name}",
        "host_home": str(home / name),
        "root_home": f"/root/{name}",
        "var_tmp": f"/var/tmp/{name}",
    }
    code = (
        TRY
        + f"targets = {targets!r}\n"
        + """
for key, path in targets.items():
    attempt(key, lambda: open(path, "w").write("pwned"))
attempt("chmod_usr", lambda: os.chmod("/usr/bin/python3", 0o777))
attempt("own_home", lambda: open(os.path.expanduser("~/" + "note"), "w").write("ok"))
print(json.dumps(out))
"""
    )
    r = sandbox.run(code)
    seen = attempts(r.stdout)
    for key in targets:
        assert not seen[key].startswith("ok"), key
    assert not seen["chmod_usr"].startswith("ok")
    assert seen["own_home"].startswith("ok")  # $HOME inside is the run's own /tmp
    assert landed(name, home) == []
    assert os.listdir(home) == []


def test_no_home_directories_database_or_project_are_visible(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"FAKE-PRIVATE-KEY-{uuid.uuid4().hex}"
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(secret)
    (home / ".ssh" / "id_ed25519").chmod(0o644)  # readable by anyone, on purpose
    monkeypatch.setenv("HOME", str(home))
    db = Path(os.environ["HAINET_HOME"]) / "hainet.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (note TEXT)")
        conn.execute("INSERT INTO runs VALUES (?)", (secret,))
    paths = [
        str(home / ".ssh" / "id_ed25519"),
        str(db),
        "/root/.ssh/id_rsa",
        "/etc/shadow",
        "/etc/passwd",
        str(Path.cwd() / "pyproject.toml"),
        "/work",
        "/home",
    ]
    code = (
        TRY
        + f"paths = {paths!r}\n"
        + """
for path in paths:
    attempt(path, lambda: open(path, "rb").read())
attempt("expanduser", lambda: open(os.path.expanduser("~/.ssh/id_ed25519")).read())
attempt("root", lambda: sorted(os.listdir("/")))
found = []
for top, dirs, files in os.walk("/"):
    if top.startswith(("/proc", "/usr", "/sys")):
        dirs[:] = []
        continue
    found += [os.path.join(top, f) for f in files if f.endswith((".db", "id_ed25519"))]
out["found"] = found
print(json.dumps(out))
"""
    )
    r = sandbox.run(code)
    assert secret not in r.stdout + r.stderr
    seen = attempts(r.stdout)
    for path in paths:
        assert seen[path].startswith("FileNotFoundError"), path
    assert seen["expanduser"].startswith("FileNotFoundError")
    visible = set(seen["root"][3:].strip("[]").replace("'", "").split(", "))
    assert visible <= {"bin", "dev", "lib", "lib64", "proc", "sbin", "tmp", "usr"}
    assert seen["found"] == []


def test_planted_secret_in_the_parent_environment_never_appears(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-fake-{uuid.uuid4().hex}"
    monkeypatch.setenv("HAINET_TEST_API_KEY", secret)
    code = """
import os
print(dict(os.environ))
for pid in os.listdir("/proc"):
    if pid.isdigit() or pid in ("self", "thread-self"):
        try:
            print(pid, open(f"/proc/{pid}/environ", "rb").read())
        except OSError as exc:
            print(pid, exc)
"""
    r = sandbox.run(code)
    assert "/proc/1/environ" not in r.stderr and r.exit_code == 0
    assert "1 b'" in r.stdout  # it did read pid 1's environment
    assert secret not in r.stdout + r.stderr
    assert "HAINET_TEST_API_KEY" not in r.stdout


def test_no_network_tcp_or_dns(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        code = (
            TRY
            + f"port = {port}\n"
            + """
import socket
attempt("tcp", lambda: socket.create_connection(("127.0.0.1", port), timeout=2))
attempt("tcp6", lambda: socket.create_connection(("::1", port), timeout=2))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
attempt("raw", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))
attempt("dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
print(json.dumps(out))
"""
        )
        r = sandbox.run(code)
        with pytest.raises(TimeoutError):
            listener.accept()
    seen = attempts(r.stdout)
    for key in ("tcp", "tcp6", "udp", "raw", "netlink"):
        assert seen[key] == "OSError:97", key  # EAFNOSUPPORT from the seccomp filter
    assert seen["dns"].startswith("gaierror")
    assert seen["unix"] == "ok"  # AF_UNIX stays: it reaches nothing outside


def test_dangerous_system_calls_are_denied(sandbox: Sandbox) -> None:
    code = (
        TRY
        + """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    if libc.syscall(nr, *args) == -1:
        raise OSError(ctypes.get_errno(), "")
# x86_64 numbers
attempt("ptrace", lambda: call(101, 16, 1, 0, 0))          # PTRACE_ATTACH pid 1
attempt("unshare", lambda: call(272, 0x10000000))           # CLONE_NEWUSER
attempt("mount", lambda: call(165, b"none", b"/tmp", b"tmpfs", 0, 0))
attempt("bpf", lambda: call(321, 0, 0, 0))
attempt("io_uring_setup", lambda: call(425, 1, 0))
attempt("perf_event_open", lambda: call(298, 0, 0, -1, -1, 0))
attempt("userfaultfd", lambda: call(323, 0))
attempt("keyctl", lambda: call(250, 0, 0))
attempt("clone_newuser", lambda: call(56, 0x10000000 | 17, 0, 0, 0, 0))
print(json.dumps(out))
"""
    )
    r = sandbox.run(code)
    seen = attempts(r.stdout)
    for key, value in seen.items():
        assert value == "PermissionError:1", (key, value)  # EPERM from the filter


def test_a_gigabyte_printed_is_cut_at_the_cap(sandbox: Sandbox) -> None:
    code = "import sys\nchunk = 'x' * 65536\nfor _ in range(16384):\n    sys.stdout.write(chunk)"
    r = sandbox.run(code, limits=Limits(max_output=256 * 1024))
    assert r.killed_by == "output"
    assert r.truncated
    assert len(r.stdout) == 256 * 1024
    assert r.duration < 5
    assert no_processes_left(r.uid)


def test_a_flood_is_cut_and_the_run_goes_on_when_told(sandbox: Sandbox) -> None:
    # output_overflow="cut": the host keeps the cap and discards the rest as it
    # comes; the run is not stopped for it, only by its own end or the clock.
    code = (
        "import sys\nchunk = 'x' * 65536\nfor _ in range(64):\n    sys.stdout.write(chunk)\n"
        "sys.stdout.flush()\nsys.stderr.write('e' * 10**6)\nprint('done', file=sys.stderr)"
    )
    r = sandbox.run(code, limits=Limits(max_output=64 * 1024, output_overflow="cut"))
    assert r.exit_code == 0 and r.killed_by is None and r.truncated
    assert len(r.stdout) == 64 * 1024 and len(r.stderr) == 64 * 1024
    flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    r = sandbox.run(flood, limits=Limits(timeout=1, max_output=4096, output_overflow="cut"))
    assert r.killed_by == "timeout" and r.truncated and len(r.stdout) == 4096
    assert no_processes_left(r.uid)


def test_stderr_flood_is_cut_too(sandbox: Sandbox) -> None:
    r = sandbox.run("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)")
    assert r.killed_by == "output" and r.truncated
    assert len(r.stderr) == sandbox.limits.max_output


def test_forged_pass_line_and_result_file_do_not_pass(sandbox: Sandbox) -> None:
    forger = """
import os, json
print("PASS")
print(json.dumps({"passed": True, "score": 1.0}))
open("/tmp/result.json", "w").write('{"passed": true}')
open("result.json", "w").write('{"passed": true}')
line = json.dumps({"i": 0, "value": "I cannot know the answer"}) + "\\n"
for fd in range(3, 64):           # try every descriptor as the report channel
    try:
        os.write(fd, line.encode())
    except OSError:
        pass
os._exit(0)                       # exit 0 before any test runs
def add(a, b):
    return a + b
"""
    result = sandbox.call(forger, "add", [[2, 3], [10, 20]])
    assert result.passed([5, 30]) == [False, False]
    assert result.outcomes[1] is None  # never reached
    assert result.run.exit_code == 0  # "success" by exit code means nothing
    assert landed("result.json") == []


def test_objects_that_claim_equality_cannot_leave_the_sandbox(sandbox: Sandbox) -> None:
    cheat = """
class Anything:
    def __eq__(self, other):
        return True
class Seven(int):
    def __eq__(self, other):
        return True
def solve(x):
    return Anything() if x == 0 else Seven(7)
"""
    result = sandbox.call(cheat, "solve", [[0], [1]])
    assert result.passed([42, 42]) == [False, False]
    assert all(o is not None and "not plain JSON data" in (o.error or "") for o in result.outcomes)


def test_a_right_answer_passes(sandbox: Sandbox) -> None:
    result = sandbox.call("def add(a, b):\n    return a + b", "add", [[2, 3], [10, 20]])
    assert result.passed([5, 30]) == [True, True]


def test_daemons_that_escape_the_process_group_are_killed(sandbox: Sandbox) -> None:
    tag = f"{time.time_ns() % 10**9}.5"
    code = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/sleep", ["sleep", "{tag}"])
    os._exit(0)
time.sleep(0.3)
print("parent done")
"""
    r = sandbox.run(code)
    assert r.stdout.strip() == "parent done"
    assert no_processes_left(r.uid)
    assert not _processes_with_arg(tag)


def _processes_with_arg(arg: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arg.encode() in cmdline:
            found.append(int(pid))
    return found
