"""Shared fixtures.  Every test gets its own HAINET_HOME; the bundled model is
assembled once per session and linked into each test's home."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hainet.backends.catalog import BUNDLED_FILENAME, ensure_bundled_model


@pytest.fixture(scope="session")
def bundled_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_bundled_model(tmp_path_factory.mktemp("bundled"))


@pytest.fixture(autouse=True)
def hainet_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    home = tmp_path / "hainet-home"
    home.mkdir()
    monkeypatch.setenv("HAINET_HOME", str(home))
    for var in [v for v in os.environ if v.startswith("HAINET_") and v != "HAINET_HOME"]:
        monkeypatch.delenv(var)
    if request.node.get_closest_marker("model"):
        gguf = request.getfixturevalue("bundled_gguf")
        (home / "models").mkdir()
        (home / "models" / BUNDLED_FILENAME).symlink_to(gguf)
    yield home
