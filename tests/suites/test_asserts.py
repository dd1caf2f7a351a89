"""How a HumanEval-style test judges its calls (hainet.suites.asserts): read from the
test's source, and the same judgement made on plain values.  Nothing runs here."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hainet.errors import SuiteError
from hainet.sandbox import Sandbox
from hainet.suites import Case, ScoringContext
from hainet.suites.asserts import Site, instrument, judge
from hainet.suites.code import CodeScorer, humaneval_suite
from hainet.types import Completion, Timing


def sites(body: str, **kw: bool) -> tuple[Site, ...]:
    return instrument("def check(candidate):\n" + body, **kw)[1]


def test_each_assert_shape_is_read_as_its_judgement() -> None:
    found = sites(
        "    assert candidate(1) == 2\n"
        "    assert 3 == candidate(2), 'message: ' + str(candidate(2))\n"
        "    assert candidate(3)\n"
        "    assert not candidate(4)\n"
        "    assert candidate(5) is True\n"
        "    assert candidate(6) is None\n"
        "    assert abs(candidate(7) - 2.0 / 3.0) < 1e-6\n"
        "    assert math.fabs(0.5 - candidate(8)) <= 1e-3\n"
        "    assert 1e-6 > abs(candidate(9) - 1)\n"
        "    assert math.isclose(candidate(10), 0.1, rel_tol=1e-3)\n"
        "    assert tuple(candidate(11)) == (1, 2)\n"
        "    assert sorted(candidate(12)) == [1, 2]\n"
        "    for x in range(3):\n"
        "        assert candidate(x) == x\n"
    )
    kinds = [(s.kind, s.view) for s in found]
    assert kinds == [
        ("equal", None),
        ("equal", None),
        ("truthy", "bool"),
        ("falsy", "bool"),
        ("is", None),
        ("is", None),
        ("tolerance", None),
        ("tolerance", None),
        ("tolerance", None),
        ("isclose", None),
        ("equal", "tuple"),
        ("equal", "sorted"),
        ("equal", None),
    ]
    assert [s.line for s in found] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
    assert found[4].identity is True and found[5].identity is None
    fabs, reverse_gt = found[7], found[8]
    assert fabs.fabs and fabs.reverse and fabs.inclusive
    assert not reverse_gt.fabs and not reverse_gt.reverse and not reverse_gt.inclusive
    assert found[9].keeps == ("want", "rel_tol")


def test_the_rewritten_test_reports_sites_and_keeps_operands() -> None:
    source, found = instrument(
        "def check(candidate):\n    assert abs(candidate(1.5) - 0.5) < 1e-6, candidate(0)\n"
    )
    assert "candidate(1.5, _hn_site=0)" in source
    assert "_hn_keep(0, 'want', 0.5)" in source and "_hn_keep(0, 'eps', 1e-06)" in source
    assert "candidate(0)" in source  # the message's call is left alone: it judges nothing
    assert len(found) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    assert candidate(1) != 2\n", "line 2"),
        ("    assert candidate(1) == candidate(2)\n", "cannot tell how"),
        ("    assert all(candidate(x) for x in [1])\n", "cannot tell how"),
        ("    assert len(candidate(1)) == 2\n", "cannot tell how"),
        ("    assert abs(candidate(1) - 1) < candidate(2)\n", "cannot tell how"),
        ("    y = candidate(1)\n    assert y == 2\n", "outside an assert at line 2"),
        ("    assert list(map(candidate, [1])) == [2]\n", "without calling it"),
        ("    fs = [candidate]\n    assert fs[0](1) == 2\n", "other than by calling it at line 2"),
    ],
)
def test_a_test_that_cannot_be_read_is_refused(body: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        sites(body)


def test_calls_outside_asserts_are_allowed_with_a_verifier() -> None:
    [free] = sites("    y = candidate(1)\n    assert abs(y) < 1e-4\n", free_calls=True)
    assert free.kind == "free"


def test_every_humaneval_test_is_read() -> None:
    counts: dict[str, int] = {}
    for case in humaneval_suite().cases:
        free = case.options.get("verify") is not None
        for site in instrument(str(case.options["test"]), free_calls=free)[1]:
            counts[site.kind] = counts.get(site.kind, 0) + 1
    # 1,081 plain ==, 10 tuple(...) ==, 12 truthy, 18 falsy, 6 is True/False, 5 with a
    # tolerance, and HumanEval/32's call outside its assert.
    assert counts == {"equal": 1091, "truthy": 12, "falsy": 18, "is": 6, "tolerance": 5, "free": 1}


def judged(body: str, got: Any, **kept: Any) -> bool:
    [site] = sites(body)
    return judge(site, got, kept)


def test_judgements_are_the_asserts() -> None:
    eq = "    assert candidate(1) == 7.5\n"
    assert judged(eq, 7.5, want=7.5) and not judged(eq, 7.5 + 1e-9, want=7.5)
    assert judged(eq, 1, want=True) and judged(eq, 2, want=2.0)  # Python's ==
    assert not judged(eq, [1, 2], want=(1, 2)) and not judged(eq, "2", want=2)
    assert not judged(eq, math.nan, want=math.nan)  # nan == nan is False, in the test too
    truthy, falsy = "    assert candidate(1)\n", "    assert not candidate(1)\n"
    assert judged(truthy, True) and not judged(truthy, False)
    assert judged(falsy, False) and not judged(falsy, True)
    assert not judged(truthy, 1)  # the sandbox sends bool(value): anything else is forged
    strict = "    assert candidate(1) is True\n"
    assert judged(strict, True) and not judged(strict, 1)
    tol = "    assert abs(candidate(1) - 0.33) < 1e-6\n"
    assert judged(tol, 0.33 + 1e-7, want=0.33, eps=1e-6)
    assert not judged(tol, 0.33 + 1e-5, want=0.33, eps=1e-6)
    assert not judged(tol, "0.33", want=0.33, eps=1e-6)  # str - float raises: a failure
    assert judged(tol, True, want=1, eps=1e-6)  # True - 1 == 0, as in the test
    close = "    assert math.isclose(candidate(1), 100, rel_tol=0.01)\n"
    assert judged(close, 100.9, want=100, rel_tol=0.01)
    assert not judged(close, 101.1, want=100, rel_tol=0.01)
    assert not judged(close, [100], want=100, rel_tol=0.01)


def test_a_case_with_an_unreadable_test_fails_when_the_suite_loads() -> None:
    bad = Case(
        id="mine/1",
        input="def f(x):\n",
        options={
            "entry_point": "f",
            "canonical_solution": "    return x\n",
            "test": "def check(candidate):\n    assert candidate(1) != 2\n",
        },
    )
    with pytest.raises(SuiteError, match=r"case mine/1: options.test: .*line 2"):
        CodeScorer.check_case(bad)
    scorer = CodeScorer(ScoringContext(extra={"code_sandbox": Sandbox()}))
    with pytest.raises(SuiteError, match="line 2"):  # before any code runs
        scorer.score(bad, Completion(text="    return x\n", timing=Timing(wall_s=0.0)))
