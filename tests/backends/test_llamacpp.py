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


# -- grammar-constrained decoding: the fast order gives the grammar-first answers ----

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
SHIRT = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
        "size": {"type": "string", "enum": ["S", "M", "L"]},
        "price": {"type": "number"},
    },
    "required": ["colour", "size", "price"],
}
CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "country": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "code": {"type": "string", "enum": ["FR", "DE", "IT"]},
            },
            "required": ["name", "code"],
        },
        "population_millions": {"type": "number"},
    },
    "required": ["city", "country", "population_millions"],
}
TOOL = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": ["calculator", "search"]},
        "args": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
    "required": ["tool", "args"],
}
GRAMMAR_CASES = [
    ("Describe a person as JSON:\n", PERSON),
    ("A large blue shirt costs 19.99 dollars. As JSON:\n", SHIRT),
    ("Paris is a city in France with 2.1 million people. As JSON:\n", CITY),
    ("To compute 17 times 23, call a tool. JSON:\n", TOOL),
]


def _json_request(prompt: str, schema: dict, **params: object) -> Request:
    return Request(
        prompt=prompt, params=GenerationParams(max_tokens=80, json_schema=schema, **params)
    )


async def _both_orders(llama: LlamaCppBackend, req: Request) -> tuple[str, str]:
    llama.grammar_first = True
    try:
        slow = (await llama.generate(req)).text
    finally:
        llama.grammar_first = False
    return slow, (await llama.generate(req)).text


@pytest.mark.parametrize(
    ("prompt", "schema"), GRAMMAR_CASES, ids=["person", "enum", "nested", "tool"]
)
async def test_grammar_last_matches_grammar_first_at_temperature_0(
    llama: LlamaCppBackend, prompt: str, schema: dict
) -> None:
    slow, fast = await _both_orders(llama, _json_request(prompt, schema))
    assert fast == slow
    jsonschema.validate(json.loads(fast), schema)


async def test_rejected_tokens_are_resampled(llama: LlamaCppBackend) -> None:
    # The model's free choice often breaks the grammar (e.g. a newline before "{"); the
    # comparison above only means something if that path actually runs.
    await llama.generate(_json_request(*GRAMMAR_CASES[0]))
    sampler = llama._llm._sampler
    assert 0 < sampler.resampled < sampler.steps


async def test_full_vocabulary_fallback_gives_the_same_answer(
    llama: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a one-token shortlist most re-samples fall through to the grammar over the
    # whole vocabulary; the answer must not change.
    from hainet.backends import llamacpp

    prompt, schema = GRAMMAR_CASES[2]
    expected = (await llama.generate(_json_request(prompt, schema))).text
    monkeypatch.setattr(llamacpp._GrammarLastSampler, "SHORTLIST", 1)
    assert (await llama.generate(_json_request(prompt, schema))).text == expected


async def test_grammar_last_sampling_at_temperature_is_valid_and_seeded(
    llama: LlamaCppBackend,
) -> None:
    prompt, schema = GRAMMAR_CASES[1]
    req = _json_request(prompt, schema, temperature=1.0, seed=7)
    a, b = (await llama.generate(req)).text, (await llama.generate(req)).text
    assert a == b
    jsonschema.validate(json.loads(a), schema)
