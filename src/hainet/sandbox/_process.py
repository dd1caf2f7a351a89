"""Layer 1: start one process tree, feed it, read it under caps, and end it for sure.

The reading loop is the part that has to be right: stdout and stderr are read as they
come (a full pipe would otherwise stall the code and look like a timeout), each is
capped and one byte past the cap kills the run (or, with ``cut_output``, is discarded
while the run goes on), and the wall clock kills it too.
The end of the run is the *process* exiting, seen through a pidfd, not the pipes
closing: a background child holding stdout must not keep a run alive.  After the
exit, ``on_exit`` kills what is left (the uid sweep), then the pipes are drained.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hainet.errors import SandboxError

__all__ = ["Finished", "Launch", "supervise"]

_CHUNK = 65536
# After the code exited and its uid was swept, how long the pipes may take to close.
_DRAIN_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class Launch:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str
    uid: int | None
    """Switch to this uid and gid (and no supplementary groups) before exec."""
    timeout: float
    max_output: int
    cut_output: bool = False
    """Past ``max_output``, discard stdout and stderr instead of killing the run."""
    stdin: bytes | None = None
    pass_fds: tuple[int, ...] = ()
    close_after_spawn: tuple[int, ...] = ()
    """Our copies of descriptors the child inherits; closing them lets EOF happen."""
    side_channels: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Extra pipes to read: name -> (read end, byte cap).  Not the code's output."""
    on_exit: Callable[[], None] = lambda: None
    """Called once the first process is gone (or killed): kill what it left behind."""


@dataclass(slots=True)
class Finished:
    status: int
    """``subprocess`` convention: exit code, or ``-N`` for death by signal ``N``."""
    stdout: bytes
    stderr: bytes
    side: dict[str, bytes]
    truncated: bool
    timed_out: bool
    overflowed: bool
    duration: float
    cpu_time: float


def supervise(launch: Launch) -> Finished:
    """Run ``launch`` to its end; raise SandboxError if it cannot even be started."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(launch.argv),
            stdin=subprocess.PIPE if launch.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(launch.env),
            cwd=launch.cwd,
            user=launch.uid,
            group=launch.uid,
            extra_groups=[] if launch.uid is not None else None,
            # Its own session and process group: killpg reaches all of it, and it
            # has no controlling terminal to inject keystrokes into.
            start_new_session=True,
            pass_fds=launch.pass_fds,
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"cannot start the sandbox ({launch.argv[0]}): {exc}") from exc
    finally:
        for fd in launch.close_after_spawn:
            os.close(fd)
    try:
        return _Reader(proc, launch, start).run()
    finally:
        # Whatever went wrong above, nothing of the run may outlive this call.
        if proc.returncode is None:
            _kill_group(proc.pid)
            launch.on_exit()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Reader:
    def __init__(self, proc: subprocess.Popen[bytes], launch: Launch, start: float) -> None:
        self.proc = proc
        self.launch = launch
        self.start = start
        self.sel = selectors.DefaultSelector()
        self.bufs: dict[int, bytearray] = {}
        self.caps: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.truncated = False
        self.timed_out = False
        self.overflowed = False
        self.killed = False
        self.cpu_time = 0.0
        self.stdin_data = memoryview(launch.stdin or b"")
        assert proc.stdout is not None and proc.stderr is not None
        self._watch(proc.stdout.fileno(), "stdout", launch.max_output)
        self._watch(proc.stderr.fileno(), "stderr", launch.max_output)
        for name, (fd, cap) in launch.side_channels.items():
            self._watch(fd, name, cap)
        if proc.stdin is not None:
            os.set_blocking(proc.stdin.fileno(), False)
            self.sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, "stdin")
        self.pidfd = os.pidfd_open(proc.pid)
        self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")

    def _watch(self, fd: int, name: str, cap: int) -> None:
        os.set_blocking(fd, False)
        self.bufs[fd], self.caps[fd], self.names[fd] = bytearray(), cap, name
        self.sel.register(fd, selectors.EVENT_READ, name)

    def run(self) -> Finished:
        try:
            deadline = self.start + self.launch.timeout
            exited_at: float | None = None
            while True:
                readers = [
                    k for k in self.sel.get_map().values() if k.data not in ("exit", "stdin")
                ]
                if exited_at is not None and not readers:
                    break
                now = time.monotonic()
                if exited_at is None and now >= deadline and not self.killed:
                    self.timed_out = True
                    self._kill()
                limit = deadline if exited_at is None else exited_at + _DRAIN_GRACE
                if exited_at is not None and now >= limit:
                    break  # something unkillable holds a pipe; keep what we have
                for key, _ in self.sel.select(max(0.0, limit - now) if not self.killed else 0.05):
                    if key.data == "exit":
                        self.sel.unregister(self.pidfd)
                        self._reap()
                        self.launch.on_exit()
                        exited_at = time.monotonic()
                    elif key.data == "stdin":
                        self._feed()
                    else:
                        self._read(key.fd)
            duration = time.monotonic() - self.start
        finally:
            self.sel.close()
            os.close(self.pidfd)
        out = {self.names[fd]: bytes(buf) for fd, buf in self.bufs.items()}
        return Finished(
            status=self.proc.returncode if self.proc.returncode is not None else -9,
            stdout=out.pop("stdout"),
            stderr=out.pop("stderr"),
            side=out,
            truncated=self.truncated,
            timed_out=self.timed_out,
            overflowed=self.overflowed,
            duration=duration,
            cpu_time=self.cpu_time,
        )

    def _reap(self) -> None:
        # wait4 rather than Popen.wait: its rusage covers every descendant that was
        # waited for, which is how the code's CPU time reaches us.
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_time = usage.ru_utime + usage.ru_stime
        # The group may outlive its leader; it has no business doing so.
        _kill_group(self.proc.pid)

    def _kill(self) -> None:
        self.killed = True
        _kill_group(self.proc.pid)
        self.launch.on_exit()

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        try:
            written = os.write(fd, self.stdin_data[:_CHUNK])
        except BlockingIOError:
            return
        except (BrokenPipeError, OSError):
            written = len(self.stdin_data)  # the code stopped reading: fine
        self.stdin_data = self.stdin_data[written:]
        if not self.stdin_data:
            self.sel.unregister(fd)
            self.proc.stdin.close()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.sel.unregister(fd)
            return
        buf, cap = self.bufs[fd], self.caps[fd]
        room = cap - len(buf)
        buf += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
            cut = self.launch.cut_output and self.names[fd] in ("stdout", "stderr")
            if not self.overflowed and not cut:
                self.overflowed = True
                self._kill()
            # Keep draining (and discarding) so the writers are not blocked while
            # they die, or, when cutting, while they go on; the cap already holds.
