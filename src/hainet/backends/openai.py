"""Any OpenAI-compatible server: llama.cpp's server, vLLM, Ollama, LM Studio.

Requests stream, so time to first token is measured at the first token that
arrives.  Retries with exponential backoff on 408/409/429/5xx and dropped
connections are the ``openai`` SDK's own (``max_retries``).  On first use the
backend asks the server which models it serves, so a wrong model name is a clear
error instead of whatever the server does with it.

Prefill and decode rates are estimated from outside: prompt tokens / time to first
token, and (completion tokens - 1) / time after the first token.  Token counts come
from the server's ``usage`` when it sends one, otherwise one per streamed chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, ClassVar

from hainet.backends.base import Backend, missing_dependency
from hainet.errors import BackendError, BackendUnavailable, ConfigError, ModelNotFound
from hainet.types import Completion, ModelSpec, Request, Timing

__all__ = ["OpenAIBackend"]


class OpenAIBackend(Backend):
    name: ClassVar[str] = "openai"
    supports_chat = True
    supports_json_schema = True
    reports_timings = True
    remote = True
    libraries = ("openai",)
    default_for = ("url",)

    @classmethod
    def check_spec(cls, spec: ModelSpec) -> None:
        if not (spec.url and spec.model):
            raise ConfigError(f"model {spec.name!r}: the openai backend needs url and model")

    def __init__(self, spec: ModelSpec, *, max_retries: int = 3, timeout: float = 600.0) -> None:
        super().__init__(spec)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise missing_dependency("openai", "server", exc) from None
        if not spec.url or not spec.model:
            raise BackendError(f"model {spec.name!r}: the openai backend needs url and model")
        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=spec.url,
            api_key=spec.api_key or "not-needed",
            max_retries=max_retries,
            timeout=timeout,
        )
        self._checked = False
        self._check_lock = asyncio.Lock()

    async def _check_model(self) -> None:
        async with self._check_lock:
            if self._checked:
                return
            start = time.perf_counter()
            try:
                page = await self._client.models.list()
            except self._openai.APIConnectionError as exc:
                raise BackendUnavailable(
                    f"cannot reach the server at {self.spec.url}: {exc.__cause__ or exc}",
                    hint="is it running? check the URL",
                ) from None
            except self._openai.APIStatusError as exc:
                raise BackendError(
                    f"{self.spec.url} answered {exc.status_code} to GET /models: {exc.message}"
                ) from None
            served = [m.id for m in page.data]
            if served and self.spec.model not in served:
                raise ModelNotFound(
                    f"the server at {self.spec.url} does not serve model {self.spec.model!r}",
                    hint=f"it serves: {', '.join(served)}",
                )
            self.load_seconds = time.perf_counter() - start
            self._checked = True

    async def generate(self, request: Request) -> Completion:
        await self._check_model()
        p = request.params
        kwargs: dict[str, Any] = {
            "model": self.spec.model,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": p.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if p.stop:
            kwargs["stop"] = list(p.stop)
        schema_format = (
            {"type": "json_schema", "json_schema": {"name": "output", "schema": p.json_schema}}
            if p.json_schema is not None
            else None
        )
        start = time.perf_counter()
        first: float | None = None
        pieces: list[str] = []
        chunks = 0
        finish: str | None = None
        usage: Any = None
        try:
            if request.prompt is not None:
                if schema_format:
                    kwargs["extra_body"] = {"response_format": schema_format}
                stream = await self._client.completions.create(prompt=request.prompt, **kwargs)
                async for chunk in stream:
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.text:
                            first = first or time.perf_counter()
                            pieces.append(choice.text)
                            chunks += 1
                        finish = choice.finish_reason or finish
            else:
                assert request.messages is not None
                if schema_format:
                    kwargs["response_format"] = schema_format
                msgs: Any = [{"role": m.role, "content": m.content} for m in request.messages]
                chat: Any = await self._client.chat.completions.create(messages=msgs, **kwargs)
                stream = chat
                async for chunk in stream:
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            first = first or time.perf_counter()
                            pieces.append(choice.delta.content)
                            chunks += 1
                        finish = choice.finish_reason or finish
        except self._openai.APIConnectionError as exc:
            raise BackendUnavailable(
                f"lost the server at {self.spec.url}: {exc.__cause__ or exc}"
            ) from None
        except self._openai.NotFoundError as exc:
            raise ModelNotFound(f"{self.spec.url}: {exc.message}") from None
        except self._openai.APIStatusError as exc:
            raise BackendError(
                f"{self.spec.url} answered {exc.status_code}: {exc.message}"
            ) from None
        end = time.perf_counter()
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or chunks)
        ttft = (first - start) if first is not None else None
        decode_time = (end - first) if first is not None else 0.0
        return Completion(
            text="".join(pieces),
            timing=Timing(
                wall_s=end - start,
                ttft_s=ttft,
                prefill_tps=(prompt_tokens / ttft) if ttft and prompt_tokens else None,
                decode_tps=(
                    (completion_tokens - 1) / decode_time
                    if completion_tokens > 1 and decode_time > 0
                    else None
                ),
            ),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish,
            model=self.spec.name,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def close(self) -> None:
        # The SDK's client closes asynchronously; a sync close from inside a running
        # loop cannot await it, so only close here when no loop is running.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            with contextlib.suppress(RuntimeError):  # bound to a loop that is gone
                asyncio.run(self._client.close())
