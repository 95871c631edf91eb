"""Failover drills and planned switchovers on the real local stack: both drill modes, the pre-flight
refusals, the dry run; a switchover to the best standby and back to a named one."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from devhost.cli import main
from shared.platforms.local import processes
from shared.platforms.local.patroni import Member
from tests.browser import Browser, requires_chromium
from tests.conftest import follow, report_of, step
from tests.integration.helpers import app_connection, app_password, cluster_state

pytestmark = pytest.mark.integration
NS = "drill"
SPEC = {"name": "it-drill", "namespace": NS, "instances": 3, "drills": {"enabled": True},
        "postgresql": {"parameters": {"shared_buffers": "32MB"}}}
URL = f"/api/clusters/it-drill/drills/failover?namespace={NS}"
DRILLS: list[str] = []  # the drills this module ran, whose reports its page test opens
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def run(api: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    started = api.request(method, url, **kwargs)
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"])


def primary(api: httpx.Client) -> str:
    return api.get(f"/api/clusters/it-drill?namespace={NS}").json()["currentPrimary"]


def probe_tables(home: Path) -> list[str]:
    with app_connection(home, "it-drill", "read-write", NS) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'pgha_drill%'")]


@pytest.fixture(scope="module")
def cluster(devhost: Any) -> str:
    with devhost.client() as api:
        done = run(api, "POST", "/api/clusters", json=SPEC)
    assert done.status_code == 200, done.text
    return done.json()["result"]["currentPrimary"]


@pytest.mark.parametrize("mode", ["graceful", "crash"])
def test_drill_measures_rto_and_rpo_and_switches_back(api: httpx.Client, home: Path, cluster: str,
                                                      mode: str) -> None:
    original = primary(api)
    done = run(api, "POST", URL, json={"mode": mode})
    assert done.status_code == 200, done.text
    DRILLS.append(done.json()["operationId"])
    result = done.json()["result"]
    assert result["rpoLostWrites"] == 0
    assert result["failoverTo"] != original
    assert result["rolesBefore"][original] == "primary" and result["rolesAfter"][original] == "primary"
    assert result["rolesDuring"][result["failoverTo"]] == "primary"
    assert 0 < result["rtoSeconds"]["failover"] < 60 and 0 < result["rtoSeconds"]["switchback"] < 30
    assert result["probe"]["acknowledged"] > 50
    assert primary(api) == original
    assert step(done.json(), "standbys stay in sync")["outcome"] == "done"  # left as the next pre-flight wants
    assert probe_tables(home) == []  # the probe cleaned up after itself


def test_dry_run_touches_nothing(api: httpx.Client, home: Path, cluster: str) -> None:
    original = primary(api)
    done = run(api, "POST", URL, json={"dryRun": True, "mode": "crash"})
    assert done.status_code == 200, done.text
    planned = [s for s in done.json()["steps"] if s["outcome"] == "planned"]
    assert any("delete the primary (crash)" in s["name"] for s in planned)
    assert any("switch back" in s["name"] for s in planned)
    assert primary(api) == original
    assert probe_tables(home) == []


def test_switchover_to_the_best_standby_then_back_to_a_named_one(api: httpx.Client, home: Path,
                                                                 cluster: str) -> None:
    url = f"/api/clusters/it-drill/switchover?namespace={NS}"
    original = primary(api)
    done = run(api, "POST", url, json={})
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    assert result["from"] == original and result["to"] != original
    assert result["rolesBefore"][original] == "primary" and result["rolesBefore"][result["to"]] == "standby"
    assert result["rolesAfter"][result["to"]] == "primary" and result["rolesAfter"][original] == "standby"
    assert result["rpoLostWrites"] == 0 and result["probe"]["acknowledged"] > 20
    assert 0 < result["rtoSeconds"] < 30, result["probe"]["outages"]
    assert primary(api) == result["to"]
    assert probe_tables(home) == []
    # the run ends healthy: the old primary streams again as an in-sync standby, so a switchback is not refused
    rejoined = [step(report_of(done), name) for name in ("old primary rejoins", "old primary in sync")]
    assert all(s["outcome"] == "done" for s in rejoined), rejoined
    old = next(i for i in api.get(f"/api/clusters/it-drill?namespace={NS}").json()["instancesStatus"]
               if i["name"] == original)
    assert old["role"] == "standby" and old["ready"] and old["syncState"] in ("sync", "quorum"), old

    back = run(api, "POST", url, json={"target": original})
    assert back.status_code == 200, back.text
    assert back.json()["result"]["to"] == original and back.json()["result"]["rpoLostWrites"] == 0
    assert primary(api) == original

    refused = run(api, "POST", url, json={"target": original})  # the primary already: nothing to switch
    assert refused.status_code == 422
    refusal = step(report_of(refused), "pre-flight")
    assert refusal["outcome"] == "failed" and f"{original} is the primary already" in refusal["detail"]
    assert [s["name"] for s in report_of(refused)["steps"]] == ["read cluster spec", "pre-flight"]
    unknown = api.post(url, json={"target": "it-drill-9"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "target", unknown.text
    assert primary(api) == original


def test_refused_when_a_standby_is_down(api: httpx.Client, home: Path, cluster: str) -> None:
    original = primary(api)
    state = cluster_state(home, "it-drill", NS)
    standby = next(name for name in state["members"] if name != original)
    member = Member(standby, 0, 0, home / "clusters" / NS / "it-drill" / "members" / standby)
    processes.stop(member.patroni, timeout=30)
    try:
        done = run(api, "POST", URL, json={"mode": "graceful"})
        assert done.status_code == 422
        report = report_of(done)
        refusal = step(report, "pre-flight")
        assert refusal["outcome"] == "failed" and "drill refused" in refusal["detail"]
        assert standby in refusal["detail"]
        assert [s["name"] for s in report["steps"]] == ["read cluster spec", "pre-flight"]  # nothing touched
        assert primary(api) == original
    finally:
        processes.stop(member.postmaster, timeout=10, sig=signal.SIGINT)
        assert run(api, "POST", "/api/clusters", json=SPEC).status_code == 200  # re-applied: the member restarts


def test_refused_without_opt_in(api: httpx.Client, cluster: str) -> None:
    assert run(api, "POST", "/api/clusters", json={**SPEC, "drills": {"enabled": False}}).status_code == 200
    done = run(api, "POST", URL, json={})
    assert done.status_code == 422
    assert "not opted in" in step(report_of(done), "pre-flight")["detail"]
    assert api.post(URL, json={"mode": "sideways"}).status_code == 400


def test_the_cluster_says_how_to_connect_and_its_strings_reach_each_role(api: httpx.Client, home: Path,
                                                                         cluster: str) -> None:
    """GET /api/clusters/{name}: each role's libpq string (no password: the secret it names holds it)."""
    connection = api.get(f"/api/clusters/it-drill?namespace={NS}").json()["connection"]
    password = app_password(home, namespace=NS)
    assert connection["secretName"] and connection["user"] == "app" and password not in str(connection)
    for role, in_recovery in (("rw", False), ("ro", True)):
        with psycopg.connect(connection[role]["libpq"], password=password,
                             connect_timeout=5) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (in_recovery,), role


@requires_chromium
def test_a_drill_s_report_page_shows_its_outages_on_its_own_time_axis(devhost: Any, api: httpx.Client,
                                                                      tmp_path: Path) -> None:
    """The page of a drill run above, in Chromium: each outage band spans the seconds it is labelled with,
    measured against the axis' own ticks; the page asks nothing of any other origin; a screenshot is kept."""
    if not DRILLS:
        pytest.skip("no drill ran in this session")
    operation = DRILLS[-1]
    result = api.get(f"/api/operations/{operation}/report").json()["result"]
    url = f"{devhost.url}/api/operations/{operation}/report?format=html&code={devhost.key}"
    with Browser() as browser:
        page = browser.open(url)
        ticks = sorted((float(page.evaluate(f"document.querySelectorAll('#probe .tick')[{i}].dataset.seconds")),
                        page.rects("#probe .tick line")[i]["x"]) for i in range(len(page.rects("#probe .tick line"))))
        assert len(ticks) >= 3, ticks
        (s0, x0), (s1, x1) = ticks[0], ticks[-1]
        pixels_per_second = (x1 - x0) / (s1 - s0)
        bands = page.rects("#probe rect.outage")
        seconds = [float(page.evaluate(f"document.querySelectorAll('#probe rect.outage')[{i}].dataset.seconds"))
                   for i in range(len(bands))]
        assert bands and len(bands) == len(result["probe"]["outages"]), result["probe"]["outages"]
        for band, outage in zip(bands, seconds, strict=True):
            assert abs(band["width"] - outage * pixels_per_second) <= 3, (band, outage, pixels_per_second)
        assert max(seconds) == pytest.approx(max(result["rtoSeconds"].values()), abs=0.01)
        assert f"outage {max(seconds):g} s" in page.text("#probe") or any(
            f"outage {s:g} s" in page.text("#probe") for s in seconds)
        assert all(r.startswith(devhost.url) for r in page.requests), page.requests  # nothing from elsewhere
        shot = page.screenshot(tmp_path / "drill-report.png")
    if os.environ.get("PGHA_UPDATE_README") == "1":
        IMAGES.mkdir(exist_ok=True)
        shutil.copy(shot, IMAGES / "drill-report.png")
    assert shot.read_bytes().startswith(b"\x89PNG")
    # `pgha report ID --open` writes the same page for a browser, and prints where
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", operation, "--open", "--url", devhost.url]) == 0
    written = Path(out.getvalue().strip().splitlines()[-1])
    assert written.read_text().count("<svg") == 2 and devhost.key not in written.read_text()


@requires_chromium
def test_the_fleet_page_has_every_cluster_and_links_to_the_drill_s_report(devhost: Any, home: Path,
                                                                        tmp_path: Path) -> None:
    """GET /api/dashboard in Chromium: a row for every cluster on this devhost, the drill's link opening its
    report page, nothing asked of any other origin; a screenshot kept."""
    if not DRILLS:
        pytest.skip("no drill ran in this session")
    clusters = {f"{ns.name}/{c.name}" for ns in (home / "clusters").iterdir() if ns.is_dir()
                for c in ns.iterdir() if (c / "cluster.json").exists()}
    with Browser() as browser:
        page = browser.open(f"{devhost.url}/api/dashboard?code={devhost.key}")
        shown = set(page.evaluate("[...document.querySelectorAll('#fleet tr[data-cluster]')]"
                                  ".map(r => r.dataset.cluster)"))
        assert clusters and clusters <= shown, (clusters, shown)
        row = f"#fleet tr[data-cluster='{NS}/it-drill']"
        assert "it-drill-" in page.text(row)  # its primary and standbys
        href = page.evaluate(f"document.querySelector(\"{row} a[href*='failover-']\").href")
        assert devhost.key in href and "format=html" in href
        assert all(r.startswith(devhost.url) for r in page.requests), page.requests
        shot = page.screenshot(tmp_path / "fleet.png")
        report = browser.open(href)
        assert "failover_drill" in report.text("h1")
    if os.environ.get("PGHA_UPDATE_README") == "1":
        shutil.copy(shot, IMAGES / "fleet.png")
