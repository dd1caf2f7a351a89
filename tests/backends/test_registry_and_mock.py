import sys

import pytest

from hainet.backends import Backend, backend_class, backend_names, open_backend, register_backend
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.backends.mock import MockBackend
from hainet.errors import BackendError, BackendUnavailable, ConfigError
from hainet.types import Completion, ModelSpec, Request, Timing


def test_builtins_are_found_through_entry_points() -> None:
    assert {"llamacpp", "openai", "mock"} <= set(backend_names())
    assert backend_class("llamacpp") is LlamaCppBackend
    assert backend_class("mock") is MockBackend


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nope'.*llamacpp"):
        backend_class("nope")


def test_register_a_third_party_backend() -> None:
    class Echo(Backend):
        name = "echo-test"

        async def generate(self, request: Request) -> Completion:
            return Completion(text=request.prompt or "", timing=Timing(wall_s=0.0))

    register_backend("echo-test", Echo)
    backend = open_backend(ModelSpec(name="e", backend="echo-test"))
    assert isinstance(backend, Echo)


def test_missing_sdk_gives_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import now fails
    with pytest.raises(BackendUnavailable, match=r"hainet\[llama\]"):
        LlamaCppBackend(ModelSpec(name="x", path="/nonexistent.gguf"))


async def test_mock_scripted_and_callable() -> None:
    scripted = MockBackend.scripted(["a", "b"])
    assert (await scripted.generate(Request(prompt="1"))).text == "a"
    assert (await scripted.generate(Request(prompt="2"))).text == "b"
    with pytest.raises(BackendError, match="ran out"):
        await scripted.generate(Request(prompt="3"))
    assert [r.prompt for r in scripted.requests] == ["1", "2", "3"]

    upper = MockBackend.from_function(lambda r: (r.prompt or "").upper())
    assert (await upper.generate(Request(prompt="hi"))).text == "HI"


def test_request_needs_exactly_one_of_prompt_or_messages() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Request()
