"""What a run returns, and the limits it ran under."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "CallOutcome",
    "CallResult",
    "JSONValue",
    "KilledBy",
    "Limits",
    "SandboxResult",
    "same_value",
]

KilledBy: TypeAlias = Literal["timeout", "cpu", "memory", "output", "signal"]
JSONValue: TypeAlias = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-run limits.  Every one is enforced by the kernel, not by the code's goodwill."""

    timeout: float = 10.0
    """Wall-clock seconds before the whole sandbox is killed."""
    memory_mb: int = 512
    """Address space (``RLIMIT_AS``) of each process, in MiB."""
    cpu_seconds: float | None = None
    """CPU seconds of each process (``RLIMIT_CPU``); default: the timeout, rounded up."""
    max_processes: int = 32
    """Processes and threads the code may have at once (``RLIMIT_NPROC`` of its uid)."""
    max_open_files: int = 64
    """File descriptors per process (``RLIMIT_NOFILE``)."""
    max_file_mb: int = 16
    """Largest file the code may write (``RLIMIT_FSIZE``), in MiB."""
    tmp_mb: int = 64
    """Size of the writable ``/tmp`` (the only writable place), in MiB."""
    max_output: int = 256 * 1024
    """Bytes kept of stdout and of stderr each."""
    output_overflow: Literal["kill", "cut"] = "kill"
    """Past ``max_output``: ``kill`` stops the run at the first byte more
    (``killed_by="output"``); ``cut`` keeps the first ``max_output`` bytes, discards
    the rest as it comes and lets the run go on (``truncated=True``)."""

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")
        if self.memory_mb < 32:
            raise ValueError("memory_mb below 32 cannot start the interpreter")
        if self.cpu_seconds is not None and not self.cpu_seconds > 0:
            raise ValueError("cpu_seconds must be positive")
        for name in ("max_processes", "max_open_files", "max_file_mb", "tmp_mb", "max_output"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.output_overflow not in ("kill", "cut"):
            raise ValueError("output_overflow must be 'kill' or 'cut'")
        if self.max_open_files < 16:
            raise ValueError("max_open_files below 16 cannot start the interpreter")

    @property
    def cpu_limit(self) -> int:
        return math.ceil(self.cpu_seconds if self.cpu_seconds is not None else self.timeout)


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """How one run ended.  ``stdout``/``stderr`` are the code's words, never a verdict."""

    exit_code: int
    """The code's exit status; ``-N`` when it died of signal ``N`` (``-9`` when we
    killed it).  Under bubblewrap a death by signal and ``sys.exit(128 + N)`` look
    the same; both are failures."""
    stdout: str
    stderr: str
    truncated: bool
    """stdout or stderr went past ``Limits.max_output`` and was cut there (and the run
    killed, unless ``Limits.output_overflow`` is ``cut``)."""
    killed_by: KilledBy | None
    """Why the run was stopped, or None if the code ended on its own.  ``timeout``,
    ``output`` and ``cpu`` come from what the host observed; ``memory`` is read from
    the interpreter's ``MemoryError`` on stderr, so the code could fake it, which
    only makes it look worse."""
    duration: float
    """Wall-clock seconds from launch to the last process gone."""
    cpu_time: float
    """User plus system CPU seconds of the code's first process and of the children
    it waited for (a child never waited for is not counted)."""
    uid: int
    """The uid the code ran as (fresh for this run; no process of it is left)."""
    sandboxed: bool
    """False when run with ``unsafe_no_sandbox``: only rlimits and the uid applied."""

    @property
    def ok(self) -> bool:
        """Exited 0 on its own.  Says nothing about correctness: see ``Sandbox.call``."""
        return self.exit_code == 0 and self.killed_by is None


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What one call of the code's function gave back, as plain JSON data."""

    value: JSONValue = None
    error: str | None = None
    """``"TypeName: message"`` if the call raised or returned something that is not
    plain data (an object that overrides ``__eq__`` cannot come out of the sandbox)."""

    @property
    def returned(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class CallResult:
    """``Sandbox.call``: the run, and one outcome per case (None: never reached)."""

    run: SandboxResult
    outcomes: tuple[CallOutcome | None, ...]
    load_error: str | None = None
    """The module could not be loaded, or the function was not found."""

    def passed(self, expected: Sequence[JSONValue]) -> list[bool]:
        """Per case, whether the value returned equals ``expected`` (compared here,
        outside the sandbox, with :func:`same_value`)."""
        if len(expected) != len(self.outcomes):
            raise ValueError(f"{len(expected)} expected values for {len(self.outcomes)} cases")
        return [
            out is not None and out.returned and same_value(out.value, want)
            for out, want in zip(self.outcomes, expected, strict=True)
        ]


def same_value(got: JSONValue, want: JSONValue) -> bool:
    """Deep equality of JSON data where ``True`` is not ``1`` (Python's ``==`` says it
    is) and ints equal floats of the same value, as a test's ``==`` would."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, int | float) and isinstance(got, int | float):
        return got == want
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(
            same_value(g, w) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want
