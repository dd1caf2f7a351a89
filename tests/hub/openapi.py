"""The hub's OpenAPI document; ``python -m tests.hub.openapi`` rewrites docs/hub-openapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hainet.agents.marketplace import Marketplace
from hainet.hub.app import create_app
from hainet.hub.service import Hub
from hainet.net.identity import Identity
from hainet.store import Store
from tests.hub.servers import upper_runner

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "hub-openapi.json"


def current_openapi() -> dict[str, Any]:
    hub = Hub(Marketplace(Store("sqlite://")), Identity.generate(), upper_runner())
    return create_app(hub).openapi()


if __name__ == "__main__":
    OPENAPI_FILE.write_text(json.dumps(current_openapi(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {OPENAPI_FILE}")
