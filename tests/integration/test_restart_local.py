"""Runs survive a devhost crash: `pgha serve` SIGKILLed at a chosen step and started again on the same task
hub resumes a deploy where it was, and ends a drill as interrupted, compensated."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import locks
from shared.platforms.local.stack import Stack
from tests.alert_payloads import PROMETHEUS, alert
from tests.conftest import at_step, follow, report_of, step
from tests.integration.helpers import ServedDevhost, app_connection
from tests.receiver import Receiver

pytestmark = pytest.mark.integration
NS = "restart"
SPEC = {"name": "it-crash", "namespace": NS, "instances": 2, "synchronousReplicas": 1,
        "drills": {"enabled": True}, "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDevhost]:
    with ServedDevhost(tmp_path_factory.mktemp("restart"), hub="restart",
                       env={"PGHA_ALERT_POLICY": "backupStale=approval"}) as host:
        yield host


def crash_and_restart(served: ServedDevhost) -> float:
    served.kill()
    started = time.monotonic()
    served.start()
    return time.monotonic() - started


def test_a_deploy_resumes_after_the_devhost_is_killed(served: ServedDevhost, home: Path) -> None:
    with served.client(timeout=30) as api:
        started = api.post("/api/clusters", json=SPEC)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        at_step(api, location, "wait ready")
        restart = crash_and_restart(served)
        answer = api.get(location)
        assert answer.status_code == 202, answer.text  # its true state: still running, never a 404
        storage = Stack(home).require().connection_string
        held = locks.holder(storage, NS, "it-crash")
        assert held is not None and held.operation_id == started.json()["id"], "the resumed run keeps its lock"
        assert api.post("/api/clusters", json=SPEC).status_code == 409  # and a second deploy still waits
        done = follow(api, location)
        assert done.status_code == 200, done.text
        report = done.json()
        assert report["status"] == "succeeded" and step(report, "wait ready")["outcome"] == "done"
        assert [s["name"] for s in report["steps"]].count("apply cluster") == 1  # resumed, not started over
        assert api.get(f"/api/clusters/it-crash?namespace={NS}").json()["phase"] == "Cluster in healthy state"
        assert locks.holder(storage, NS, "it-crash") is None
    assert restart < 30, restart
    assert f"picked up after a restart: {started.json()['id']}" in served.output()


def test_a_drill_killed_mid_failover_ends_interrupted_with_the_original_primary_back(
    served: ServedDevhost, home: Path
) -> None:
    with served.client(timeout=30) as api:
        original = api.get(f"/api/clusters/it-crash?namespace={NS}").json()["currentPrimary"]
        started = api.post(f"/api/clusters/it-crash/drills/failover?namespace={NS}", json={"mode": "graceful"})
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        at_step(api, location, "old primary rejoins")
        crash_and_restart(served)
        done = follow(api, location, timeout=240)
        assert done.status_code == 422, done.text
        report = report_of(done)
        assert report["status"] == "failed" and "interrupted by a host restart" in report["error"], report["error"]
        outcomes = [(s["name"], s["outcome"]) for s in report["steps"]]
        interrupted = [n for n, (_, outcome) in enumerate(outcomes) if outcome == "interrupted"]
        assert len(interrupted) == 1, outcomes  # the step the crash left open, and nothing after it ran blind
        assert outcomes[interrupted[0]][0] in ("old primary rejoins", "switch back", "original primary back",
                                            "standbys in sync", "standbys settle", "standbys stay in sync")
        assert ("switch back", "done") not in outcomes[interrupted[0]:], outcomes
        assert step(report, "put the original primary back")["outcome"] in ("done", "skipped")
        assert step(report, "drop probe")["outcome"] == "done"
        assert report["result"]["leftWith"].startswith("phase 'Cluster in healthy state'")
        assert locks.holder(Stack(home).require().connection_string, NS, "it-crash") is None  # released
        status = api.get(f"/api/clusters/it-crash?namespace={NS}").json()
        assert status["currentPrimary"] == original and status["phase"] == "Cluster in healthy state"
        with app_connection(home, "it-crash", "read-write", NS) as conn:
            probes = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pgha_%'").fetchone()[0]
        assert probes == 0


def test_a_verification_killed_during_its_restore_test_resumes_and_removes_the_restore(
    served: ServedDevhost, home: Path
) -> None:
    receiver = Receiver()
    try:
        with served.client(timeout=30) as api:
            started = api.post(f"/api/clusters/it-crash/backups?namespace={NS}", json={
                "restoreTest": True, "callbackUrl": f"{receiver.url}/logic-app/callback"})
            assert started.status_code == 202, started.text
            at_step(api, f"/api/operations/{started.json()['id']}-restore", "wait ready")
            crash_and_restart(served)
            done = follow(api, started.headers["Location"])
            assert done.status_code == 200, done.text
            assert done.json()["result"]["restoreTest"]["checks"][0]["ok"]
        (posted,) = receiver.wait_for(1)
        time.sleep(2.0)
        assert len(receiver.bodies) == 1, "the callback owed is delivered once"
        assert posted["operationId"] == started.json()["id"] and posted["status"] == "succeeded"
    finally:
        receiver.shutdown()
    assert sorted(p.name for p in (home / "clusters" / NS).iterdir()) == ["it-crash"]  # the restore is gone


def test_an_alert_response_waiting_for_approval_still_waits_and_honours_it(served: ServedDevhost) -> None:
    body = alert(PROMETHEUS, "it-restart-stale", "it-crash", NS)
    body["data"]["essentials"]["alertRule"] = "CNPGClusterLastBackupTooOld"
    body["data"]["alertContext"]["labels"]["alertname"] = "CNPGClusterLastBackupTooOld"
    with served.client(timeout=30) as api:
        started = api.post("/api/alerts", json=body)
        assert started.status_code == 202 and started.json()["playbook"] == "backupStale", started.text
        location = started.headers["Location"]
        deadline = time.monotonic() + 30
        while not (api.get(location).json().get("customStatus") or {}).get("pendingApproval"):
            assert time.monotonic() < deadline, "the response never asked for an approval"
            time.sleep(0.2)
        crash_and_restart(served)
        assert (api.get(location).json().get("customStatus") or {}).get("pendingApproval"), "still waiting"
        again = api.post("/api/alerts", json=body)  # Azure Monitor's retry: the same run, by its claim
        assert again.status_code == 202 and again.headers["Location"] == location, again.text
        assert api.post(f"{location}/approve", json={"by": "oncall@example.com"}).status_code == 202
        done = follow(api, location)
        assert done.status_code == 200, done.text
        assert step(done.json(), "approval")["outcome"] == "approved"
        assert done.json()["result"]["outcome"] == "recovered"


def test_a_teardown_killed_midway_resumes_and_leaves_nothing(served: ServedDevhost, home: Path) -> None:
    with served.client(timeout=30) as api:
        location = api.delete(f"/api/clusters/it-crash?namespace={NS}&deleteBackups=true").headers["Location"]
        at_step(api, location, "remove endpoints", "remove scheduled backups", "delete cluster", "volumes released")
        crash_and_restart(served)
        teardown = follow(api, location)
        assert teardown.status_code == 200, teardown.text
        assert teardown.json()["status"] == "succeeded"
    assert not (home / "clusters" / NS / "it-crash").exists()
