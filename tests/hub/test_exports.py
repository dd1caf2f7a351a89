"""The public names of hainet.hub, locked (STYLE.md habit 1; hainet.net: tests/net)."""

import hainet.hub


def test_hub_exports() -> None:
    assert sorted(hainet.hub.__all__) == [
        "API_VERSION",
        "Conflict",
        "Hub",
        "HubClient",
        "HubError",
        "NotFound",
        "Pulled",
        "RateLimited",
        "RateLimiter",
    ]
    assert all(getattr(hainet.hub, n) is not None for n in hainet.hub.__all__)
    assert "fastapi" not in hainet.hub.__dict__  # the app is imported where it is served
