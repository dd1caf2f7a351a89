"""RateLimiter: a sliding window per name, bounded memory, safe across threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from hainet.hub.limits import RateLimited, RateLimiter


def test_window_and_retry_after() -> None:
    limit = RateLimiter(2, 60)
    limit.hit("a", now=0)
    limit.hit("a", now=10)
    with pytest.raises(RateLimited, match="retry in 50 s") as info:
        limit.hit("a", now=10)
    assert info.value.retry_after == 50
    limit.hit("b", now=10)  # names are counted apart
    limit.hit("a", now=60.5)  # the first hit left the window


def test_memory_is_bounded() -> None:
    limit = RateLimiter(1, 60, max_names=3)
    for i in range(10):
        limit.hit(str(i), now=0)
    assert len(limit._hits) == 3


def test_threads_never_exceed_the_limit() -> None:
    limit = RateLimiter(50, 60)

    def one(_: int) -> bool:
        try:
            limit.hit("k")
        except RateLimited:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(one, range(400))) == 50
