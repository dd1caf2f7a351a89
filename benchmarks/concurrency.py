"""Does hainet keep a slow OpenAI-compatible server busy?  Achieved vs ideal throughput.

The benchmark starts its own server on 127.0.0.1 that answers every completion after
a fixed latency (streaming a few tokens), then runs hainet's async bench path —
``run_loaded`` with the ``openai`` backend, per-server limit N, scoring and a store
write per case — for N = 1, 4, 16.  Ideal throughput is N / latency requests per
second; the figure is the worst achieved/ideal ratio over the three N.

    .venv/bin/python benchmarks/concurrency.py [--latency 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

from hainet.backends.openai import OpenAIBackend
from hainet.bench import BenchContext, BenchOptions, hardware_fingerprint, run_loaded
from hainet.config import atomic_write, home_dir
from hainet.store import Store
from hainet.suites import Case, Suite
from hainet.types import GenerationParams, ModelSpec, Request, RunConfig

RESULTS = Path(__file__).parent / "results" / "concurrency.json"
GOAL = 0.9
TOKENS = ["The", " answer", " is", " 42", "."]


class SlowServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, latency: float) -> None:
        self.latency = latency
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK (~40 ms), which would be the server's fault.
    disable_nagle_algorithm = True
    server: SlowServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "object": "list",
                "data": [{"id": "slow", "object": "model", "created": 0, "owned_by": "bench"}],
            }
        )
        self._send(200, body.encode(), "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.server.latency)  # the model "thinks"; other threads go on
        chunks = []
        for i, tok in enumerate(TOKENS):
            last = i == len(TOKENS) - 1
            chunk = {
                "id": "c",
                "object": "text_completion",
                "created": 0,
                "model": "slow",
                "choices": [{"index": 0, "text": tok, "finish_reason": "stop" if last else None}],
            }
            chunks.append(f"data: {json.dumps(chunk)}\n\n")
        chunks.append("data: [DONE]\n\n")
        self._send(200, "".join(chunks).encode(), "text/event-stream")

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def suite(n_cases: int) -> Suite:
    return Suite(
        name="concurrency",
        version="1",
        capability="reasoning",
        scorer="regex",
        max_tokens=8,
        cases=[
            Case(id=f"c{i}", input=f"Question {i}?", options={"pattern": "42"})
            for i in range(n_cases)
        ],
    )


async def measure(url: str, n: int, n_cases: int, store: Store) -> float:
    backend = OpenAIBackend(ModelSpec(name="slow", backend="openai", url=url, model="slow"))
    try:
        # Warm up: the model check and the first connection are not throughput.
        await backend.generate(Request(prompt="warm up", params=GenerationParams(max_tokens=4)))
        start = time.perf_counter()
        options = BenchOptions()
        ctx = BenchContext(store, home_dir(), options.result, options.execution, [suite(n_cases)])
        run = await run_loaded(
            backend, RunConfig(model=backend.spec), ctx, gate=asyncio.Semaphore(n)
        )
        elapsed = time.perf_counter() - start
    finally:
        await backend.aclose()
    scored = run.summary["suites"]["concurrency"]
    if run.status != "completed" or scored["scored"] != n_cases or scored["score"] != 1.0:
        raise SystemExit(f"N={n}: the run did not score every case: {run.summary}")
    return n_cases / elapsed


def serve(latency: float, port: Connection) -> None:
    server = SlowServer(latency)
    port.send(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    # The server runs in its own process, as a real one would: in this process its
    # threads would compete with hainet's event loop for the GIL.
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(args.latency, theirs), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{ours.recv()}/v1"
    work = Path(tempfile.mkdtemp(prefix="hainet-concurrency-"))
    store = Store(f"sqlite:///{work / 'bench.db'}")
    rows = {}
    try:
        for n in (1, 4, 16):
            n_cases = max(16, 8 * n)  # eight waves of N requests: ramp-up amortized
            achieved = asyncio.run(measure(url, n, n_cases, store))
            ideal = n / args.latency
            rows[str(n)] = {
                "achieved_rps": round(achieved, 3),
                "ideal_rps": round(ideal, 3),
                "ratio": round(achieved / ideal, 4),
                "cases": n_cases,
            }
            print(
                f"N={n:>2}: {achieved:6.2f} req/s of ideal {ideal:6.2f} ({achieved / ideal:.1%})",
                flush=True,
            )
    finally:
        server.terminate()
        server.join()
    worst = min(r["ratio"] for r in rows.values())
    result = {
        "name": "concurrency",
        "what": (
            f"hainet's async bench path (openai backend, per-server limit N, scoring and "
            f"a store write per case) against a local server with {args.latency} s fixed "
            f"latency per request: achieved / ideal (N / latency) throughput, worst of "
            f"N = 1, 4, 16"
        ),
        "figure": worst,
        "unit": "ratio",
        "baseline": rows,
        "ratio": worst,
        "goal": f">= {GOAL}",
        "passed": worst >= GOAL,
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("figure", "goal", "passed")}))


if __name__ == "__main__":
    main()
