"""The issue's network test: 12 ``hainet hub serve`` processes on 127.0.0.1, each on
the DHT and gating on the real bundled model.

1. An agent pushed to one hub is validated by 10 others: ``validated``.
2. Another: 3 of its 10 validators are SIGKILLed once they accepted (mid-way); the
   7 left still give a verdict, or the origin honestly says ``pending``.
3. A third agent whose truth is 0.2 on the model, with 3 lying validators (DHT nodes
   run here with their own proven identities, their ids ground close to the
   version's target so that they are in its set) signing 1.0: the median moves by
   at most 0.05 and the 3 are flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from hainet.agents.spec import AgentSpec, parse_spec
from hainet.backends.catalog import BUNDLED_FILENAME
from hainet.hub.client import HubClient
from hainet.hub.validation import validation_key
from hainet.net.dht import DhtConfig, DhtNode, node_id_for
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_VALIDATION
from hainet.net.shares import HardwareClass
from hainet.net.validation import VALIDATION_TTL, epoch_of, validation_target

T = TypeVar("T")
pytestmark = [pytest.mark.slow, pytest.mark.model]

HUBS = 12
DHT_ENV = {"HAINET_DHT_KSIZE": "4", "HAINET_DHT_POW_BITS": "4", "HAINET_DHT_PER_PREFIX": "1000"}
# Ten validators gate at once on 2 cores: one llama.cpp thread each.  With two, each
# process's OpenMP team waits at every graph node's barrier for a thread the other
# nine processes keep off the cores, and no gate finished in 400 s.
ENV = DHT_ENV | {"HAINET_N_THREADS": "1"}
DHT = DhtConfig(ksize=4, pow_bits=4, per_prefix=1000)


def capitals(name: str, targets: dict[str, str]) -> dict[str, Any]:
    """A capital-trivia agent (examples/agents) with five gate cases."""
    return {
        "name": name,
        "version": "1.0.0",
        "purpose": "Name the capital city of a country.",
        "capabilities": ["knowledge"],
        "workflow": [
            {
                "id": "answer",
                "kind": "generate",
                "template": "{examples}Q: What is the capital of {input}?\nA:",
                "example_template": "Q: What is the capital of {input}?\nA: {output}\n\n",
                "examples": [
                    {"input": "Germany", "output": "Berlin"},
                    {"input": "Italy", "output": "Rome"},
                    {"input": "Kenya", "output": "Nairobi"},
                ],
                "max_tokens": 8,
                "stop": ["\n"],
                "parser": "first_line",
                "output": "city",
            }
        ],
        "output": "city",
        "tests": [{"id": c.lower(), "input": c, "target": t} for c, t in targets.items()],
    }


# The model names these five capitals (examples/agents/README.md: 7 of 10 right).
RIGHT = {"France": "Paris", "Japan": "Tokyo", "Canada": "Ottawa", "Egypt": "Cairo",
         "Norway": "Oslo"}  # fmt: skip
# One right target, four wrong ones: the truth is 0.2 on any honest validator.
MOSTLY_WRONG = {"France": "Paris", "Japan": "Kyoto", "Canada": "Toronto",
                "Egypt": "Alexandria", "Norway": "Bergen"}  # fmt: skip


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    url: str
    dht_port: int
    home: Path
    proc: subprocess.Popen[bytes]
    key_id: str = ""


def start_hub(root: Path, i: int, gguf: Path, bootstrap: int | None, **env: str) -> Proc:
    home = root / f"hub{i}"
    (home / "models").mkdir(parents=True)
    (home / "models" / BUNDLED_FILENAME).symlink_to(gguf)
    port, dht_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    cmd = [str(Path(sys.executable).parent / "hainet"), "hub", "serve", "--port", str(port)]
    cmd += ["--dht-port", str(dht_port)]
    if bootstrap is not None:
        cmd += ["--bootstrap", f"127.0.0.1:{bootstrap}"]
    full_env = dict(os.environ, HAINET_HOME=str(home), **ENV, **env)
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return Proc(f"http://127.0.0.1:{port}", dht_port, home, proc)


def wait_up(p: Proc, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise AssertionError((p.home / "serve.log").read_text()[-3000:])
        with contextlib.suppress(httpx.HTTPError):
            resp = httpx.get(f"{p.url}/.well-known/hainet-hub", timeout=5)
            if resp.status_code == 200:
                p.key_id = resp.json()["key_id"]
                return
        time.sleep(0.2)
    raise AssertionError(f"hub {p.url} did not start in {timeout} s")


class LoopThread:
    """An event loop in a thread, for the DHT nodes the test runs itself."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory, bundled_gguf: Path) -> Iterator[list[Proc]]:
    root = tmp_path_factory.mktemp("network")
    # The origin lists anything above 0.1, so the 0.2 agent reaches the network too;
    # the network's own bar stays 0.8 (net/validation.NETWORK_THRESHOLD).
    first = start_hub(root, 0, bundled_gguf, None, HAINET_PUBLISH_THRESHOLD="0.1")
    procs = [first]
    try:
        wait_up(first)
        procs += [start_hub(root, i, bundled_gguf, first.dht_port) for i in range(1, HUBS)]
        for p in procs[1:]:
            wait_up(p)
        yield procs
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(20)
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)


def authored(data: dict[str, Any], author: Identity) -> AgentSpec:
    return parse_spec(data | {"author": author.key_id}, source="test")


def push(origin: Proc, spec: AgentSpec, author: Identity) -> str:
    with HubClient(origin.url) as client:
        return str(client.push(spec, author)["id"])


def network(origin: Proc, agent_id: str) -> dict[str, Any] | None:
    try:
        resp = httpx.get(f"{origin.url}/v1/agents/{agent_id}/network", timeout=30)
    except httpx.TimeoutException:  # the origin is busy gating on 2 loaded cores
        return None
    return resp.json()["verdict"] if resp.status_code == 200 else None


def wait_verdict(origin: Proc, agent_id: str, done: Any, timeout: float = 400.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = network(origin, agent_id)
        if last is not None and done(last):
            return last
        time.sleep(0.5)
    raise AssertionError(f"no verdict in {timeout} s; last: {last}")


def own_rate(origin: Proc, agent_id: str) -> float:
    """The origin's own gate rate of the agent: the truth on this model."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        item = httpx.get(f"{origin.url}/v1/agents/{agent_id}/status", timeout=10).json()
        if item["state"] != "pending":
            assert item["state"] == "listed", item
            return float(item["success_rate"])
        time.sleep(0.5)
    raise AssertionError("the origin's gate did not finish")


def test_pushed_to_one_validated_by_ten_others(hubs: list[Proc], tmp_path: Path) -> None:
    origin, author = hubs[0], Identity.generate()
    agent_id = push(origin, authored(capitals("capitals-a", RIGHT), author), author)
    verdict = wait_verdict(origin, agent_id, lambda v: len(v["validations"]) == 10)
    assert verdict["status"] == "validated", verdict
    assert verdict["median"] == 1.0 and verdict["flagged"] == []
    assert set(verdict["validators"]) <= {p.key_id for p in hubs[1:]}
    assert {v["model_name"] for v in verdict["validations"]} == {"gemma-3-270m"}
    assert len({v["outcomes_sha256"] for v in verdict["validations"]}) == 1
    page = httpx.get(f"{origin.url}/agents/{agent_id}", timeout=10).text
    assert 'class="net-validated"' in page


def test_three_validators_killed_mid_way(hubs: list[Proc], tmp_path: Path) -> None:
    origin, author = hubs[0], Identity.generate()
    agent_id = push(origin, authored(capitals("capitals-c", RIGHT), author), author)
    # As soon as three members accepted the request, kill them (SIGKILL: no goodbye).
    by_key = {p.key_id: p for p in hubs}
    accepted = wait_verdict(
        origin,
        agent_id,
        lambda v: sum(r == "accepted" for r in v["requests"].values()) >= 3,
        timeout=120,
    )
    victims = [k for k, r in accepted["requests"].items() if r == "accepted"][:3]
    for k in victims:
        by_key[k].proc.send_signal(signal.SIGKILL)
    for k in victims:
        by_key[k].proc.wait(10)
    survivors = len(accepted["validators"]) - 3
    verdict = wait_verdict(
        origin, agent_id, lambda v: len(v["validations"]) >= survivors, timeout=400
    )
    counted = {v["key_id"] for v in verdict["validations"]}
    assert len(counted) >= 7
    assert verdict["status"] == "validated", verdict  # 7 (or more, if one was quick) arrive
    assert set(verdict["missing"]) == set(verdict["validators"]) - counted
    assert set(victims) - counted <= set(verdict["missing"])
    assert all(by_key[k].proc.poll() is not None for k in victims)


def test_three_liars_move_the_median_little_and_are_flagged(
    hubs: list[Proc], tmp_path: Path
) -> None:
    origin, author = hubs[0], Identity.generate()
    spec = authored(capitals("capitals-b", MOSTLY_WRONG), author)
    epoch = epoch_of()
    target = int.from_bytes(validation_target(spec.id, epoch), "big")
    # Liars grind keys until their node ids sit next to the version's target.
    pool = [Identity.generate() for _ in range(3000)]
    pool.sort(key=lambda i: int.from_bytes(node_id_for(i.key_id), "big") ^ target)
    liars = pool[:3]
    live = [p for p in hubs if p.proc.poll() is None]
    loop = LoopThread()
    nodes: list[DhtNode] = []
    try:
        for liar in liars:
            nodes.append(
                loop.call(
                    DhtNode.start(liar, bootstrap=[("127.0.0.1", live[1].dht_port)], config=DHT)
                )
            )
        agent_id = push(origin, spec, author)
        assert agent_id == spec.id
        truth = own_rate(origin, agent_id)
        assert truth == pytest.approx(0.2)
        for liar, node in zip(liars, nodes, strict=True):
            payload = {
                "spec_id": spec.id,
                "epoch": epoch,
                "origin": origin.key_id,
                "success_rate": 1.0,
                "passed": 5,
                "total": 5,
                "outcomes_sha256": "0" * 64,
                "model": "f" * 64,
                "model_name": "gemma-3-270m",
                "hardware": HardwareClass(cpu="liar", cores=64, ram_gib=512).model_dump(),
                "expires_at": int(time.time()) + VALIDATION_TTL,
            }
            rec = SignedRecord.create(liar, AGENT_VALIDATION, payload, time.time_ns() // 1000)
            loop.call(node.put(validation_key(spec.id), {"record": rec.model_dump(mode="json")}))
        liar_ids = {liar.key_id for liar in liars}
        verdict = wait_verdict(
            origin,
            agent_id,
            lambda v: len(v["validations"]) == len(v["validators"]),
            timeout=400,
        )
        assert liar_ids <= set(verdict["validators"]), "the liars are in the set"
        assert verdict["median"] is not None and abs(verdict["median"] - truth) <= 0.05
        assert set(verdict["flagged"]) == liar_ids
        assert verdict["status"] == "disputed" and "3 validator(s)" in verdict["reason"]
    finally:
        for node in nodes:
            loop.call(node.stop())
        loop.close()
