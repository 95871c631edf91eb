"""Faults injected mid-run on the real local stack: each run ends in a failed report, quickly, saying why, with
nothing half-made left behind and no acknowledged write lost. (Restore and backup faults live beside their
cluster in test_backups_local.py, the alert fault in test_alerts_local.py.) Each records its row of the
fault table (tests/integration/faults.py)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from shared.platforms.local import processes
from shared.platforms.local.patroni import Member
from shared.platforms.local.stack import Stack
from tests.conftest import at_step, follow, report_of, start, step
from tests.integration.faults import record_fault
from tests.integration.helpers import (
    ServedDevhost,
    app_connection,
    archived_segments,
    processes_under,
    until_healthy,
    wait_for_member,
)

pytestmark = pytest.mark.integration
NS = "fault"
SMALL = {"namespace": NS, "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


def test_a_member_killed_during_a_deploy_fails_it_and_compensation_removes_everything(
    api: httpx.Client, home: Path
) -> None:
    spec = {"name": "it-fault", **SMALL, "instances": 2, "synchronousReplicas": 1}
    location = start(api, "POST", "/api/clusters", json=spec)
    name, where = wait_for_member(home, NS, "it-fault")
    at_step(api, location, "wait ready", timeout=60)
    member = Member(f"{name}-1", 0, 0, where / "members" / f"{name}-1")
    processes.stop_all([member.patroni, member.postmaster], timeout=5, sig=signal.SIGKILL)
    killed = time.monotonic()
    done = follow(api, location)
    took = time.monotonic() - killed
    assert done.status_code == 422, done.text
    report = report_of(done)
    failed = step(report, "wait ready")
    assert failed["outcome"] == "failed" and "instance it-fault-1: Patroni has exited" in failed["detail"], failed
    assert step(report, "delete cluster")["outcome"] == "done"
    assert step(report, "delete backups")["outcome"] == "done"
    assert took < 60, took
    assert not where.exists() and processes_under(where) == []
    assert not (home / "secrets" / NS / "db-user-pass").exists()  # the secret this run made went with it
    assert archived_segments(home, "it-fault") == []
    record_fault("deploy_cluster", "the first member (Patroni and PostgreSQL) killed during wait ready",
                 "failed at wait ready; compensation removed cluster, secret and archive", took)


def test_teardown_with_the_state_store_down_is_answered_503_at_once_and_removes_nothing(
    api: httpx.Client, home: Path
) -> None:
    """Locally Azurite holds pgha's own state (locks, reports) as well as the backups: with it down, a teardown
    cannot take the cluster's lock. It is answered 503 in seconds (the Azure SDK's default retries held the
    request for minutes), and nothing is touched; once Azurite is back the same request tears down."""
    spec = {"name": "it-gone", **SMALL, "instances": 1, "synchronousReplicas": 0}
    assert follow(api, start(api, "POST", "/api/clusters", json=spec)).status_code == 200
    stack = Stack(home)
    processes.stop(stack.daemon("azurite"), timeout=10)
    stopped = time.monotonic()
    try:
        refused = api.delete(f"/api/clusters/it-gone?namespace={NS}&deleteBackups=true", timeout=60)
        took = time.monotonic() - stopped
    finally:
        stack.up()  # Azurite alone comes back, on its port
    assert refused.status_code == 503 and refused.json()["code"] == "Unavailable", refused.text
    assert took < 30, took
    assert api.get(f"/api/clusters/it-gone?namespace={NS}").json()["phase"] == "Cluster in healthy state"
    record_fault("teardown_cluster", "Azurite (locks, reports and backups) stopped, then a teardown asked",
                 "503 Unavailable at the door; nothing removed", took)
    again = follow(api, start(api, "DELETE", f"/api/clusters/it-gone?namespace={NS}&deleteBackups=true"))
    assert again.status_code == 200, again.text
    assert not (home / "clusters" / NS / "it-gone").exists() and archived_segments(home, "it-gone") == []


# ---- etcd stopped: every local cluster shares one etcd, so this one runs on a stack of its own ----------------
@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDevhost]:
    home = Path(tempfile.mkdtemp(prefix="pgha-own-", dir="/tmp"))
    os.chmod(home, 0o755)  # the service user running PostgreSQL must traverse it
    with ServedDevhost(tmp_path_factory.mktemp("own-logs"), home=home) as host:
        try:
            yield host
        finally:
            host.down()
            left = processes_under(home)
            shutil.rmtree(home, ignore_errors=True)
            assert left == [], left


def test_etcd_stopped_at_a_drills_preflight_refuses_it_and_loses_no_acknowledged_write(
    own: ServedDevhost
) -> None:
    spec = {"name": "it-own", "namespace": "default", "instances": 2, "synchronousReplicas": 1,
            "drills": {"enabled": True}, "postgresql": {"parameters": {"shared_buffers": "32MB"}}}
    with own.client(timeout=30) as api:
        deployed = follow(api, start(api, "POST", "/api/clusters", json=spec))
        assert deployed.status_code == 200, deployed.text
        acknowledged: list[int] = []
        stop = threading.Event()

        def write() -> None:
            n = 0
            while not stop.is_set():
                try:
                    with app_connection(own.home, "it-own", "read-write") as conn:
                        conn.execute("CREATE TABLE IF NOT EXISTS acked (n int PRIMARY KEY)")
                        conn.commit()
                        while not stop.is_set():
                            n += 1
                            conn.execute("INSERT INTO acked VALUES (%s)", (n,))
                            conn.commit()
                            acknowledged.append(n)  # only after the commit returned
                            time.sleep(0.02)
                except psycopg.Error:
                    time.sleep(0.2)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        stack = Stack(own.home)
        try:
            time.sleep(1.0)
            processes.stop(stack.daemon("etcd"), timeout=10)
            stopped = time.monotonic()
            try:
                done = follow(api, start(api, "POST", "/api/clusters/it-own/drills/failover",
                                         json={"mode": "crash"}))
                took = time.monotonic() - stopped
            finally:
                stack.up()  # etcd alone comes back, with its data (for the next test too, should this one fail)
            until_healthy(api, "it-own")
            time.sleep(1.0)  # writes go on through the healed cluster
        finally:
            stop.set()
            writer.join(15)
        assert done.status_code == 422, done.text
        report = report_of(done)
        refusal = step(report, "pre-flight")
        assert refusal["outcome"] == "failed" and "drill refused" in refusal["detail"], refusal
        assert "etcd" in refusal["detail"], refusal
        assert [s["name"] for s in report["steps"]][-1] == "pre-flight"  # no primary was deleted
        assert took < 30, took
        assert not writer.is_alive()
        stored = read_acked(own.home)
        lost = [n for n in acknowledged if n not in stored]
        assert acknowledged and lost == [], f"{len(lost)} acknowledged write(s) lost"
        record_fault("failover_drill", "etcd stopped (own stack) before the drill's pre-flight",
                     f"refused at pre-flight naming etcd; 0 of {len(acknowledged)} acknowledged writes lost", took)


def read_acked(home: Path) -> set[int]:
    """The rows as the primary has them, once there is one again (Patroni may settle a moment after etcd)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with app_connection(home, "it-own", "read-write") as conn:
                return {row[0] for row in conn.execute("SELECT n FROM acked")}
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "no writable primary 60 s after etcd came back"
            time.sleep(1)


def test_etcd_stopped_refuses_a_teardown_naming_etcd_and_a_second_teardown_finishes(
    own: ServedDevhost
) -> None:
    with own.client(timeout=30) as api:
        stack = Stack(own.home)
        processes.stop(stack.daemon("etcd"), timeout=10)
        stopped = time.monotonic()
        try:
            done = follow(api, start(api, "DELETE", "/api/clusters/it-own?deleteBackups=true"))
            took = time.monotonic() - stopped
        finally:
            stack.up()
        assert done.status_code == 422, done.text
        report = report_of(done)
        refusal = step(report, "pre-flight")
        assert refusal["outcome"] == "failed" and "etcd" in refusal["detail"], refusal
        assert [s["name"] for s in report["steps"]] == ["read cluster spec", "pre-flight"]  # nothing removed
        assert took < 30, took
        where = own.home / "clusters" / "default" / "it-own"
        assert processes_under(where), "the cluster's members still run"
        record_fault("teardown_cluster", "etcd stopped (own stack), then a teardown asked",
                     "refused at pre-flight naming etcd; nothing removed", took)
        again = follow(api, start(api, "DELETE", "/api/clusters/it-own?deleteBackups=true"))
        assert again.status_code == 200, again.text
        assert not where.exists()
