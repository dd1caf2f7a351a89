"""Layer 4: the seccomp filter bubblewrap installs in the sandbox (``--seccomp FD``).

Default-allow with a deny list: CPython and its C extensions use a wide and
version-dependent set of system calls, so an allow list would break ordinary
programs in ways that look like the code's fault.  What is denied is what turns a
process with no capabilities into an attacker of the kernel or the network: sockets
other than ``AF_UNIX``, debugging other processes, new namespaces and mounts, kernel
keyrings, BPF, ``io_uring`` (its requests bypass this filter), perf events and
``userfaultfd`` (both staples of kernel exploits).  System calls of another
architecture (32-bit ``int 0x80``) kill the process, since they would bypass the rules.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
from typing import Any

from hainet.errors import SandboxError

__all__ = ["DENIED_SYSCALLS", "filter_bpf", "load_binding"]

SECCOMP_INSTALL = (
    "pip install 'pyseccomp>=0.1.2,<0.2' (it needs libseccomp2: apt-get install libseccomp2)"
)

DENIED_SYSCALLS: tuple[str, ...] = (
    # other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # namespaces and the mount table
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # kernel attack surface with a history of exploits
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # the machine itself; capabilities already stop these, the filter is a second lock
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
)

# clone(2) with any of these flags makes a namespace, which unshare(2) being denied
# does not cover.  One rule per flag: seccomp compares arguments, it cannot ask
# "any bit of this mask set".
_CLONE_NEW_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
# Faking terminal input (TIOCSTI) or poking the console (TIOCLINUX); the sandbox has
# no terminal, this is one more lock in case a future caller passes one.
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


def load_binding() -> Any:
    """Import the seccomp binding, or fail closed naming what to install."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as exc:
        # pyseccomp raises RuntimeError at import when libseccomp.so is missing.
        raise SandboxError(
            f"seccomp is unavailable ({exc}); the sandbox refuses to run without it",
            hint=SECCOMP_INSTALL,
        ) from exc
    return pyseccomp


@functools.cache
def filter_bpf() -> bytes:
    """The compiled BPF program, built once per process (about a millisecond)."""
    sc = load_binding()
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        for name in DENIED_SYSCALLS:
            flt.add_rule(sc.ERRNO(errno.EPERM), name)
        for flag in _CLONE_NEW_FLAGS:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        # clone3 passes its flags in memory, out of the filter's reach; ENOSYS makes
        # glibc fall back to clone(2), where the rules above apply.
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for request in (_TIOCSTI, _TIOCLINUX):
            flt.add_rule(sc.ERRNO(errno.EPERM), "ioctl", sc.Arg(1, sc.EQ, request))
        fd = os.memfd_create("hainet-seccomp")
        try:
            with os.fdopen(fd, "w+b", closefd=False) as fh:
                flt.export_bpf(fh)
            os.lseek(fd, 0, os.SEEK_SET)
            return _read_all(fd)
        finally:
            os.close(fd)
    except (OSError, ValueError) as exc:
        raise SandboxError(f"cannot build the seccomp filter: {exc}", hint=SECCOMP_INSTALL) from exc


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
