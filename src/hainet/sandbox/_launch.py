"""How one run is launched: the command line of layers 2-4, and its descriptors."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hainet.sandbox._result import Limits

__all__ = [
    "BOOTSTRAP",
    "BWRAP_PROCESSES",
    "PY_FLAGS",
    "SANDBOX_ENV",
    "STARTED",
    "TOP_LEVEL_LINKS",
    "WORK",
    "FdSet",
    "Tools",
    "bwrap_argv",
    "host_workdir",
    "prlimit_argv",
]

# -I is -E -s -P; -P would keep the script's directory off sys.path, and a program
# given as several files needs to import its siblings.  Inside the sandbox that
# directory is the run's own /tmp, so -P protects nothing there.  -S: no site
# packages (and no .pth files that import things), -B: no .pyc written.
PY_FLAGS = ("-E", "-s", "-S", "-B")
WORK = "/tmp"
# bubblewrap's monitor process counts against the uid's RLIMIT_NPROC as well.
BWRAP_PROCESSES = 1
# The code's whole environment; nothing of the host's reaches it.
SANDBOX_ENV = {"HOME": WORK, "TMPDIR": WORK, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# How the interpreter starts the program, as ``python FLAGS -c BOOTSTRAP MAIN ARGS``.
# Its first act is to write one byte to a pipe only the host reads, then close it;
# the code's first line runs after that.  So the byte means "the sandbox is set up
# and the interpreter runs", and its absence means the sandbox (bubblewrap, prlimit,
# a too-small memory limit) failed, whatever the exit status or stderr say: the
# code cannot fake a failure of the sandbox, nor hide one.  bubblewrap's own
# --json-status-fd cannot tell this: it reports the child before setting it up.
# Then it runs MAIN as __main__ would run, with its directory first on sys.path.
BOOTSTRAP = """\
import os, sys
os.write({fd}, b"+")
os.close({fd})
sys.argv = sys.argv[1:]
__file__ = os.path.abspath(sys.argv[0])
sys.path[0] = os.path.dirname(__file__)
del os, sys
exec(compile(open(__file__, "rb").read(), __file__, "exec"))
"""
STARTED = b"+"
TOP_LEVEL_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True, slots=True)
class Tools:
    python: str
    prlimit: str
    bwrap: str | None
    """None only with ``unsafe_no_sandbox``."""
    ro_binds: tuple[str, ...] = ()


class FdSet:
    """Descriptors of one run, all closed at the end except those handed over."""

    def __init__(self) -> None:
        self.owned: set[int] = set()

    def __enter__(self) -> FdSet:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.owned:
            with contextlib.suppress(OSError):
                os.close(fd)

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.owned |= {r, w}
        return r, w

    def memfd(self, content: bytes) -> int:
        # A memfd rather than a file on disk: nothing of the run touches the host's
        # filesystem, and bubblewrap copies it into the sandbox's tmpfs (--file).
        fd = os.memfd_create("hainet-sandbox")
        self.owned.add(fd)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    def hand_over(self, fds: Sequence[int]) -> None:
        self.owned -= set(fds)


def prlimit_argv(prlimit: str, lim: Limits, uid: int | None, *, sandboxed: bool) -> list[str]:
    """Layer 2 as a launcher: prlimit sets the limits on itself, then execs the rest.

    A launcher rather than a ``preexec_fn``: ``preexec_fn`` runs Python between fork
    and exec, which can deadlock in a process with threads (the bench has them).
    """
    mib = 1024 * 1024
    cpu = lim.cpu_limit
    argv = [
        prlimit,
        f"--as={lim.memory_mb * mib}",
        # Soft and hard alike: as pid 1 of its namespace the code ignores SIGXCPU
        # (see --as-pid-1), so the hard limit's SIGKILL is what ends it.
        f"--cpu={cpu}:{cpu}",
        f"--nofile={lim.max_open_files}",
        f"--fsize={lim.max_file_mb * mib}",
        "--core=0",
        "--memlock=0",
        "--msgqueue=0",
    ]
    if uid is not None:
        # Only meaningful under a uid of our own: it counts every process of the uid.
        extra = BWRAP_PROCESSES if sandboxed else 0
        argv.append(f"--nproc={lim.max_processes + extra}")
    return [*argv, "--"]


def bwrap_argv(tools: Tools, lim: Limits, seccomp_fd: int, file_ops: list[str]) -> list[str]:
    """Layer 3 and 4: namespaces, a root of read-only system files, the filter."""
    assert tools.bwrap is not None
    argv = [
        tools.bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup, mount: no network at all
        "--unshare-user",
        "--disable-userns",  # no namespaces inside; seccomp denies them too
        "--die-with-parent",
        # The code is pid 1 of its namespace instead of bubblewrap's reaper: then the
        # monitor waits for it, and its CPU time reaches our wait4().  It also means
        # signals it sends itself with no handler are ignored, and SIGXCPU at the
        # soft CPU limit too, which is why soft and hard CPU limits are the same.
        "--as-pid-1",
        "--new-session",
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in TOP_LEVEL_LINKS:
        host = Path("/", name)
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    for path in tools.ro_binds:
        argv += ["--ro-bind", path, path]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        # /dev is a tmpfs of its own that --remount-ro / does not reach; left
        # writable, /dev/shm would be unbounded memory outside RLIMIT_AS.
        "--remount-ro", "/dev",
        "--size", str(lim.tmp_mb * 1024 * 1024), "--tmpfs", WORK,
        *file_ops,
        # Without this the root is a writable tmpfs with no size limit.
        "--remount-ro", "/",
        "--chdir", WORK,
        *(arg for name, value in SANDBOX_ENV.items() for arg in ("--setenv", name, value)),
        "--seccomp", str(seccomp_fd),
    ]  # fmt: skip
    return argv


@contextlib.contextmanager
def host_workdir(files: Mapping[str, bytes], uid: int | None) -> Iterator[str]:
    """unsafe_no_sandbox only: the files in a private host directory owned by ``uid``."""
    workdir = Path(tempfile.mkdtemp(prefix="hainet-unsafe-"))
    try:
        for name, content in files.items():
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if uid is not None:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, uid, uid, follow_symlinks=False)
        yield str(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
