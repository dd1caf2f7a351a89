"""Prefix reuse in the llama.cpp backend: the shared prefix is evaluated once, each
prompt evaluates only its own rest, and an answer does not depend on what ran before
(another suite's prefix, prompts without a prefix, longer shared beginnings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hainet.backends.catalog import BUNDLED
from hainet.backends.llama_prefix import PrefixCache, common_prefix, prompt_tokens
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.types import GenerationParams, Request


def test_common_prefix_keeps_a_token_of_each_prompt_its_own() -> None:
    assert common_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 6]]) == (1, 2, 3)
    assert common_prefix([[1, 2, 3], [1, 2, 3, 4]]) == (1, 2)  # not all of [1, 2, 3]
    assert common_prefix([[1, 2], [3, 4]]) == ()
    assert common_prefix([[7, 8, 9]]) == (7, 8)
    assert common_prefix([]) == ()


def test_the_longest_known_prefix_a_prompt_goes_beyond_is_chosen() -> None:
    cache = PrefixCache()
    cache._known = {(1, 2), (1, 2, 3, 4)}
    assert cache.match([1, 2, 3, 4, 5]) == (1, 2, 3, 4)
    assert cache.match([1, 2, 3, 4]) == (1, 2)  # a prompt must go beyond its prefix
    assert cache.match([1, 3]) is None


FEW_SHOT = "".join(f"Q: What is {a} + {a}?\nA: {2 * a}\n\n" for a in range(1, 9))
OTHER_SHOT = "".join(f"Word: {w}\nLetters: {len(w)}\n\n" for w in ("cat", "house", "tree"))


def _req(prompt: str) -> Request:
    return Request(prompt=prompt, params=GenerationParams(max_tokens=6, stop=("\n",)))


@pytest.mark.model
async def test_a_prefix_is_evaluated_once_and_answers_ignore_what_ran_before(
    bundled_gguf: Path,
) -> None:
    import llama_cpp

    backend = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bundled_gguf)}))
    try:
        questions = [f"{FEW_SHOT}Q: What is {a} + {b}?\nA:" for a, b in ((3, 4), (12, 9), (5, 5))]
        words = [f"{OTHER_SHOT}Word: {w}\nLetters:" for w in ("river", "sun")]
        n = backend.share_prefix(questions)
        assert n >= 16 and backend.share_prefix(words) >= 16
        # Each prompt starts with the prefix's tokens.
        tokens = prompt_tokens(backend._llm, questions[0])
        assert tuple(tokens[:n]) == backend._prefix.match(tokens)

        target = questions[1]
        alone = await backend.generate(_req(target))
        # Only the prompt's own tokens were evaluated for it (the prefix was evaluated
        # before the request's counters started).
        evaluated = llama_cpp.llama_perf_context(backend._llm.ctx).n_p_eval
        assert evaluated == alone.prompt_tokens - n

        for other in [
            questions[0],
            words[0],  # another prefix replaces this one in the cache
            "Once upon a time",  # no known prefix: a full prefill
            target[:-2] + " is twelve plus nine?\nA:",  # shares more than the prefix
            questions[2],
        ]:
            await backend.generate(_req(other))
            again = await backend.generate(_req(target))
            assert again.text == alone.text, other
        plain = await backend.generate(_req("Once upon a time"))
        assert llama_cpp.llama_perf_context(backend._llm.ctx).n_p_eval == plain.prompt_tokens
    finally:
        backend.close()
