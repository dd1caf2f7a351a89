"""The public names of hainet.hub, locked (STYLE.md habit 1; hainet.net: tests/net)."""

import subprocess
import sys

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


def test_the_cli_does_not_load_fastapi_until_it_serves() -> None:
    code = "import sys, hainet.cli; print('fastapi' in sys.modules or 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
