"""Runs inside the sandbox at first use and reports what it can see and do.

Standalone on purpose: it runs under the sandbox's own interpreter (``-S``, no
hainet, no site-packages), so it imports only the standard library.  The host
compares the report with what the layers promise (see ``_sandbox._check_canary``).
"""

import errno
import json
import os
import resource
import socket
from collections.abc import Callable


def _status(field: str) -> str:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def _attempt(action: Callable[[], None]) -> str:
    try:
        action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "allowed"


def main() -> None:
    def inet() -> None:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()

    def write_root() -> None:
        with open("/hainet-canary", "w") as fh:
            fh.write("x")

    try:
        with open("/proc/1/environ", "rb") as fh:
            environ = sorted(
                item.split(b"=", 1)[0].decode(errors="replace")
                for item in fh.read().split(b"\0")
                if item
            )
    except OSError:
        environ = []
    report = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "cap_eff": _status("CapEff"),
        "no_new_privs": _status("NoNewPrivs"),
        "seccomp": _status("Seccomp"),
        "inet": _attempt(inet),
        "write_root": _attempt(write_root),
        "root_entries": sorted(os.listdir("/")),
        "pid1_environ": environ,
        "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1],
        "address_space": resource.getrlimit(resource.RLIMIT_AS)[1],
        "core": resource.getrlimit(resource.RLIMIT_CORE)[1],
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
