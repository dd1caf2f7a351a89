"""A throwaway PostgreSQL server from the Debian binaries: initdb into a temp dir,
loopback only, stopped and deleted after."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.backends.servers import free_port


def pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found; `make test` installs them")
    root = tempfile.mkdtemp(prefix="hainet-pg-")
    data, port = os.path.join(root, "data"), free_port()
    # initdb refuses to run as root: run the server as the Debian `postgres` user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    try:
        subprocess.run(
            [*as_user, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "hainet", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_user,
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-w",
                "-l",
                os.path.join(root, "log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root} -F",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "hainet", "hainet"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://hainet@127.0.0.1:{port}/hainet"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


def fresh_database(server_url: str) -> str:
    """A new empty database on the server at ``server_url``; its URL."""
    import sqlalchemy as sa

    name = f"t{next(_databases)}_{os.getpid()}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """One throwaway PostgreSQL server per session (per module that imports it);
    tests take a fresh database of it with :func:`fresh_database`."""
    with postgres_server() as url:
        yield url


ON_PG = pytest.param(
    "postgresql",
    marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL binaries missing"),
    ],
)
"""Parametrise a store fixture with ``["sqlite", ON_PG]``; use :func:`store_url`."""


def store_url(request: pytest.FixtureRequest, sqlite_path: str) -> str:
    """The URL of the store a fixture parametrised with ``["sqlite", ON_PG]`` opens:
    SQLite at ``sqlite_path``, or a fresh database of the session's server."""
    if request.param == "sqlite":
        return f"sqlite:///{sqlite_path}"
    return fresh_database(request.getfixturevalue("pg_server"))
