"""The hub: a server where agents are shared as signed records (layer 8).

``service.py`` is what a hub does (:class:`Hub`), ``app.py`` its FastAPI edge,
``serve.py`` builds one from settings, ``client.py`` talks to one over HTTP.  The
FastAPI app is imported from ``hainet.hub.app`` only where it is served, so the CLI
does not load FastAPI to push or pull.
"""

from hainet.hub.client import HubClient, HubError, Pulled
from hainet.hub.limits import RateLimited, RateLimiter
from hainet.hub.service import API_VERSION, Conflict, Hub, NotFound

__all__ = [
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
