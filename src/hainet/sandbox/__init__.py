"""Run untrusted Python (model-written code, AI-made agents) without it touching the host.

::

    box = Sandbox()                                  # checks nothing yet
    result = box.run("print(input()[::-1])", stdin="abc", timeout=5, memory_mb=256)
    result.stdout, result.exit_code, result.killed_by   # 'cba\n', 0, None

    verdict = box.call(solution_code, "add", [[2, 3], [10, 20]])
    verdict.passed([5, 30])                          # compared here, outside

Layers, outermost first; each one was measured to work on the project's machines
(docs/sandbox.md has the guarantees, the limits and the numbers):

1. process: an empty environment, a new session, a wall-clock timeout that kills the
   whole tree, stdout and stderr capped (256 KiB each by default) with the run killed
   at the first byte past the cap, or the rest discarded while it goes on
   (``Limits.output_overflow="cut"``) (``_process``);
2. rlimits set by ``prlimit`` (util-linux) before anything else runs: address space,
   CPU seconds, file size, open files, no core dumps, and a process count that
   means something because each run has a fresh unprivileged uid of its own
   (``_uids``; ``RLIMIT_NPROC`` is ignored for root);
3. bubblewrap: new user, pid, network, ipc, uts, cgroup and mount namespaces, no
   capabilities, a read-only root holding only ``/usr`` (and its ``/bin``, ``/lib``
   links), ``/proc``, a minimal read-only ``/dev`` and a size-capped ``/tmp``: no
   home directory, project, database or network is there to be reached;
4. seccomp (``pyseccomp``, given to bubblewrap as ``--seccomp FD``): no sockets but
   ``AF_UNIX``, no ptrace, mount, namespaces, bpf, keyrings, io_uring, perf events or
   userfaultfd, and system calls of other ABIs kill the process (``_seccomp``).

Cgroups (the optional fifth layer) are not used: the rlimits above bound memory,
CPU and processes per run without needing write access to the cgroup tree.

**Failing closed.**  The first run checks that bubblewrap, prlimit, the seccomp
binding and an interpreter every uid can read are present, then runs a canary
inside the sandbox that reports its uid, capabilities, seccomp mode, a socket
attempt, a write to ``/``, what ``/`` holds, ``/proc/1/environ`` and its rlimits.
Anything missing or off raises :class:`~hainet.errors.SandboxError` naming the piece
and how to install it, and no code runs.  ``unsafe_no_sandbox=True`` (the CLI's
``--unsafe-no-sandbox``) skips layers 3 and 4 after a ``logging.WARNING``; layers 1
and 2 still apply.  A failure of the sandbox itself is a ``SandboxError`` too, never
a result: the interpreter's first act, before the code's first line, is to write
one byte to a pipe only the host holds and close it; without that byte the code
never ran, whatever the exit status or stderr say (``_launch.BOOTSTRAP``).

**Verdicts are computed outside.**  ``SandboxResult`` holds what the code said
(stdout, stderr, exit code): all of it is the code's to forge, so none of it is a
verdict.  For one, ``Sandbox.call`` runs a harness that calls the code's function on
each case and sends back only the *return values*, as plain JSON (``type(x) is``,
so an object whose ``__eq__`` always says yes cannot come out); the caller compares
them with expected values that never enter the sandbox (``CallResult.passed``).
We chose this over a secret token printed by a trusted harness after the tests: the
harness and the untrusted code share a process, so any token the harness can print,
the code can find (its memory, its file, its arguments) and print first; and a
separate checker process inside the sandbox would run as the same uid.  With values
out and comparison outside there is nothing to steal: whatever the code writes into
the report channel, it is only ever its own answer to a case.  Tests written as
``assert`` statements must be turned into (arguments, expected value) pairs by the
scorer; run in the same interpreter as the candidate, asserts decide nothing.
"""

from hainet.sandbox._result import (
    CallOutcome,
    CallResult,
    JSONValue,
    KilledBy,
    Limits,
    SandboxResult,
    same_value,
)
from hainet.sandbox._sandbox import DEFAULT_PYTHON, Sandbox

__all__ = [
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
