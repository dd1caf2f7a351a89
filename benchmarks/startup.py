"""How fast does a `hainet` command start?  Side by side with a bare Python.

Four commands, each in a fresh process, rounds interleaved so that a busy moment of
the machine hits every command alike:

- ``python -c pass``: the floor;
- ``hainet --help`` and ``hainet bench --help``: wall time to exit;
- ``hainet bench --models srv --suites reasoning --quick`` against a local
  OpenAI-compatible server: the time from the process's start to the first request
  the server receives (``GET /v1/models``, the model check) and to the first
  generation request (``POST``), and the wall time of the whole run;
- a plain client (the ``openai`` SDK, what a hand-written loop would use) started the
  same way: its time to the first ``POST``, the comparison for hainet's.

The server is a small one this benchmark runs in its own process: it answers the
OpenAI API with a fixed streamed reply and records when each request arrives
(``time.monotonic()``, one clock for every process of the machine). It measures the
client's start-up, not a model. The home is made once before the rounds (its store
migrated), as it is for anyone who has run hainet before.

    .venv/bin/python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "startup.json"
GOAL_FIRST_REQUEST_S = 0.5
BIN = Path(sys.executable).parent
TOKENS = ["The", " answer", " is", " 42", "."]

PLAIN_CLIENT = """
import sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="none")
for chunk in client.completions.create(model="srv", prompt="Q: 2+2?", max_tokens=8, stream=True):
    pass
"""


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.arrivals: list[tuple[float, str]] = []


class Handler(BaseHTTPRequestHandler):
    server: RecordingServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.arrivals.append((time.monotonic(), "GET"))
        if self.path.endswith("/arrivals"):  # the benchmark reads and clears the record
            body = json.dumps(self.server.arrivals[:-1]).encode()
            self.server.arrivals.clear()
            return self._send(body, "application/json")
        models = {"object": "list", "data": [{"id": "srv", "object": "model", "created": 0}]}
        self._send(json.dumps(models).encode(), "application/json")

    def do_POST(self) -> None:
        self.server.arrivals.append((time.monotonic(), "POST"))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        chunks = []
        for i, tok in enumerate(TOKENS):
            choice = {"index": 0, "text": tok, "finish_reason": "stop" if i == 4 else None}
            chunk = {"id": "c", "object": "text_completion", "created": 0, "model": "srv"}
            chunks.append(f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n")
        chunks.append("data: [DONE]\n\n")
        self._send("".join(chunks).encode(), "text/event-stream")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port: Connection) -> None:
    server = RecordingServer()
    port.send(server.server_address[1])
    server.serve_forever()


def arrivals(url: str) -> list[tuple[float, str]]:
    import httpx

    return [(t, m) for t, m in httpx.get(f"{url}/arrivals", timeout=10).json()]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(monotonic start, wall seconds) of one run of ``argv``."""
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr[-2000:]}")
    return start, wall


def first(events: list[tuple[float, str]], method: str, start: float) -> float:
    times = [t for t, m in events if m == method]
    if not times:
        raise SystemExit(f"the server saw no {method} request")
    return min(times) - start


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(values), 4),
        "min_s": round(min(values), 4),
        "max_s": round(max(values), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(theirs,))
    server.daemon = True
    server.start()
    url = f"http://127.0.0.1:{ours.recv()}/v1"
    home = Path(tempfile.mkdtemp(prefix="hainet-startup-"))
    env = {**os.environ, "HAINET_HOME": str(home)}
    hainet = str(BIN / "hainet")
    load_before = os.getloadavg()
    try:
        subprocess.run(
            [hainet, "models", "add", "srv", "--url", url, "--model", "srv"],
            env=env,
            check=True,
            capture_output=True,
        )
        bench = [hainet, "bench", "--models", "srv", "--suites", "reasoning", "--quick"]
        timed(bench, env)  # the home's store is created and migrated once
        arrivals(url)
        rows: dict[str, list[float]] = {
            k: []
            for k in (
                "python -c pass",
                "hainet --help",
                "hainet bench --help",
                "hainet bench: first request",
                "hainet bench: first POST",
                "hainet bench: whole run",
                "plain openai client: first POST",
            )
        }
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}", flush=True)
            rows["python -c pass"].append(timed([sys.executable, "-c", "pass"], env)[1])
            rows["hainet --help"].append(timed([hainet, "--help"], env)[1])
            rows["hainet bench --help"].append(timed([hainet, "bench", "--help"], env)[1])
            start, wall = timed(bench, env)
            seen = arrivals(url)
            rows["hainet bench: first request"].append(min(t for t, _ in seen) - start)
            rows["hainet bench: first POST"].append(first(seen, "POST", start))
            rows["hainet bench: whole run"].append(wall)
            start, _ = timed([sys.executable, "-c", PLAIN_CLIENT, url], env)
            rows["plain openai client: first POST"].append(first(arrivals(url), "POST", start))
    finally:
        server.terminate()
        server.join()
    table = {k: summary(v) for k, v in rows.items()}
    figure = table["hainet bench: first request"]["median_s"]
    from hainet.bench import hardware_fingerprint
    from hainet.config import atomic_write

    result: dict[str, Any] = {
        "name": "startup",
        "what": (
            "seconds from a command's process start to its exit (help) or to the first "
            "request a local OpenAI-compatible server receives (bench, 5 quick reasoning "
            f"cases); medians of {args.rounds} interleaved rounds, fresh processes, a "
            "home made once before"
        ),
        "figure": figure,
        "unit": "s",
        "baseline": table,
        "ratio": round(
            table["hainet bench: first POST"]["median_s"]
            / table["plain openai client: first POST"]["median_s"],
            3,
        ),
        "ratio_is": "hainet bench's first POST / the plain openai client's first POST",
        "goal": f"first request <= {GOAL_FIRST_REQUEST_S} s",
        "passed": figure <= GOAL_FIRST_REQUEST_S,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "machine": hardware_fingerprint(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(RESULTS, json.dumps(result, indent=2) + "\n")
    for k, v in table.items():
        print(f"{k:36} {v['median_s']:7.3f} s  [{v['min_s']:.3f} - {v['max_s']:.3f}]")
    print(json.dumps({k: result[k] for k in ("figure", "ratio", "goal", "passed")}))


if __name__ == "__main__":
    main()
