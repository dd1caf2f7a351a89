"""Deterministic prefix reuse on the real bundled model: each answer is a function of
its own prompt whatever order the cases run in, and ``prefix_reuse=False`` gives the
answers of a plain llama-cpp-python loop that prefills every prompt in full."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from hainet.backends.catalog import BUNDLED
from hainet.bench import BenchOptions, run_model
from hainet.config import load_settings
from hainet.store import Store
from hainet.suites import Suite, load_suite
from hainet.types import GenerationParams

pytestmark = pytest.mark.model

# Enough cases to cover the suite's kinds (arithmetic, sequences, algebra, logic,
# words) without making CI wait: the prefix is computed from all cases anyway.
CASES = 14


def _suite(order: int) -> Suite:
    suite = load_suite("reasoning")
    cases = list(suite.cases[:CASES])
    if order:
        random.Random(order).shuffle(cases)
    # The suite's other cases stay in it but are not run: keep the prefix the
    # full suite's (quick subset = the chosen cases, in the chosen order).
    rest = [c for c in suite.cases if c not in cases]
    return suite.model_copy(update={"cases": cases + rest, "quick": [c.id for c in cases]})


def _answers(gguf: Path, suite: Suite, *, prefix_reuse: bool) -> tuple[dict[str, str], object]:
    store = Store(load_settings().db_url)
    spec = BUNDLED.model_copy(update={"path": str(gguf), "n_threads": 2})
    options = BenchOptions(quick=True, prefix_reuse=prefix_reuse)
    run = asyncio.run(run_model(spec, [suite], store, options))
    results = store.results(run.id)
    assert [r.case_id for r in results] == suite.quick  # ran in the order given
    return {r.case_id: r.output or "" for r in results}, run.params


def test_two_orders_give_every_answer_equal_and_the_run_records_the_prefix(
    bundled_gguf: Path,
) -> None:
    first, params = _answers(bundled_gguf, _suite(0), prefix_reuse=True)
    shuffled, _ = _answers(bundled_gguf, _suite(7), prefix_reuse=True)
    assert list(first) != list(shuffled)  # really another order
    assert shuffled == first
    assert params.prefix_reuse is True
    # The reasoning suite's four-example few-shot block, BOS included.
    assert params.prefix_tokens == {"reasoning": 95}


def test_no_prefix_reuse_answers_equal_a_plain_full_prefill_loop(bundled_gguf: Path) -> None:
    import llama_cpp

    suite = _suite(3)
    answers, params = _answers(bundled_gguf, suite, prefix_reuse=False)
    assert params.prefix_reuse is False and params.prefix_tokens is None
    llm = llama_cpp.Llama(
        model_path=str(bundled_gguf), n_ctx=2048, n_threads=2, seed=0, verbose=False
    )
    try:
        expected = {}
        for case in suite.select(quick=True):
            request = suite.request(case, "prompt", GenerationParams())
            llm.reset()
            llm._ctx.kv_cache_clear()
            out = llm.create_completion(
                request.prompt or "",
                max_tokens=request.params.max_tokens,
                temperature=0.0,
                top_p=1.0,
                seed=0,
                stop=list(request.params.stop),
            )
            expected[case.id] = out["choices"][0]["text"]
    finally:
        llm.close()
    assert answers == expected
