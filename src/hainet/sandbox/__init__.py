"""Run untrusted Python (model-written code, AI-made agents) without it touching the host.

Placeholder docstring: replaced below once the design is measured.
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
