"""A fake backend for tests: scripted or computed outputs, no model.

Shipped in the library so users can test their own suites and agents::

    from hainet.backends.mock import MockBackend
    backend = MockBackend.scripted(["4", "Paris"])
    backend = MockBackend.from_function(lambda req: req.prompt.upper())

Every request it saw is kept in ``backend.requests``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import ClassVar

from hainet.backends.base import Backend
from hainet.errors import BackendError
from hainet.types import Completion, ModelSpec, Request, Timing

__all__ = ["MockBackend"]

Responder = Callable[[Request], "str | Completion"]


class MockBackend(Backend):
    name: ClassVar[str] = "mock"
    supports_chat = True
    supports_tools = True
    supports_json_schema = True

    def __init__(
        self,
        spec: ModelSpec | None = None,
        *,
        outputs: Iterable[str | Completion] | None = None,
        responder: Responder | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__(spec or ModelSpec(name="mock", backend="mock"))
        self._outputs = list(outputs) if outputs is not None else None
        self._responder = responder
        self._delay = delay
        self.requests: list[Request] = []
        self.closed = False

    @classmethod
    def scripted(cls, outputs: Iterable[str | Completion], **kw: float) -> MockBackend:
        return cls(outputs=outputs, **kw)  # type: ignore[arg-type]

    @classmethod
    def from_function(cls, responder: Responder, **kw: float) -> MockBackend:
        return cls(responder=responder, **kw)  # type: ignore[arg-type]

    async def generate(self, request: Request) -> Completion:
        if self.closed:
            raise BackendError("mock backend is closed")
        self.requests.append(request)
        start = time.perf_counter()
        if self._delay:
            await asyncio.sleep(self._delay)
        if self._responder is not None:
            out: str | Completion = self._responder(request)
        elif self._outputs:
            out = self._outputs.pop(0)
        elif self._outputs is not None:
            raise BackendError("mock backend ran out of scripted outputs")
        else:
            out = ""
        if isinstance(out, Completion):
            return out
        wall = time.perf_counter() - start
        n_prompt = len((request.prompt or "").split()) or 1
        n_out = len(out.split())
        return Completion(
            text=out,
            timing=Timing(wall_s=wall, ttft_s=wall),
            prompt_tokens=n_prompt,
            completion_tokens=n_out,
            finish_reason="stop",
            model=self.spec.name,
        )

    def close(self) -> None:
        self.closed = True
