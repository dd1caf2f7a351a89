"""Who owns a running run or sweep, and whether that owner is still alive.

A run (or sweep) is created ``running`` by one process, its *owner*: the host name,
the pid and the process's start time (psutil ``create_time``: a pid reused by
another process after a reboot or a wrap-around has another start time, so it is
not mistaken for the owner).  The owner keeps a *heartbeat*: every stored case sets
it in the same transaction as the case, and a timer thread sets it every
:data:`HEARTBEAT_S` seconds while a long case runs.

When the store opens or lists runs, a ``running`` row is judged:

* owned by a process on this host: abandoned if that pid is gone, a zombie, or has
  another start time.  Certain, so it happens at once.
* owned by a process on another host (Ray workers, a shared PostgreSQL store): the
  pid cannot be asked, so only the heartbeat counts: abandoned when it is older than
  :data:`STALE_AFTER_S` (20 missed beats; assumes the hosts' clocks agree within that).
* with no owner recorded (written before owners were recorded): like another host,
  its creation time standing in for the heartbeat.

A misjudged run is not lost: its cases stay stored, and its owner's ``finish_run``
still closes it with its real status.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import psutil

from hainet.errors import StoreError

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "Heartbeat", "Owner", "current_owner", "why_dead"]

HEARTBEAT_S = 30.0
"""Seconds between the timer's heartbeats while a run or sweep is running."""
STALE_AFTER_S = 600.0
"""A run owned by another host is abandoned after this long without a heartbeat."""
# psutil derives create_time from the boot time, which some kernels report with a
# second of jitter; a pid is not reused within two seconds of its first start.
_START_TOLERANCE_S = 2.0


class Owner(NamedTuple):
    host: str
    pid: int
    started: float
    """psutil ``create_time`` of the process, seconds since the epoch."""


_owner: Owner | None = None


def current_owner() -> Owner:
    """This process (computed again after a fork: the child is another owner)."""
    global _owner
    if _owner is None or _owner.pid != os.getpid():
        pid = os.getpid()
        _owner = Owner(socket.gethostname(), pid, psutil.Process(pid).create_time())
    return _owner


def _alive(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(proc.create_time() - started) <= _START_TOLERANCE_S)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # AccessDenied: it exists, and it is someone's
        return True


def _at(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def why_dead(
    host: str | None,
    pid: int | None,
    started: float | None,
    heartbeat: datetime | None,
    created: datetime,
    now: datetime,
    stale_after_s: float = STALE_AFTER_S,
) -> str | None:
    """Why a ``running`` row's owner is judged gone, or None if it may be alive."""
    beat = heartbeat or created
    if host is None or pid is None or started is None:
        if now - beat > timedelta(seconds=stale_after_s):
            return (
                f"abandoned: no owner was recorded and nothing was heard from it since "
                f"{_at(beat)} (over {stale_after_s:.0f} s)"
            )
        return None
    if host == current_owner().host:
        if _alive(pid, started):
            return None
        return f"abandoned: its process {pid} on host {host} is gone (last heartbeat {_at(beat)})"
    if now - beat > timedelta(seconds=stale_after_s):
        return (
            f"abandoned: no heartbeat from process {pid} on host {host} since {_at(beat)} "
            f"(over {stale_after_s:.0f} s)"
        )
    return None


class Heartbeat:
    """The heartbeat timer of one store: a daemon thread that calls ``beat`` (the
    store's) every :data:`HEARTBEAT_S` seconds while this process owns something running,
    so a case that runs for minutes does not look like a dead owner on another host.
    It ends by itself when nothing it owns is running and starts again on demand."""

    def __init__(self, beat: Callable[[], int], interval: float = HEARTBEAT_S) -> None:
        """``beat`` sets the heartbeat of what this process owns and says how many."""
        self.beat, self.interval = beat, interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._asked = 0  # bumped by wanted(): a beat that saw nothing may be stale

    def wanted(self) -> None:
        with self._lock:
            self._asked += 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name="hainet-heartbeat", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                asked = self._asked
            try:
                n = self.beat()
            except StoreError:
                continue  # a busy database: the next beat comes in HEARTBEAT_S
            with self._lock:
                if n == 0 and asked == self._asked:
                    self._thread = None
                    return

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
