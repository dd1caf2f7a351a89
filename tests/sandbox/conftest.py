"""Fixtures for the sandbox tests: one shared Sandbox, and helpers to look at the host."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hainet.sandbox import Sandbox
from hainet.sandbox._uids import processes_of

# The sandbox switches every run to a fresh uid, which only root can do; on a
# developer's machine without root these tests cannot say anything.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root")
    box = Sandbox()
    box.self_check()
    return box


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every uid can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="hainet-sbx-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | 0o444)
    return path


def no_processes_left(uid: int) -> bool:
    return not processes_of(uid)
