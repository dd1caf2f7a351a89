"""How a HumanEval test judges each value its candidate returns, and the same judgement
made on the host, without running the test there.

A HumanEval test is ``check(candidate)``, a function of asserts.  Each call of the
candidate sits in one assert, and the shape of that assert is the whole verdict on
the value: ``candidate(x) == y`` is Python's ``==``, ``assert candidate(x)`` is
truthiness, ``assert not candidate(x)`` its negation, ``candidate(x) is True`` is
identity, ``abs(candidate(x) - y) < eps`` and ``math.isclose(candidate(x), y, ...)``
are the test's own tolerances.  :func:`instrument` reads these shapes from the test's
source (an AST, nothing runs) into one :class:`Site` per call and rewrites the test so
that, when it runs with the canonical solution in the sandbox, every call reports its
site and every operand the assert compares with (``y``, ``eps``, ``rel_tol``) is kept.
:func:`judge` then applies the site's judgement to the candidate's returned value,
here, outside the sandbox, on plain data only.

What a value goes through first, the test's own conversion of it (``tuple(...)``
around the call, or ``bool`` for truthiness), is applied inside the sandbox, in the
candidate's process, as the test would: a generator turned into a tuple, an object's
own ``__bool__``.  That tells the candidate how a call is judged, never what answer
is expected: both ``assert f(x)`` and ``assert not f(x)`` ask for ``bool``.

An assert of any other shape is refused when the suite loads (a
:class:`~hainet.errors.SuiteError` naming its line), rather than judged some other way.
"""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from hainet.errors import SuiteError

__all__ = ["Kind", "Site", "View", "describe", "instrument", "judge"]

Kind: TypeAlias = Literal["equal", "truthy", "falsy", "is", "tolerance", "isclose", "free"]
View: TypeAlias = Literal["bool", "tuple", "list", "sorted", "set"]

# Conversions a test may wrap around the call before comparing with ``==``.
_WRAPPERS: dict[str, View] = {"tuple": "tuple", "list": "list", "sorted": "sorted", "set": "set"}
_IDENTITY = {True, False, None}
# Names the rewritten test calls; the recorder puts them in the test's module.
KEEP = "_hn_keep"
SITE = "_hn_site"


@dataclass(frozen=True, slots=True)
class Site:
    """One call of the candidate in the test's source, and how its assert judges it."""

    index: int
    line: int
    """The assert's line in the test's source."""
    kind: Kind
    """``free``: the call is outside any assert (allowed only with a case verifier)."""
    view: View | None = None
    """Applied to the value inside the sandbox before it is judged, as the test does."""
    identity: bool | None = None
    """For ``is``: the constant the value must be (``True``, ``False`` or ``None``)."""
    fabs: bool = False
    """For ``tolerance``: ``math.fabs`` rather than ``abs``."""
    reverse: bool = False
    """For ``tolerance``: ``abs(want - value)`` rather than ``abs(value - want)``."""
    inclusive: bool = False
    """For ``tolerance``: ``<=`` rather than ``<``."""
    keeps: tuple[str, ...] = ()
    """The operands the assert compares with, kept when the test is recorded."""


# -- reading the test --------------------------------------------------------------------


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


class _Reader:
    def __init__(self, param: str) -> None:
        self.param = param
        self.sites: list[Site] = []
        self.calls: dict[int, int] = {}  # id of a candidate Call node -> site index
        self.kept: dict[int, tuple[int, str]] = {}  # id of an operand node -> (site, role)

    def is_call(self, node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == self.param
        )

    def calls_in(self, node: ast.AST) -> list[ast.Call]:
        return [n for n in ast.walk(node) if self.is_call(n)]  # type: ignore[misc]

    def uses(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id == self.param for n in ast.walk(node))

    def add(self, call: ast.Call, line: int, kind: Kind, **fields: Any) -> Site:
        site = Site(len(self.sites), line, kind, **fields)
        self.sites.append(site)
        self.calls[id(call)] = site.index
        return site

    def keep(self, site: int, role: str, node: ast.expr) -> None:
        self.kept[id(node)] = (site, role)

    def wrapped(self, node: ast.expr) -> tuple[ast.Call, View | None] | None:
        """``candidate(...)`` or ``tuple(candidate(...))`` and its like."""
        if self.is_call(node):
            assert isinstance(node, ast.Call)
            return node, None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _WRAPPERS
            and len(node.args) == 1
            and not node.keywords
            and self.is_call(node.args[0])
        ):
            inner = node.args[0]
            assert isinstance(inner, ast.Call)
            return inner, _WRAPPERS[node.func.id]
        return None

    def classify(self, test: ast.expr, line: int) -> bool:
        """Record the site of the one call in ``test``; False if the shape is unknown."""
        if self.is_call(test):
            assert isinstance(test, ast.Call)
            self.add(test, line, "truthy", view="bool")
            return True
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        if negated and isinstance(test, ast.UnaryOp) and self.is_call(test.operand):
            assert isinstance(test.operand, ast.Call)
            self.add(test.operand, line, "falsy", view="bool")
            return True
        if isinstance(test, ast.Call) and _dotted(test.func) == "math.isclose":
            return self._isclose(test, line)
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return False
        op, left, right = test.ops[0], test.left, test.comparators[0]
        if isinstance(op, ast.Eq):
            for mine, other in ((left, right), (right, left)):
                found = self.wrapped(mine)
                if found is not None and not self.uses(other):
                    site = self.add(found[0], line, "equal", view=found[1], keeps=("want",))
                    self.keep(site.index, "want", other)
                    return True
            return False
        if isinstance(op, ast.Is) and self.is_call(left) and isinstance(right, ast.Constant):
            if right.value in _IDENTITY and type(right.value) in (bool, type(None)):
                assert isinstance(left, ast.Call)
                self.add(left, line, "is", identity=right.value)
                return True
            return False
        if isinstance(op, ast.Lt | ast.LtE):
            return self._tolerance(left, right, line, inclusive=isinstance(op, ast.LtE))
        if isinstance(op, ast.Gt | ast.GtE):
            return self._tolerance(right, left, line, inclusive=isinstance(op, ast.GtE))
        return False

    def _tolerance(self, distance: ast.expr, eps: ast.expr, line: int, *, inclusive: bool) -> bool:
        """``abs(candidate(...) - want) < eps``, ``math.fabs``, either order."""
        if not (
            isinstance(distance, ast.Call)
            and _dotted(distance.func) in ("abs", "math.fabs")
            and len(distance.args) == 1
            and not distance.keywords
            and isinstance(distance.args[0], ast.BinOp)
            and isinstance(distance.args[0].op, ast.Sub)
            and not self.uses(eps)
        ):
            return False
        diff = distance.args[0]
        for mine, other, reverse in ((diff.left, diff.right, False), (diff.right, diff.left, True)):
            if self.is_call(mine) and not self.uses(other):
                assert isinstance(mine, ast.Call)
                site = self.add(
                    mine,
                    line,
                    "tolerance",
                    fabs=_dotted(distance.func) == "math.fabs",
                    reverse=reverse,
                    inclusive=inclusive,
                    keeps=("want", "eps"),
                )
                self.keep(site.index, "want", other)
                self.keep(site.index, "eps", eps)
                return True
        return False

    def _isclose(self, test: ast.Call, line: int) -> bool:
        """``math.isclose(candidate(...), want, rel_tol=..., abs_tol=...)``, either order."""
        names = [k.arg for k in test.keywords]
        if len(test.args) != 2 or any(n not in ("rel_tol", "abs_tol") for n in names):
            return False
        if any(self.uses(k.value) for k in test.keywords):
            return False
        for mine, other in ((test.args[0], test.args[1]), (test.args[1], test.args[0])):
            if self.is_call(mine) and not self.uses(other):
                assert isinstance(mine, ast.Call)
                roles = ("want", *(str(n) for n in names))
                site = self.add(mine, line, "isclose", keeps=roles)
                self.keep(site.index, "want", other)
                for k in test.keywords:
                    self.keep(site.index, str(k.arg), k.value)
                return True
        return False


class _Rewriter(ast.NodeTransformer):
    """Candidate calls report their site; kept operands go through ``_hn_keep``."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def visit(self, node: ast.AST) -> Any:
        kept = self.reader.kept.get(id(node))
        site = self.reader.calls.get(id(node))
        node = self.generic_visit(node)
        if site is not None:
            assert isinstance(node, ast.Call)
            node.keywords.append(ast.keyword(arg=SITE, value=ast.Constant(site)))
        if kept is not None:
            assert isinstance(node, ast.expr)
            args: list[ast.expr] = [ast.Constant(kept[0]), ast.Constant(kept[1]), node]
            return ast.Call(func=ast.Name(KEEP, ast.Load()), args=args, keywords=[])
        return node


@functools.lru_cache(maxsize=512)
def instrument(test: str, *, free_calls: bool = False) -> tuple[str, tuple[Site, ...]]:
    """The test's sites, and its source rewritten to report them when it runs.

    ``free_calls`` allows calls outside any assert (a case with its own verifier).
    Raises SuiteError naming the line of an assert the judgement cannot be read from.
    """
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise SuiteError(f"the test does not parse: line {exc.lineno}: {exc.msg}") from None
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or not checks[0].args.args:
        raise SuiteError("the test must define one function check(candidate)")
    reader = _Reader(checks[0].args.args[0].arg)
    # An assert's message runs only once the assert has failed: its calls judge nothing.
    in_messages = {
        id(n)
        for a in ast.walk(checks[0])
        if isinstance(a, ast.Assert) and a.msg is not None
        for n in ast.walk(a.msg)
    }
    for node in ast.walk(checks[0]):
        if not isinstance(node, ast.Assert):
            continue
        calls = reader.calls_in(node.test)
        if not calls:
            if reader.uses(node.test) and not free_calls:
                raise SuiteError(
                    f"the test's assert at line {node.lineno} uses the candidate without calling it"
                )
            continue
        if len(calls) > 1 or not reader.classify(node.test, node.lineno):
            raise SuiteError(
                f"the test's assert at line {node.lineno} ({ast.unparse(node.test)[:120]}): "
                "cannot tell how it judges the candidate's value; supported: ==, truthiness, "
                "not, is True/False/None, abs(... - y) < eps, math.isclose"
            )
    for call in reader.calls_in(checks[0]):
        if id(call) not in reader.calls and id(call) not in in_messages:
            if not free_calls:
                raise SuiteError(
                    f"the test calls the candidate outside an assert at line {call.lineno}; "
                    "only a case with options.verify may"
                )
            reader.add(call, call.lineno, "free")
    called = {id(c.func) for c in reader.calls_in(checks[0])}
    for n in ast.walk(checks[0]):
        if (
            isinstance(n, ast.Name)
            and n.id == reader.param
            and isinstance(n.ctx, ast.Load)
            and id(n) not in called
            and id(n) not in in_messages
        ):
            raise SuiteError(
                f"the test uses the candidate other than by calling it at line {n.lineno}"
            )
    rewritten = ast.fix_missing_locations(_Rewriter(reader).visit(tree))
    return ast.unparse(rewritten) + "\n", tuple(reader.sites)


# -- judging a value ---------------------------------------------------------------------


def judge(site: Site, got: Any, kept: dict[str, Any]) -> bool:
    """The assert's verdict on ``got``: plain data, already through ``site.view``.

    ``kept`` holds the operands recorded with the canonical solution (``want``,
    ``eps``, ``rel_tol``, ``abs_tol``), decoded.  Only built-in operations on plain
    data run here; one that raises is a failed assert, as in the test.
    """
    try:
        if site.kind == "equal":
            return bool(got == kept["want"])
        if site.kind == "truthy":
            return got is True  # bool(value), computed in the sandbox
        if site.kind == "falsy":
            return got is False
        if site.kind == "is":
            return got is site.identity
        if site.kind == "tolerance":
            want = kept["want"]
            diff = want - got if site.reverse else got - want
            distance = math.fabs(diff) if site.fabs else abs(diff)
            return bool(distance <= kept["eps"] if site.inclusive else distance < kept["eps"])
        if site.kind == "isclose":
            tols = {k: kept[k] for k in ("rel_tol", "abs_tol") if k in kept}
            return math.isclose(got, kept["want"], **tols)
    except Exception:  # noqa: BLE001 - what the assert would raise fails the test
        return False
    raise ValueError(f"site {site.index} ({site.kind}) has no judgement of its own")


def describe(site: Site, kept: dict[str, Any], shown: str) -> str:
    """What the test asserts about ``shown`` (the call, as text), for an explanation."""
    value = f"{site.view}({shown})" if site.view not in (None, "bool") else shown
    if site.kind == "equal":
        return f"{value} == {_short(kept.get('want'))}"
    if site.kind == "truthy":
        return f"{shown} is truthy"
    if site.kind == "falsy":
        return f"not {shown}"
    if site.kind == "is":
        return f"{shown} is {site.identity}"
    if site.kind == "tolerance":
        fn = "math.fabs" if site.fabs else "abs"
        op = "<=" if site.inclusive else "<"
        return f"{fn}({shown} - {_short(kept.get('want'))}) {op} {kept.get('eps')!r}"
    if site.kind == "isclose":
        tols = "".join(f", {k}={kept[k]!r}" for k in ("rel_tol", "abs_tol") if k in kept)
        return f"math.isclose({shown}, {_short(kept.get('want'))}{tols})"
    return shown


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
