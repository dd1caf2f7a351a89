"""A real uvicorn server on 127.0.0.1, port 0, in a thread; stopped by the test."""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import uvicorn

from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.types import ModelSpec, Request

SHOUT: dict[str, Any] = {
    "name": "shout",
    "purpose": "Write the input word in capital letters.",
    "capabilities": ["formatting"],
    "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
    "output": "out",
    "tests": [{"id": f"t{i}", "input": w, "target": w.upper()} for i, w in enumerate("abcde")],
}


def fake_embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    # Bag of words hashed into 64 dimensions: similar texts are near, no model load.
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[i, int.from_bytes(hashlib.sha256(w.encode()).digest()[:2], "little") % 64] += 1
        out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
    return out


def upper_runner(gate_open: threading.Event | None = None) -> Any:
    """A gate model that answers in capitals (the shout agent passes), optionally held
    until ``gate_open`` is set so a test can see the pending state."""

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[AgentRunner]:
        while gate_open is not None and not gate_open.is_set():
            await _sleep()

        def respond(req: Request) -> str:
            return (req.prompt or "").strip().upper()

        backend = MockBackend.from_function(respond)
        backend.spec = ModelSpec(name="upper", backend="mock")
        yield AgentRunner(backend)

    return factory


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.01)


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port; yield its URL; stop it after."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
