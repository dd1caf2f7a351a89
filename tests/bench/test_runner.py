import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from hainet.backends import Catalog, register_backend
from hainet.backends.mock import MockBackend
from hainet.bench import BenchOptions, Progress, run_bench, summarize
from hainet.config import add_model_to_config, load_settings
from hainet.errors import BackendError, ConfigError, SuiteError
from hainet.store import Store
from hainet.types import ModelSpec, Request


class Arithmetic(MockBackend):
    """Answers the reasoning suite's arithmetic right, fails on case 'arith-mul'."""

    fail_on: ClassVar[str | None] = None
    interrupt_on: ClassVar[str | None] = None
    interrupted: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, responder=self.answer)

    def answer(self, request: Request) -> str:
        question = (request.prompt or "").rsplit("Q: ", 1)[-1]
        if self.fail_on and self.fail_on in question:
            raise BackendError("the model fell over")
        if self.interrupt_on and self.interrupt_on in question:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: asyncio cancels the main task
            Arithmetic.interrupted = True
        if "2 + 3" in question:
            return " 5"
        return " 12"


@pytest.fixture
def setup(hainet_home: Path) -> tuple[Catalog, Store]:
    register_backend("arith-test", Arithmetic)
    Arithmetic.fail_on = Arithmetic.interrupt_on = None
    Arithmetic.interrupted = False
    add_model_to_config(hainet_home, "fake", {"backend": "arith-test"})
    cfg = load_settings()
    return Catalog(cfg), Store(cfg.db_url)


def test_a_run_stores_every_case_with_scores_and_speed(setup: tuple[Catalog, Store]) -> None:
    catalog, store = setup
    seen: list[str] = []
    progress = Progress(on_case=lambda r: seen.append(r.case_id))
    [run] = asyncio.run(run_bench(catalog, ["fake"], store, BenchOptions(quick=True), progress))
    assert run.status == "completed" and run.model_name == "fake"
    full = store.get_run(run.id, with_results=True)
    results = {r.case_id: r for r in full.results or []}
    assert (
        set(results)
        == set(seen)
        == {"arith-add", "arith-mul", "seq-even", "alg-add", "logic-syllogism"}
    )
    assert results["arith-add"].score == 1.0 and results["arith-mul"].score == 0.0
    assert "Q: What is 2 + 3?" in results["arith-add"].prompt
    assert run.summary["suites"]["reasoning"] == {
        "score": 0.2,
        "cases": 5,
        "scored": 5,
        "errors": 0,
    }
    assert run.hardware["cores_logical"] >= 1 and "hainet" in run.versions
    assert run.peak_rss_mb is not None and run.load_s is not None


def test_a_failing_case_is_recorded_not_scored(setup: tuple[Catalog, Store]) -> None:
    catalog, store = setup
    Arithmetic.fail_on = "7 * 6"
    [run] = asyncio.run(run_bench(catalog, ["fake"], store, BenchOptions(quick=True)))
    results = {r.case_id: r for r in store.results(run.id)}
    assert results["arith-mul"].score is None
    assert "fell over" in (results["arith-mul"].error or "")
    assert run.summary["suites"]["reasoning"]["errors"] == 1
    assert run.summary["suites"]["reasoning"]["scored"] == 4


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT as at a terminal: Python's handler, which asyncio.run replaces with its
    own (cancel the main task, then raise KeyboardInterrupt).  A test run started in
    the background (``make test &`` from a script) inherits SIGINT *ignored*; the
    test's own Ctrl-C then did nothing ("DID NOT RAISE KeyboardInterrupt")."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_an_interrupted_run_keeps_finished_cases(setup: tuple[Catalog, Store]) -> None:
    catalog, store = setup
    # The responder runs on the event loop's thread: the kernel delivers the signal to
    # that thread as kill() returns and Python runs the handler before the responder
    # returns, so the run is cancelled while this case is in flight, every time.
    Arithmetic.interrupt_on = "Tom is a cat"  # the last quick case
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_bench(catalog, ["fake"], store, BenchOptions(quick=True)))
    assert Arithmetic.interrupted
    [run] = store.list_runs()
    assert run.status == "interrupted" and run.finished_at is not None
    results = store.results(run.id)
    # Up to 4 requests are in flight against a server-like backend: the cases that
    # finished are kept, whole (scored), and the run's summary counts exactly them.
    assert 1 <= len(results) <= 5
    assert all(r.score is not None and r.output for r in results)
    assert run.summary["suites"]["reasoning"]["cases"] == len(results)
    [sweep] = store.list_sweeps()
    assert sweep.status == "interrupted"


def test_bad_names_fail_before_anything_is_stored(setup: tuple[Catalog, Store]) -> None:
    catalog, store = setup
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        asyncio.run(run_bench(catalog, ["fake", "nope"], store, BenchOptions()))
    with pytest.raises(SuiteError, match="unknown suite"):
        asyncio.run(run_bench(catalog, ["fake"], store, BenchOptions(suites=("nope",))))
    assert store.list_runs() == []


def test_a_model_that_cannot_load_is_stored_as_failed(
    setup: tuple[Catalog, Store], hainet_home: Path
) -> None:
    _, store = setup
    bad = hainet_home / "bad.gguf"
    bad.write_bytes(b"nope" * 10)
    catalog = Catalog(load_settings())
    with pytest.raises(BackendError, match="not a GGUF"):
        asyncio.run(run_bench(catalog, [str(bad)], store, BenchOptions(quick=True)))
    [run] = store.list_runs()
    assert run.status == "failed" and "not a GGUF" in (run.error or "")


def test_summarize_ignores_errors_in_means() -> None:
    from hainet.store import CaseResult

    rs = [
        CaseResult(suite="s", case_id="a", prompt="p", score=1.0, decode_tps=10.0),
        CaseResult(suite="s", case_id="b", prompt="p", error="boom", decode_tps=99.0),
        CaseResult(suite="s", case_id="c", prompt="p", score=0.0, decode_tps=20.0),
    ]
    s = summarize(rs)
    assert s["suites"]["s"] == {"score": 0.5, "cases": 3, "scored": 2, "errors": 1}
    assert s["decode_tps"] == 15.0


def test_unknown_model_in_catalog_lists_known(setup: tuple[Catalog, Store]) -> None:
    catalog, _ = setup
    assert catalog.names() == ["gemma-3-270m", "fake"]
    with pytest.raises(ConfigError, match="known models: gemma-3-270m, fake"):
        catalog.resolve("nope")
