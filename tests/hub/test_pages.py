"""The hub's web pages against a real server: rendered by headless Chromium (search,
an agent's page with its lineage and gate report), escaped, and without JavaScript."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest

from hainet.agents.marketplace import RATING_DOMAIN, rating_payload
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_RATING, RESULT_SHARE, record_json
from tests.hub.conftest import HubUnderTest
from tests.hub.test_app import listed, post, signed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: Path, *args: str) -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: `make sysdeps` installs it (apt-get install chromium)")
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def populate(h: HubUnderTest) -> tuple[str, str]:
    me, fan = Identity.generate(), Identity.generate()
    first = post(h.url, signed(me)).json()["id"]
    second = post(h.url, signed(me, version="1.1.0", lineage=[first])).json()["id"]
    for agent_id in (first, second):
        assert listed(h, agent_id)["state"] == "listed"
    inner = fan.sign(RATING_DOMAIN, rating_payload(second, fan.key_id, 5, "very loud"))
    payload = {
        "agent_id": second,
        "stars": 5,
        "text": "very loud",
        "rating_signature": inner.hex(),
        "expires_at": int(time.time()) + 3600,
    }
    rec = SignedRecord.create(fan, AGENT_RATING, payload, 1)
    assert post(h.url, record_json(rec).encode(), f"/v1/agents/{second}/ratings").status_code == 201
    share = {
        "subject": "s1",
        "model": "ab" * 32,
        "model_name": "gemma-3-270m",
        "quantization": "Q4_K_M",
        "decode_tps": 38.5,
        "prefill_tps": 340.0,
        "ttft_s": 0.6,
        "peak_rss_mb": 401.0,
        "capabilities": {"reasoning": 0.25, "json_output": 0.75},
        "hardware": {"cpu": "Xeon", "cores": 2, "ram_gib": 16, "gpus": []},
        "day": "2026-12-01",
        "expires_at": int(time.time()) + 3600,
    }
    rec = SignedRecord.create(fan, RESULT_SHARE, share, 1)
    assert post(h.url, record_json(rec).encode(), "/v1/results").status_code == 201
    return first, second


def test_chromium_searches_and_opens_an_agents_page(
    hub_server: HubUnderTest, tmp_path: Path
) -> None:
    first, second = populate(hub_server)
    found = chromium(tmp_path, "--dump-dom", f"{hub_server.url}/?q={quote_plus('capital letters')}")
    assert 'id="search-summary"' in found and "<q>capital letters</q>" in found
    links = re.findall(r'class="agent-link" href="(/agents/[0-9a-f]{64})"', found)
    assert f"/agents/{second}" in links
    page = chromium(
        tmp_path, "--dump-dom", hub_server.url + links[links.index(f"/agents/{second}")]
    )
    lineage = page.split('id="lineage"')[1].split("</ul>")[0]
    assert f'href="/agents/{first}"' in lineage and "this version" in lineage
    gate = page.split('id="gate"')[1].split("</table>")[0]
    assert "upper" in gate and "1.000" in gate and "5/5" in gate
    assert "very loud" in page and 'class="state-listed"' in page
    board = chromium(tmp_path, "--dump-dom", hub_server.url + "/leaderboard")
    assert "Xeon / 2 cores / 16GiB / no gpu" in board and "38.50" in board
    assert "401.00" in board and "json_output 0.75" in board
    charts = re.findall(
        r'<img class="chart chart-(\w+)" src="data:image/png;base64,[^"]{200,}"', board
    )
    assert charts == ["speed", "memory", "capabilities"]
    missing = chromium(tmp_path, "--dump-dom", f"{hub_server.url}/agents/{'0' * 64}")
    assert "<h1>404 Not Found</h1>" in missing and "no agent 000000000000" in missing
    assert '<a href="/">back to the catalog</a>' in missing
    about = chromium(tmp_path, "--dump-dom", hub_server.url + "/hub")
    assert hub_server.hub.identity.key_id in about
    shot = tmp_path / "agent.png"
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1100,1400",
        f"{hub_server.url}/agents/{second}",
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pages_escape_what_others_wrote(hub_server: HubUnderTest) -> None:
    me = Identity.generate()
    evil = "<script>alert(1)</script> shout"
    agent_id = post(hub_server.url, signed(me, purpose=evil)).json()["id"]
    listed(hub_server, agent_id)
    for path in ("/", f"/agents/{agent_id}", "/?q=shout"):
        html = httpx.get(hub_server.url + path).text
        assert "<script>" not in html and "&lt;script&gt;" in html, path


def test_pages_need_no_javascript_and_unknown_agents_are_404(hub_server: HubUnderTest) -> None:
    for path in ("/", "/leaderboard", "/hub"):
        resp = httpx.get(hub_server.url + path)
        assert resp.status_code == 200 and "<script" not in resp.text
    assert httpx.get(hub_server.url + "/agents/" + "f" * 64).status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/agents/" + "f" * 64, 404, "no agent ffffffffffff on this hub"),
        ("/agents/not-an-id", 400, "not an agent id (64 lowercase hex): &#39;not-an-id&#39;"),
        ("/no/such/page", 404, "no page at /no/such/page on this hub"),
        ("/?q=" + "x" * 1001, 400, "bad request: q: String should have at most 1000 characters"),
        ("/?cursor=%21%21", 400, "cursor &#39;!!&#39; is not one this hub gave"),
    ],
)
def test_page_errors_are_html_pages_with_the_reason_and_a_way_back(
    hub_server: HubUnderTest, path: str, status: int, reason: str
) -> None:
    resp = httpx.get(hub_server.url + path)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("text/html")
    assert f"<h1>{status} " in resp.text and reason in resp.text
    assert '<a href="/">back to the catalog</a>' in resp.text and "<script" not in resp.text


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/v1/agents/" + "f" * 64 + "/status", 404, "no agent ffffffffffff on this hub"),
        ("/v1/agents/not-an-id", 400, "not an agent id"),
        ("/v1/no/such/endpoint", 404, "Not Found"),
        ("/v1/agents?cursor=%21%21", 400, "is not one this hub gave"),
    ],
)
def test_api_errors_stay_json(
    hub_server: HubUnderTest, path: str, status: int, detail: str
) -> None:
    resp = httpx.get(hub_server.url + path)
    assert resp.status_code == status and resp.headers["content-type"] == "application/json"
    assert detail in resp.json()["detail"]
    bad_query = httpx.get(hub_server.url + "/v1/agents?limit=0")
    assert bad_query.status_code == 422 and bad_query.json()["detail"][0]["loc"] == [
        "query",
        "limit",
    ]
