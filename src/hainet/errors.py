"""Every error hainet raises on purpose derives from :class:`HainetError`.

Library code raises these; only the CLI turns them into one-line messages and exit
codes (see ``hainet.cli``).  The tree::

    HainetError
    ├── ConfigError        bad settings, unknown model name, unreadable TOML
    ├── BackendError       a model could not be loaded or answered badly
    │   ├── BackendUnavailable   server down / unreachable, SDK missing
    │   └── ModelNotFound        no such model file, or the server does not serve it
    ├── SuiteError         a suite or case file is malformed, unknown suite name
    ├── StoreError         the database cannot be opened, migrated or written
    ├── SandboxError       the sandbox itself failed (never the code under test)
    └── ValidationError    a record or user input failed validation
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "HainetError",
    "ModelNotFound",
    "SandboxError",
    "StoreError",
    "SuiteError",
    "ValidationError",
]


class HainetError(Exception):
    """Base of every error hainet raises deliberately.

    ``hint`` is an optional next step shown to the user after the message.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(HainetError):
    exit_code = 2


class BackendError(HainetError):
    exit_code = 3


class BackendUnavailable(BackendError):
    """The backend cannot be reached or its SDK is not installed."""


class ModelNotFound(BackendError):
    """The model file does not exist, or the server does not serve that name."""


class SuiteError(HainetError):
    exit_code = 4


class StoreError(HainetError):
    exit_code = 5


class SandboxError(HainetError):
    exit_code = 6


class ValidationError(HainetError):
    exit_code = 2
