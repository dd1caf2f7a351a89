"""The in-process llama.cpp backend on the real bundled model."""

import json
from pathlib import Path

import jsonschema
import pytest

from hainet.backends.catalog import BUNDLED
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.errors import BackendError, ModelNotFound
from hainet.types import GenerationParams, Message, Request

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llama(bundled_gguf: Path) -> LlamaCppBackend:
    backend = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bundled_gguf)}))
    yield backend
    backend.close()


async def test_generation_reports_llama_cpp_timings(llama: LlamaCppBackend) -> None:
    out = await llama.generate(
        Request(prompt="The capital of France is", params=GenerationParams(max_tokens=16))
    )
    assert out.text.strip()
    assert out.prompt_tokens > 3 and 1 <= out.completion_tokens <= 16
    t = out.timing
    assert t.ttft_s is not None and 0 < t.ttft_s < t.wall_s
    assert t.prefill_tps is not None and t.prefill_tps > 0
    assert t.decode_tps is not None and t.decode_tps > 0
    assert llama.load_seconds > 0


async def test_json_schema_constrained_output_validates(llama: LlamaCppBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    req = Request(
        prompt="Describe a person as JSON:\n",
        params=GenerationParams(max_tokens=64, json_schema=schema),
    )
    out = await llama.generate(req)
    value = json.loads(out.text)
    jsonschema.validate(value, schema)


async def test_answers_do_not_depend_on_earlier_requests(llama: LlamaCppBackend) -> None:
    # llama-cpp-python reuses the cached prompt prefix unless told not to; with a
    # shared prefix the second answer would be computed from a different cache state.
    target = Request(prompt="Q: What is 7 * 6?\nA:", params=GenerationParams(max_tokens=12))
    alone = (await llama.generate(target)).text
    for other in ("Q: What is 7 * 8?\nA:", "Q: Name a colour.\nA:", "Once upon a time"):
        await llama.generate(Request(prompt=other, params=GenerationParams(max_tokens=12)))
    assert (await llama.generate(target)).text == alone


async def test_every_request_prefills_its_whole_prompt(llama: LlamaCppBackend) -> None:
    # The mechanism behind the test above: no prefix of an earlier prompt is reused
    # from the KV cache, so llama.cpp evaluates every prompt token each time.
    import llama_cpp

    prompt = "Q: What is 7 * 6?\nA:"
    shared = Request(
        prompt=prompt + " 42\nQ: And 7 * 7?\nA:", params=GenerationParams(max_tokens=4)
    )
    first = await llama.generate(Request(prompt=prompt, params=GenerationParams(max_tokens=4)))
    second = await llama.generate(shared)
    evaluated = llama_cpp.llama_perf_context(llama._llm.ctx).n_p_eval
    assert evaluated == second.prompt_tokens > first.prompt_tokens


async def test_same_seed_same_sample_at_temperature(llama: LlamaCppBackend) -> None:
    params = GenerationParams(temperature=1.0, seed=42, max_tokens=16)
    a = await llama.generate(Request(prompt="A short poem:", params=params))
    b = await llama.generate(Request(prompt="A short poem:", params=params))
    assert a.text == b.text


async def test_chat_without_template_is_a_clear_error(llama: LlamaCppBackend) -> None:
    with pytest.raises(BackendError, match="no chat template"):
        await llama.generate(Request(messages=(Message("user", "hi"),)))


def test_missing_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="not found"):
        LlamaCppBackend(BUNDLED.model_copy(update={"path": str(tmp_path / "none.gguf")}))


def test_not_a_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"<html>404</html>" * 100)
    with pytest.raises(BackendError, match="not a GGUF"):
        LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bad)}))


def test_truncated_gguf(tmp_path: Path, bundled_gguf: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with bundled_gguf.open("rb") as src:
        cut.write_bytes(src.read(5_000_000))
    with pytest.raises(BackendError, match="could not load"):
        LlamaCppBackend(BUNDLED.model_copy(update={"path": str(cut)}))
