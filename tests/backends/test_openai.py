"""The OpenAI-compatible backend against a real llama.cpp server and a flaky one."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from hainet.backends.openai import OpenAIBackend
from hainet.errors import BackendError, BackendUnavailable, ModelNotFound
from hainet.types import GenerationParams, ModelSpec, Request

from .servers import FlakyServer, free_port, llama_server


@pytest.fixture(scope="module")
def server_url(bundled_gguf: Path) -> Iterator[str]:
    with llama_server(bundled_gguf, alias="gemma-served") as url:
        yield url


def spec(url: str, model: str = "gemma-served") -> ModelSpec:
    return ModelSpec(name="served", backend="openai", url=url, model=model)


@pytest.mark.model
async def test_streaming_completion_from_a_real_llama_cpp_server(server_url: str) -> None:
    backend = OpenAIBackend(spec(server_url))
    try:
        out = await backend.generate(
            Request(prompt="Q: What is 2 + 3?\nA:", params=GenerationParams(max_tokens=12))
        )
    finally:
        await backend.aclose()
    assert out.text.strip()
    assert out.completion_tokens >= 1
    assert out.timing.ttft_s is not None and 0 < out.timing.ttft_s <= out.timing.wall_s
    if out.completion_tokens > 1:
        assert out.timing.decode_tps is not None and out.timing.decode_tps > 0


@pytest.mark.model
async def test_server_and_in_process_agree_at_temperature_zero(
    server_url: str, bundled_gguf: Path
) -> None:
    from hainet.backends.catalog import BUNDLED
    from hainet.backends.llamacpp import LlamaCppBackend

    req = Request(prompt="The three primary colours are", params=GenerationParams(max_tokens=10))
    remote = OpenAIBackend(spec(server_url))
    local = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bundled_gguf)}))
    try:
        assert (await remote.generate(req)).text == (await local.generate(req)).text
    finally:
        await remote.aclose()
        local.close()


@pytest.mark.model
async def test_unknown_model_name_is_a_clear_error(server_url: str) -> None:
    backend = OpenAIBackend(spec(server_url, model="no-such-model"))
    with pytest.raises(ModelNotFound, match="does not serve model 'no-such-model'.*gemma-served"):
        await backend.generate(Request(prompt="hi"))
    await backend.aclose()


async def test_server_down_is_a_clear_error() -> None:
    backend = OpenAIBackend(spec(f"http://127.0.0.1:{free_port()}/v1"), max_retries=1)
    with pytest.raises(BackendUnavailable, match="cannot reach the server"):
        await backend.generate(Request(prompt="hi"))
    await backend.aclose()


async def test_retries_with_backoff_on_503_then_succeeds() -> None:
    with FlakyServer(failures=2, status=503, text="fine") as server:
        backend = OpenAIBackend(spec(server.url, model="flaky"), max_retries=3)
        out = await backend.generate(Request(prompt="hi"))
        await backend.aclose()
    assert out.text == "fine"
    assert server.completion_calls == 3


async def test_gives_up_after_max_retries() -> None:
    with FlakyServer(failures=10, status=429) as server:
        backend = OpenAIBackend(spec(server.url, model="flaky"), max_retries=1)
        with pytest.raises(BackendError, match="429"):
            await backend.generate(Request(prompt="hi"))
        await backend.aclose()
    assert server.completion_calls == 2
