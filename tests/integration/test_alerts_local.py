"""The primary-unavailable playbook on the real local stack: automatic failover is off (Patroni in
maintenance mode, as a CNPG operator that is down) and the primary's PostgreSQL is stopped. pgha must
find the paused manager, resume it, and let Patroni bring a writable primary back by itself."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.platforms.local import processes
from shared.platforms.local.patroni import Member
from tests.alert_payloads import PROMETHEUS, alert
from tests.conftest import follow, step
from tests.integration.faults import record_fault
from tests.integration.helpers import app_connection, cluster_state, superuser

pytestmark = pytest.mark.integration
NS = "alerting"
NAME = "it-alert"
SPEC = {"name": NAME, "namespace": NS, "instances": 2, "synchronousReplicas": 1,
        "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


def members(home: Path) -> list[Member]:
    state = cluster_state(home, NAME, NS)
    base = home / "clusters" / NS / NAME / "members"
    return [Member(n, p["pgPort"], p["restPort"], base / n) for n, p in sorted(state["members"].items())]


def leader(home: Path) -> Member:
    topology = httpx.get(f"{members(home)[0].api}/cluster", timeout=5).json()
    name = next(m["name"] for m in topology["members"] if m["role"] == "leader")
    return next(m for m in members(home) if m.name == name)


def writes_work(home: Path) -> bool:
    try:
        with app_connection(home, NAME, "read-write", NS) as conn:
            conn.execute("SELECT txid_current()")
            conn.commit()
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="module")
def cluster(devhost: Any) -> None:
    with devhost.client() as api:
        started = api.post("/api/clusters", json=SPEC)
        assert started.status_code == 202, started.text
        assert follow(api, started.headers["Location"]).status_code == 200


def test_paused_ha_manager_is_resumed_and_the_primary_comes_back(
    api: httpx.Client, home: Path, cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHA_ALERT_GRACE_SECONDS", "3")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "90")
    primary = leader(home)
    paused = httpx.patch(f"{primary.api}/config", json={"pause": True}, timeout=5)
    assert paused.status_code == 200 and paused.json()["pause"] is True
    assert processes.stop(primary.postmaster, timeout=20, sig=signal.SIGINT)  # fast shutdown; nobody restarts it
    time.sleep(3)
    assert not writes_work(home), "with failover off and the primary stopped, nothing takes writes"

    started = api.post("/api/alerts", json=alert(PROMETHEUS, "it-primary-down", NAME, NS))
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"], timeout=180)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["result"]["outcome"] == "recovered", report
    assert "does not take writes" in step(report, "confirm")["detail"] or "no primary" in step(report, "confirm")[
        "detail"]
    assert step(report, "grace period for the HA manager")["outcome"] == "timed out"
    assert "paused" in step(report, "check the HA manager")["detail"]
    assert "resumed Patroni" in step(report, "restore the HA manager")["detail"]
    assert step(report, "wait for a writable primary")["outcome"] == "done"
    assert writes_work(home)
    assert httpx.get(f"{primary.api}/config", timeout=5).json().get("pause") in (None, False)
    markdown = api.get(f"/api/operations/{report['operationId']}/report", params={"format": "markdown"}).text
    assert "restore the HA manager" in markdown and "recovered" in markdown


def test_archiving_failing_waits_for_archiving_then_takes_a_backup(
    api: httpx.Client, home: Path, cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archiving broken as PostgreSQL sees it (its archive_command fails), then repaired while the
    response waits: it diagnoses, waits for archiving to work again, and takes a backup."""
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    primary = leader(home)
    with superuser(home, NAME, primary.pg_port, NS) as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'false'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)
        conn.execute("SELECT pg_logical_emit_message(false, 'pgha-test', 'x')")
        conn.execute("SELECT pg_switch_wal()")
    deadline = time.monotonic() + 30
    while api.get(f"/api/clusters/{NAME}", params={"namespace": NS}).json()["conditions"][0]["status"] != "False":
        assert time.monotonic() < deadline, "archiving never failed"
        time.sleep(0.5)
    body = alert(PROMETHEUS, "it-archiving", NAME, NS)
    body["data"]["essentials"]["alertRule"] = "CNPGClusterWALArchivingFailing"
    body["data"]["alertContext"]["labels"]["alertname"] = "CNPGClusterWALArchivingFailing"
    body["data"]["alertContext"]["expression"] = "cnpg_pg_stat_archiver_seconds_since_last_failure < 300"
    started = api.post("/api/alerts", json=body)
    assert started.status_code == 202 and started.json()["playbook"] == "walArchivingFailing", started.text
    location = started.headers["Location"]
    deadline = time.monotonic() + 60
    while (api.get(location).json().get("customStatus") or {}).get("step") != "wait for archiving to work again":
        assert time.monotonic() < deadline, "the response never waited for archiving"
        time.sleep(0.2)
    with superuser(home, NAME, primary.pg_port, NS) as conn:  # the storage is back
        conn.execute("ALTER SYSTEM RESET archive_command")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)
        conn.execute("SELECT pg_switch_wal()")
    done = follow(api, location, timeout=240)
    assert done.status_code == 200, done.text
    report = done.json()
    assert "ContinuousArchiving False" in step(report, "diagnose archiving")["detail"]
    assert "answers" in step(report, "diagnose archiving")["detail"]  # the object store itself is reachable
    errors = step(report, "diagnose archiving")["data"]["recentErrors"]
    assert errors and "archive command failed" in errors[-1], errors
    assert step(report, "wait for archiving to work again")["outcome"] == "done"
    assert report["result"]["backup"]["phase"] == "completed"
    assert report["result"]["outcome"] == "recovered" and report["result"]["action"] == "take a backup"


def test_an_activity_that_raises_fails_the_response_with_its_reason(
    api: httpx.Client, home: Path, cluster: None
) -> None:
    """A fault inside an activity: the cluster's internal passwords file is gone, so every activity that asks
    the primary for its status raises. The response ends failed, quoting the error, after its retries."""
    passwords = home / "clusters" / NS / NAME / "internal-passwords.json"
    hidden = passwords.with_name("hidden-passwords.json")
    passwords.rename(hidden)
    try:
        started = api.post("/api/alerts", json=alert(PROMETHEUS, "it-raises", NAME, NS))
        assert started.status_code == 202, started.text
        begun = time.monotonic()
        done = follow(api, started.headers["Location"], timeout=120)
        took = time.monotonic() - begun
    finally:
        hidden.rename(passwords)
    assert done.status_code == 422, done.text
    report = done.json()["report"]
    failed = step(report, "confirm")
    assert failed["outcome"] == "failed" and "internal-passwords.json" in failed["detail"], failed
    assert report["result"]["outcome"] == "failed"
    assert took < 30, took
    record_fault("respond_to_alert", "an activity raises (the cluster's internal passwords file removed)",
                 "failed at confirm quoting the error, after 3 attempts", took)
    assert writes_work(home)
