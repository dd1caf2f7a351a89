"""Measuring the machine and the process: peak memory, hardware, library versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

from hainet.backends import backend_class, backend_names
from hainet.errors import HainetError

__all__ = ["MemorySampler", "hardware_fingerprint", "library_versions"]

MIB = 1024 * 1024


class MemorySampler:
    """Samples this process's RSS in a background thread and keeps the peak.

    ``baseline_mb`` is the RSS when sampling started (before the model loads), so
    ``peak_mb - baseline_mb`` is what the model and its runs added.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.baseline_mb = self._rss_mb()
        self.peak_mb = self.baseline_mb

    def _rss_mb(self) -> float:
        return float(self._proc.memory_info().rss) / MIB

    def sample(self) -> float:
        rss = self._rss_mb()
        self.peak_mb = max(self.peak_mb, rss)
        return rss

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, name="hainet-rss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.peak_mb

    @property
    def model_mb(self) -> float:
        return max(self.peak_mb - self.baseline_mb, 0.0)

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def hardware_fingerprint() -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {
        "cpu": _cpu_model(),
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_mb": round(vm.total / MIB),
        "gpus": _gpus(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


# Libraries every result depends on; each backend adds its own (Backend.libraries).
_CORE_LIBRARIES = ("hainet", "SQLAlchemy", "pydantic")


def _libraries() -> list[str]:
    names = list(_CORE_LIBRARIES)
    for backend in backend_names():
        try:
            names.extend(backend_class(backend).libraries)
        except HainetError:  # a plugin backend that does not import records nothing
            continue
    return list(dict.fromkeys(names))


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries results depend on: hainet's own and those
    every registered backend declares."""
    found = {}
    for name in _libraries():
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
