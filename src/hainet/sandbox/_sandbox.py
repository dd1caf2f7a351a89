"""The ``Sandbox``: checks what it needs, proves it with a canary, then runs code."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import signal
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from hainet.errors import SandboxError
from hainet.sandbox._launch import (
    BOOTSTRAP,
    BWRAP_PROCESSES,
    PY_FLAGS,
    SANDBOX_ENV,
    STARTED,
    TOP_LEVEL_LINKS,
    WORK,
    FdSet,
    Tools,
    bwrap_argv,
    host_workdir,
    prlimit_argv,
)
from hainet.sandbox._process import Finished, Launch, supervise
from hainet.sandbox._result import (
    CallOutcome,
    CallResult,
    JSONValue,
    KilledBy,
    Limits,
    SandboxResult,
)
from hainet.sandbox._seccomp import filter_bpf
from hainet.sandbox._uids import DEFAULT_UID_RANGE, UidPool, kill_uid

__all__ = ["DEFAULT_PYTHON", "Sandbox"]

logger = logging.getLogger("hainet.sandbox")

DEFAULT_PYTHON = "/usr/bin/python3"
_RESERVED = ".hainet"
_REPORT_CAP = 16 * 1024 * 1024
_PYTHON_HINT = (
    "use an interpreter every user can read, e.g. Debian's /usr/bin/python3 "
    "(apt-get install python3-minimal); one under a private home such as pyenv's "
    "is unreadable once the run drops to its own uid"
)

_canary_lock = threading.Lock()
_canary_passed: set[tuple[object, ...]] = set()


class Sandbox:
    """Runs untrusted Python in layers: rlimits and a fresh uid, bubblewrap, seccomp.

    Construction is cheap and checks nothing; the first ``run`` checks that every
    layer is present and runs a canary that proves them, and refuses to run code
    otherwise (:class:`~hainet.errors.SandboxError` naming what is missing).
    Thread-safe: concurrent runs get different uids.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        python: str | os.PathLike[str] = DEFAULT_PYTHON,
        bwrap: str | os.PathLike[str] = "bwrap",
        prlimit: str | os.PathLike[str] = "prlimit",
        uids: range = DEFAULT_UID_RANGE,
        lock_dir: Path | None = None,
        unsafe_no_sandbox: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self.unsafe_no_sandbox = unsafe_no_sandbox
        self._python, self._bwrap, self._prlimit = str(python), str(bwrap), str(prlimit)
        self._uids = UidPool(uids, lock_dir)
        self._tools_cache: Tools | None = None
        self._lock = threading.Lock()
        if unsafe_no_sandbox:
            logger.warning(
                "UNSAFE: sandbox disabled (unsafe_no_sandbox / --unsafe-no-sandbox). "
                "Untrusted code runs WITHOUT bubblewrap namespaces or seccomp: it can "
                "read every world-readable file, use the network and write to /tmp. "
                "Only rlimits, a fresh uid, timeouts and output caps still apply."
            )

    # -- public API ---------------------------------------------------------------

    def self_check(self) -> None:
        """Check the layers and run the canary now instead of at the first run."""
        self._tools()

    def run(
        self,
        code: str | Mapping[str, str],
        *,
        stdin: str | bytes | None = None,
        timeout: float | None = None,
        memory_mb: int | None = None,
        limits: Limits | None = None,
        args: Sequence[str] = (),
        main: str = "main.py",
    ) -> SandboxResult:
        """Run a program: ``code`` is the text of ``main``, or a mapping of relative
        file names to their text, one of which is ``main``.  Files appear in the
        program's working directory, ``/tmp``, its only writable place.

        ``timeout`` and ``memory_mb`` override the sandbox's limits for this run, as
        does ``limits``.  Raises SandboxError if the sandbox (not the code) failed.
        """
        lim = self._limits_for(limits, timeout, memory_mb)
        files = _prepare_files(code, main)
        data = stdin.encode() if isinstance(stdin, str) else stdin
        result, _ = self._execute(self._tools(), files, [main, *args], data, lim, report=False)
        return result

    def call(
        self,
        code: str | Mapping[str, str],
        function: str,
        cases: Sequence[Sequence[JSONValue]],
        *,
        module: str = "solution.py",
        timeout: float | None = None,
        memory_mb: int | None = None,
        limits: Limits | None = None,
    ) -> CallResult:
        """Call ``function`` of ``module`` once per case (each a list of positional
        arguments) and return what each call gave back as plain JSON data.

        This is the way to get a verdict: compare ``CallResult.outcomes`` (or use
        ``CallResult.passed``) with expected values that never enter the sandbox.
        Nothing the code prints, writes or exits with can pass that comparison
        except the right return values.
        """
        if not function.isidentifier():
            raise ValueError(f"not a function name: {function!r}")
        lim = self._limits_for(limits, timeout, memory_mb)
        files = _prepare_files(code, module)
        try:
            cases_json = json.dumps([list(case) for case in cases], allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cases must be plain JSON data: {exc}") from exc
        files[f"{_RESERVED}_cases.json"] = cases_json.encode()
        files[f"{_RESERVED}_harness.py"] = _harness_source()
        tail = [f"{_RESERVED}_harness.py", module, function, f"{_RESERVED}_cases.json"]
        result, report = self._execute(self._tools(), files, tail, None, lim, report=True)
        outcomes, load_error = _parse_report(report, len(cases))
        return CallResult(run=result, outcomes=outcomes, load_error=load_error)

    # -- checks -------------------------------------------------------------------

    def _limits_for(
        self, limits: Limits | None, timeout: float | None, memory_mb: int | None
    ) -> Limits:
        lim = limits or self.limits
        if timeout is not None:
            lim = dataclasses.replace(lim, timeout=timeout)
        if memory_mb is not None:
            lim = dataclasses.replace(lim, memory_mb=memory_mb)
        return lim

    def _tools(self) -> Tools:
        with self._lock:
            if self._tools_cache is None:
                tools = self._preflight()
                key = (self.unsafe_no_sandbox, tools, self._uids.uids)
                with _canary_lock:
                    if key not in _canary_passed:
                        self._canary(tools)
                        _canary_passed.add(key)
                self._tools_cache = tools
            return self._tools_cache

    def _preflight(self) -> Tools:
        python = _check_interpreter(self._python)
        prlimit = _find_tool(self._prlimit, "prlimit", "apt-get install util-linux")
        if self.unsafe_no_sandbox:
            return Tools(python=python, prlimit=prlimit, bwrap=None)
        if os.geteuid() != 0:
            raise SandboxError(
                "the sandbox runs each program under a fresh uid, which needs root",
                hint="run hainet as root (e.g. in its container), or accept rlimits only "
                "with --unsafe-no-sandbox",
            )
        bwrap = _find_tool(self._bwrap, "bubblewrap (bwrap)", "apt-get install bubblewrap")
        filter_bpf()  # fails closed, naming the binding to install
        prefix = Path(python).parents[1]
        binds = () if Path(python).is_relative_to("/usr") else (str(prefix),)
        return Tools(python=python, prlimit=prlimit, bwrap=bwrap, ro_binds=binds)

    def _canary(self, tools: Tools) -> None:
        source = (Path(__file__).parent / "_canary.py").read_bytes()
        name = f"{_RESERVED}_canary.py"
        lim = Limits(timeout=30.0, memory_mb=256, max_processes=8)
        result, _ = self._execute(tools, {name: source}, [name], None, lim, report=False)
        try:
            seen = json.loads(result.stdout)
        except ValueError:
            raise SandboxError(
                f"sandbox canary did not run (exit {result.exit_code}): "
                f"{(result.stderr or result.stdout)[-500:]}"
            ) from None
        problems = _canary_problems(seen, result.uid, lim, tools)
        if problems:
            raise SandboxError(
                "sandbox canary failed: " + "; ".join(problems),
                hint="the sandbox refuses to run code until every layer works",
            )

    # -- one run --------------------------------------------------------------------

    def _execute(
        self,
        tools: Tools,
        files: dict[str, bytes],
        tail: list[str],
        stdin: bytes | None,
        lim: Limits,
        *,
        report: bool,
    ) -> tuple[SandboxResult, bytes]:
        if sum(len(b) for b in files.values()) > lim.tmp_mb * 1024 * 1024:
            raise ValueError("the files do not fit in the sandbox's /tmp (Limits.tmp_mb)")
        if any(len(b) > lim.max_file_mb * 1024 * 1024 for b in files.values()):
            raise ValueError("a file is larger than Limits.max_file_mb")
        lease = self._uids.lease() if os.geteuid() == 0 else contextlib.nullcontext(None)
        with lease as uid, FdSet() as fds, contextlib.ExitStack() as stack:
            side: dict[str, tuple[int, int]] = {}
            passed: list[int] = []  # descriptors the child inherits
            handed: list[int] = []  # write ends supervise() closes once the child has them
            if report:
                report_r, report_w = fds.pipe()
                side["report"] = (report_r, _REPORT_CAP)
                passed.append(report_w)
                handed.append(report_w)
                tail = [*tail, str(report_w)]
            started_r, started_w = fds.pipe()
            side["started"] = (started_r, len(STARTED))
            passed.append(started_w)
            handed.append(started_w)
            argv = prlimit_argv(tools.prlimit, lim, uid, sandboxed=tools.bwrap is not None)
            bootstrap = BOOTSTRAP.format(fd=started_w)
            python_argv = [tools.python, *PY_FLAGS, "-c", bootstrap, *tail]
            env: dict[str, str] = {}
            cwd = "/"
            if tools.bwrap is None:
                cwd = stack.enter_context(host_workdir(files, uid))
                env = {"HOME": cwd, "TMPDIR": cwd, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
                argv += python_argv
            else:
                seccomp_fd = fds.memfd(filter_bpf())
                file_ops: list[str] = []
                made: set[PurePosixPath] = set()
                for name, content in files.items():
                    for parent in reversed(PurePosixPath(name).parents[:-1]):
                        if parent not in made:
                            made.add(parent)
                            file_ops += ["--dir", f"{WORK}/{parent}"]
                    fd = fds.memfd(content)
                    passed.append(fd)
                    file_ops += ["--file", str(fd), f"{WORK}/{name}"]
                argv += bwrap_argv(tools, lim, seccomp_fd, file_ops)
                argv += ["--", *python_argv]
                passed.append(seccomp_fd)
                # env stays empty: bubblewrap's own environment is what
                # /proc/1/environ shows inside, and its --clearenv only clears the
                # child's, so anything given to bwrap would leak.
            fds.hand_over(handed)
            finished = supervise(
                Launch(
                    argv=argv,
                    env=env,
                    cwd=cwd,
                    uid=uid,
                    timeout=lim.timeout,
                    max_output=lim.max_output,
                    cut_output=lim.output_overflow == "cut",
                    stdin=stdin,
                    pass_fds=tuple(passed),
                    close_after_spawn=tuple(handed),
                    side_channels=side,
                    on_exit=functools.partial(_sweep, uid),
                )
            )
        sandboxed = tools.bwrap is not None
        result = _classify(finished, lim, -1 if uid is None else uid, sandboxed=sandboxed)
        return result, finished.side.get("report", b"")


def _sweep(uid: int | None) -> None:
    # The lease sweeps again and reports survivors; here it only has to be fast.
    if uid is not None:
        kill_uid(uid)


def _classify(fin: Finished, lim: Limits, uid: int, *, sandboxed: bool) -> SandboxResult:
    """Turn what the host saw into a result, or a SandboxError if the sandbox broke."""
    if fin.side.get("started") != STARTED:
        why = "timed out while starting" if fin.timed_out else f"exit {fin.status}"
        raise SandboxError(
            f"the sandbox failed before the code started ({why}): "
            f"{fin.stderr.decode(errors='replace').strip()[-1000:]}",
            hint="see docs/sandbox.md; bubblewrap needs unprivileged user namespaces "
            "(sysctl user.max_user_namespaces > 0), the interpreter needs memory_mb >= 32",
        )
    exit_code = fin.status
    # bubblewrap exits with its child's status, and with 128 + N when the child died
    # of signal N.  (Its own SIGKILL, from our timeout, shows as -9 already.)
    if sandboxed and 128 < exit_code <= 128 + signal.SIGRTMAX:
        exit_code = -(exit_code - 128)
    killed_by: KilledBy | None = None
    if fin.timed_out:
        killed_by = "timeout"
    elif fin.overflowed:
        killed_by = "output"
    elif exit_code == -signal.SIGXCPU or (
        # A SIGKILL we did not send, after the CPU budget was spent: the hard
        # RLIMIT_CPU.  rusage reads below what the kernel enforced, more so on a
        # busy machine (0.85-0.91 s for a 1 s limit at load average 8, measured).
        exit_code == -signal.SIGKILL and fin.cpu_time >= 0.75 * lim.cpu_limit
    ):
        killed_by = "cpu"
    elif exit_code != 0 and b"MemoryError" in fin.stderr[-2048:]:
        killed_by = "memory"
    elif exit_code < 0:
        killed_by = "signal"
    return SandboxResult(
        exit_code=exit_code,
        stdout=fin.stdout.decode("utf-8", errors="replace"),
        stderr=fin.stderr.decode("utf-8", errors="replace"),
        truncated=fin.truncated,
        killed_by=killed_by,
        duration=fin.duration,
        cpu_time=fin.cpu_time,
        uid=uid,
        sandboxed=sandboxed,
    )


def _parse_report(raw: bytes, n: int) -> tuple[tuple[CallOutcome | None, ...], str | None]:
    outcomes: list[CallOutcome | None] = [None] * n
    load_error: str | None = None
    for line in raw.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            # a line cut by a kill, or noise the code wrote (nested past the parser's
            # recursion limit, too): not an answer
            continue
        if not isinstance(record, dict):
            continue
        if "load_error" in record and load_error is None:
            load_error = str(record["load_error"])
        index = record.get("i")
        # The first record of a case stands; the code could write more, but what it
        # writes is only ever its own answer to that case.
        if type(index) is int and 0 <= index < n and outcomes[index] is None:
            if "error" in record:
                outcomes[index] = CallOutcome(error=str(record["error"]))
            elif "value" in record:
                outcomes[index] = CallOutcome(value=record["value"])
    return tuple(outcomes), load_error


def _canary_problems(seen: object, uid: int, lim: Limits, tools: Tools) -> list[str]:
    sandboxed = tools.bwrap is not None
    if not isinstance(seen, dict):
        return ["unreadable report"]
    problems = []
    if seen.get("uid") == 0 or (uid >= 0 and seen.get("uid") != uid):
        problems.append(f"runs as uid {seen.get('uid')}, not the fresh uid {uid}")
    if uid >= 0 and seen.get("nproc") != lim.max_processes + (BWRAP_PROCESSES if sandboxed else 0):
        problems.append(f"process limit not applied (RLIMIT_NPROC {seen.get('nproc')})")
    if seen.get("address_space") != lim.memory_mb * 1024 * 1024:
        problems.append("memory limit not applied (RLIMIT_AS)")
    if seen.get("core") != 0:
        problems.append("core dumps not disabled")
    if not sandboxed:
        return problems
    if seen.get("cap_eff") != "0000000000000000":
        problems.append(f"capabilities left: {seen.get('cap_eff')}")
    if seen.get("no_new_privs") != "1":
        problems.append("no_new_privs not set")
    if seen.get("seccomp") != "2":
        problems.append("seccomp filter not active")
    if seen.get("inet") != "EAFNOSUPPORT":
        problems.append(f"an inet socket was {seen.get('inet')}")
    if seen.get("write_root") == "allowed":
        problems.append("/ is writable")
    allowed = {"dev", "proc", "tmp", "usr", *TOP_LEVEL_LINKS}
    allowed |= {PurePosixPath(p).parts[1] for p in tools.ro_binds}
    extra = set(seen.get("root_entries") or ["?"]) - allowed
    if extra:
        problems.append(f"host paths visible: {sorted(extra)}")
    # bubblewrap adds PWD (the --chdir directory) on its own.
    leaked = set(seen.get("pid1_environ") or []) - {*SANDBOX_ENV, "PWD"}
    if leaked:
        problems.append(f"environment variables leak into the sandbox: {sorted(leaked)}")
    return problems


def _prepare_files(code: str | Mapping[str, str], main: str) -> dict[str, bytes]:
    files = {main: code} if isinstance(code, str) else dict(code)
    if main not in files:
        raise ValueError(f"{main!r} is not among the files")
    for name in files:
        path = PurePosixPath(name)
        if (
            path.is_absolute()
            or not path.parts
            or any(part in ("", ".", "..") for part in path.parts)
            or "\0" in name
            or str(path) != name
        ):
            raise ValueError(f"not a plain relative file name: {name!r}")
        if path.parts[0].startswith(_RESERVED):
            raise ValueError(f"file names starting with {_RESERVED!r} are reserved: {name!r}")
    return {name: text.encode() for name, text in files.items()}


def _check_interpreter(python: str) -> str:
    """The interpreter's real path, if every user can read and run it."""
    given = Path(python)
    if not given.is_absolute():
        raise SandboxError(f"the sandbox interpreter must be an absolute path: {python}")
    real = given.resolve()
    if not real.is_file():
        raise SandboxError(f"sandbox interpreter not found: {python}", hint=_PYTHON_HINT)
    mode = real.stat().st_mode
    if not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
        raise SandboxError(f"{real} is not readable by other users", hint=_PYTHON_HINT)
    for parent in real.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise SandboxError(
                f"sandbox interpreter {real} is inside {parent}, which other users cannot enter",
                hint=_PYTHON_HINT,
            )
    return str(real)


def _find_tool(name: str, what: str, install: str) -> str:
    found = shutil.which(name) if os.sep not in name else name
    if found is None or not os.access(found, os.X_OK) or not Path(found).is_file():
        raise SandboxError(
            f"{what} not found ({name}); the sandbox refuses to run without it",
            hint=install,
        )
    return str(Path(found).resolve())


@functools.cache
def _harness_source() -> bytes:
    return (Path(__file__).parent / "_harness.py").read_bytes()
