"""Deterministic prefix reuse for the in-process llama.cpp backend.

A suite's prompts mostly begin the same way (the reasoning suite: a 95-token few-shot
block before each question).  Without reuse every case clears the KV cache and
evaluates its whole prompt.  With it, the suite's shared prefix is evaluated once,
from an empty cache, in one batch, and each case evaluates only the rest of its own
prompt on top of it:

* before a case, the cache is cut back to exactly the prefix (``llama_memory_seq_rm``
  from the prefix's length on; the case's own tokens, whatever the previous case
  was, are removed), so the case's suffix lands in the same cells, attends to the
  same prefix values and is evaluated in the same batch shape every time;
* when the loaded prefix is not the one a prompt needs (another suite's), the cache
  is cleared and the needed prefix evaluated again from empty, which gives the same
  values as the first time.

So each answer is a function of its own prompt and its suite's prefix only, whatever
order the cases run in or which ran before.  It is *not* the full-prefill answer
bit for bit: evaluating the prefix in its own batch changes the floating-point
reduction order of the suffix's attention (measured in issue 17: 3 of the reasoning
suite's 45 answers differ, always the same 3), which is why the run records the
mode and the sweep's plan hash covers it.

The prefix is the longest common *token* prefix of the suite's prompts, tokenized
as ``create_completion`` does (BOS, then the text with special tokens parsed), so
every prompt of the suite starts with exactly those tokens.  Below ``MIN_TOKENS``
reuse is not worth a separate batch and the prompts get a full prefill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["PrefixCache", "common_prefix", "prompt_tokens"]


def prompt_tokens(llm: Any, prompt: str) -> list[int]:
    """The tokens ``Llama.create_completion`` evaluates for a plain prompt."""
    bos = llm.token_bos()
    body = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) if prompt else []
    return [bos, *body]


def common_prefix(token_lists: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The longest token prefix all the lists share, one token short of the shortest
    list (each prompt must keep a token of its own to be evaluated)."""
    if not token_lists:
        return ()
    first = token_lists[0]
    n = min(len(t) for t in token_lists) - 1
    for i in range(max(n, 0)):
        if any(t[i] != first[i] for t in token_lists):
            return tuple(first[:i])
    return tuple(first[: max(n, 0)])


class PrefixCache:
    """The prefixes a backend knows and which one its KV cache holds (module docstring).

    Used from the model's own thread only."""

    MIN_TOKENS = 16

    def __init__(self) -> None:
        self._known: set[tuple[int, ...]] = set()
        self.loaded: tuple[int, ...] | None = None
        """The prefix the KV cache holds in its first cells, or None."""

    @property
    def active(self) -> bool:
        return bool(self._known)

    def register(self, llm: Any, prompts: Sequence[str]) -> int:
        """Remember the common prefix of ``prompts``; its length, 0 if too short."""
        prefix = common_prefix([prompt_tokens(llm, p) for p in prompts])
        if len(prefix) < self.MIN_TOKENS:
            return 0
        self._known.add(prefix)
        return len(prefix)

    def match(self, tokens: Sequence[int]) -> tuple[int, ...] | None:
        """The longest known prefix ``tokens`` start with (and go beyond)."""
        best: tuple[int, ...] | None = None
        for prefix in self._known:
            n = len(prefix)
            if n < len(tokens) and tuple(tokens[:n]) == prefix and (best is None or n > len(best)):
                best = prefix
        return best

    def prepare(self, llm: Any, prompt: str, clear: Any) -> int:
        """Leave exactly the prompt's prefix in the cache (evaluating it if needed), or
        an empty cache (``clear()``) when no known prefix fits; the prefix's length.

        ``Llama.generate`` then finds the prefix as its cached tokens and evaluates
        only the rest of the prompt."""
        prefix = self.match(prompt_tokens(llm, prompt))
        if prefix is None:
            clear()
            return 0
        if self.loaded != prefix:
            import llama_cpp

            clear()
            try:
                llm.eval(list(prefix))
                # llama.cpp counts a decode's tokens when it next synchronizes: do it
                # now, so they are not counted as the next request's prefill.
                llama_cpp.llama_synchronize(llm.ctx)
            except BaseException:
                clear()
                raise
            self.loaded = prefix
        n = len(prefix)
        # Forget the previous case's tokens: generate() compares the prompt with the
        # first n_tokens cached ones, so it can match no more than the prefix.
        llm.n_tokens = n
        llm._ctx.kv_cache_seq_rm(-1, n, -1)
        return n
