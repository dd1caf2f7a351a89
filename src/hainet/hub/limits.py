"""Rate limits of the hub's writes: so many per window, per key and per address."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

from hainet.errors import ValidationError

__all__ = ["RateLimited", "RateLimiter"]


class RateLimited(ValidationError):
    """Too many writes; retry after ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """At most ``rate`` hits per ``per`` seconds for each name (sliding window).

    Memory is bounded: past ``max_names`` the least recently seen name is forgotten
    (a flood of fresh keys or addresses cannot grow it without bound).
    """

    def __init__(self, rate: int, per: float, *, max_names: int = 100_000) -> None:
        if rate < 1 or per <= 0:
            raise ValueError(f"a rate limit needs rate >= 1 and per > 0, got {rate}/{per}")
        self.rate, self.per, self.max_names = rate, per, max_names
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        # The hub calls it from its thread pool: one hit is counted at a time.
        self._lock = threading.Lock()

    def hit(self, name: str, *, what: str | None = None, now: float | None = None) -> None:
        """Count one hit of ``name``; :class:`RateLimited` when over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._hit(name, what, now)

    def _hit(self, name: str, what: str | None, now: float) -> None:
        hits = self._hits.pop(name, None) or deque()
        while hits and hits[0] <= now - self.per:
            hits.popleft()
        self._hits[name] = hits
        if len(self._hits) > self.max_names:
            self._hits.popitem(last=False)
        if len(hits) >= self.rate:
            wait = max(1, math.ceil(hits[0] + self.per - now))
            raise RateLimited(
                f"rate limit: {what or name} made {len(hits)} writes in {self.per:g} s "
                f"(at most {self.rate}); retry in {wait} s",
                retry_after=wait,
            )
        hits.append(now)
