"""Shared results: what a share holds (and never holds), the CLI, the hub's aggregates."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from hainet.cli import app
from hainet.errors import ValidationError
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import RESULT_SHARE, record_json
from hainet.net.shares import share_payload
from hainet.store import Run, Store
from tests.hub.conftest import HubUnderTest

cli = CliRunner()
SHA = "ab" * 32


def completed_run(home: Path, decode: float = 40.0, gpus: list[str] | None = None) -> Run:
    with Store(f"sqlite:///{home / 'hainet.db'}") as store:
        run = store.create_run(
            model_name="gemma-3-270m",
            backend="llamacpp",
            model={
                "name": "gemma-3-270m",
                "path": str(home / "secret-dir" / "m.gguf"),
                "sha256": SHA,
                "quantization": "Q4_K_M",
                "flash_attn": False,
            },
            params={"temperature": 0.0, "seed": 0},
            suites=["reasoning"],
            hardware={
                "cpu": "Intel Xeon 8488C",
                "cores_logical": 2,
                "ram_mb": 24_000,
                "gpus": gpus or [],
                "system": "Linux 6.1",
            },
        )
        summary = {
            "suites": {"reasoning": {"score": 0.5, "cases": 10, "scored": 10}},
            "capabilities": {"reasoning": {"score": 0.5, "cases": 10, "scored": 10}},
            "ttft_s": 0.1,
            "prefill_tps": 330.0,
            "decode_tps": decode,
        }
        return store.finish_run(run.id, "completed", summary=summary, peak_rss_mb=400.0)


def test_a_share_holds_the_summary_and_nothing_that_identifies(tmp_path: Path) -> None:
    run = completed_run(tmp_path, gpus=["GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1234-abcd)"])
    payload = share_payload(run)
    text = json.dumps(payload)
    assert payload["model"] == SHA and payload["quantization"] == "Q4_K_M"
    assert payload["capabilities"] == {"reasoning": 0.5} and payload["suite_cases"] == {
        "reasoning": 10
    }
    assert payload["hardware"] == {
        "cpu": "Intel Xeon 8488C",
        "cores": 2,
        "ram_gib": 16,
        "gpus": ["NVIDIA A100-SXM4-40GB"],
    }
    assert payload["day"] == run.created_at.date().isoformat() and "T" not in payload["day"]
    for secret in (
        str(tmp_path),
        "secret-dir",
        socket.gethostname(),
        getpass.getuser(),
        "UUID",
        run.id,
        "Linux 6.1",
    ):
        assert secret not in text, secret


def test_an_unfinished_run_is_not_shared(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        run = store.create_run(model_name="m", backend="mock", model={}, params={}, suites=["s"])
    with pytest.raises(ValidationError, match="only completed runs"):
        share_payload(run)


def test_dry_run_prints_the_signed_records_and_sends_nothing(tmp_path: Path) -> None:
    run = completed_run(tmp_path)
    res = cli.invoke(app, ["--home", str(tmp_path), "results", "share", run.id[:8], "--dry-run"])
    assert res.exit_code == 0, res.output
    rec = SignedRecord.model_validate(json.loads(res.output))
    rec.verify()
    assert rec.domain == RESULT_SHARE and rec.payload == share_payload(run) | {
        "expires_at": rec.payload["expires_at"]
    }


def share(home: Path, url: str, run: Run) -> Any:
    return cli.invoke(app, ["--home", str(home), "results", "share", run.id, "--hub", url])


def test_the_hub_aggregates_per_model_quantization_and_hardware_class(
    hub_server: HubUnderTest, tmp_path: Path
) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    for home, decode in ((alice, 30.0), (alice, 40.0), (bob, 50.0)):
        home.mkdir(exist_ok=True)
        res = share(home, hub_server.url, completed_run(home, decode))
        assert res.exit_code == 0 and "shared gemma-3-270m" in res.output, res.output
    (group,) = httpx.get(hub_server.url + "/v1/results").json()["items"]
    assert group["model"] == SHA and group["runs"] == 3 and group["signers"] == 2
    assert group["figures"]["decode_tps"] == {"median": 40.0, "min": 30.0, "max": 50.0, "n": 3}
    assert group["capabilities"]["reasoning"]["median"] == 0.5
    assert httpx.get(hub_server.url + "/v1/results", params={"model": "x"}).json()["items"] == []


def test_a_replayed_share_is_refused_and_a_newer_one_replaces(
    hub_server: HubUnderTest, tmp_path: Path
) -> None:
    me = Identity.generate()
    payload = share_payload(completed_run(tmp_path))

    def post(seq: int, **changes: Any) -> httpx.Response:
        rec = SignedRecord.create(me, RESULT_SHARE, payload | changes, seq)
        return httpx.post(hub_server.url + "/v1/results", content=record_json(rec))

    assert post(1).status_code == 201
    resp = post(1)
    assert resp.status_code == 400 and "replayed or older" in resp.json()["detail"]
    assert post(2, decode_tps=99.0).status_code == 201
    (group,) = httpx.get(hub_server.url + "/v1/results").json()["items"]
    assert group["runs"] == 1 and group["figures"]["decode_tps"]["median"] == 99.0
    bad = post(3, prompt="the user's secret prompt")
    assert bad.status_code == 400 and "payload.prompt" in bad.json()["detail"]
    bad = post(4, decode_tps=-1.0)
    assert bad.status_code == 400 and "decode_tps" in bad.json()["detail"]
