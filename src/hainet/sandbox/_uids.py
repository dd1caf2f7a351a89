"""A fresh unprivileged uid for each run, and the sweep that leaves none of its processes.

``RLIMIT_NPROC`` counts the processes of a *uid*, and is ignored for root, so a
process-count limit means nothing unless each run has a uid of its own that no one
else is using.  A uid here is "fresh" when it has no passwd entry, no process runs
under it, and this host holds an ``flock`` on its lock file: the lock is what keeps
two concurrent runs (threads or separate processes) apart; the checks keep us off
uids that something outside hainet uses.  No passwd entry is created: the kernel
does not need one.

The sweep after each run kills whatever still runs under the uid.  With bubblewrap
the pid namespace already takes everything down with its first process; the sweep
is what makes "no leftover process" hold without it too (``unsafe_no_sandbox``),
where a child that calls ``setsid`` leaves the process group we kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from hainet.errors import SandboxError

__all__ = ["DEFAULT_UID_RANGE", "UidPool", "kill_uid", "processes_of"]

# Below systemd's DynamicUser range (61184-65519) and inside the block Debian leaves
# for global allocation, where a distribution package rarely lands.
DEFAULT_UID_RANGE = range(60100, 61100)


class UidPool:
    """Hands out uids from ``uids``, each to one run at a time across the host."""

    def __init__(self, uids: range = DEFAULT_UID_RANGE, lock_dir: Path | None = None) -> None:
        if not uids or uids.start <= 0:
            raise ValueError("the uid range must be non-empty and above 0 (root)")
        self.uids = uids
        self.lock_dir = lock_dir or _default_lock_dir()

    @contextlib.contextmanager
    def lease(self) -> Iterator[int]:
        """A uid that is ours until the block ends; its processes are killed on exit."""
        fd, uid = self._acquire()
        clean = False
        try:
            yield uid
        finally:
            clean = kill_uid(uid)
            if clean:
                os.close(fd)
            # Otherwise the lock stays held (the descriptor is leaked on purpose), so
            # no run on this host gets a uid whose old processes still count.
        if not clean:
            raise SandboxError(
                f"processes of sandbox uid {uid} survived SIGKILL",
                hint="look for processes stuck in uninterruptible sleep (state D)",
            )

    def _acquire(self) -> tuple[int, int]:
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A random start keeps concurrent callers from all probing the same uids.
        offset = random.randrange(len(self.uids))
        for i in range(len(self.uids)):
            uid = self.uids[(offset + i) % len(self.uids)]
            if _has_passwd_entry(uid):
                continue
            fd = os.open(self.lock_dir / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if processes_of(uid):
                # Something else uses this uid (or a run of ours leaked, which the
                # sweep would have reported); skip rather than share its counts.
                os.close(fd)
                continue
            return fd, uid
        raise SandboxError(
            f"no free sandbox uid in {self.uids.start}-{self.uids.stop - 1}",
            hint="lower the number of concurrent sandbox runs or widen the uid range",
        )


def _default_lock_dir() -> Path:
    # /run is root-only tmpfs on Debian: cleared at boot, like the locks' meaning.
    run = Path("/run")
    if os.geteuid() == 0 and run.is_dir() and os.access(run, os.W_OK):
        return run / "hainet-sandbox"
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"hainet-sandbox-{os.geteuid()}"


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def processes_of(uid: int) -> list[int]:
    """Pids of live (not zombie) processes whose real uid is ``uid``."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            # /proc/PID belongs to the process's uid, or to root once it makes
            # itself non-dumpable (prctl), which is how it could hide from a sweep
            # that trusted the owner alone; /proc/PID/status has the real uid.
            if entry.stat(follow_symlinks=False).st_uid not in (uid, 0):
                continue
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                status = fh.read()
        except OSError:
            continue  # it exited between listing and reading
        if _real_uid(status) == uid and not _is_dead(status):
            pids.append(int(entry.name))
    return pids


def _real_uid(status: bytes) -> int:
    start = status.find(b"\nUid:")
    return int(status[start + 5 :].split(None, 1)[0]) if start >= 0 else -1


def _is_dead(status: bytes) -> bool:
    start = status.find(b"\nState:")
    return start >= 0 and status[start + 7 :].split(None, 1)[0] in (b"Z", b"X")


def kill_uid(uid: int, *, wait: float = 5.0) -> bool:
    """SIGKILL every process of ``uid`` until none is left; False if some survive."""
    deadline = time.monotonic() + wait
    while True:
        pids = processes_of(uid)
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
