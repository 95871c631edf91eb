"""Every activity of deploy and teardown, delivered twice (the runtime's at-least-once), ends the same."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import function_app
from devhost.engine import collect
from shared import locks
from shared.platforms.local.processes import alive, read_pid
from shared.platforms.local.stack import Stack
from tests.integration.helpers import app_connection, archived_segments, cluster_state

pytestmark = pytest.mark.integration
SPEC = {"name": "it-twice", "namespace": "twice", "instances": 2, "sampleData": True,
        "backup": {"schedule": "0 15 * ? * *"}, "endpoints": {"enabled": True, "sourceRanges": ["10.1.0.0/16"]},
        "postgresql": {"parameters": {"shared_buffers": "32MB"}}}
NAMES = {"namespace": "twice", "name": "it-twice"}


def activity(name: str) -> Any:
    return collect(function_app.app).activities[name]


def twice(name: str, payload: Any) -> tuple[Any, Any]:
    call = activity(name)
    return call(payload), call(payload)


def patroni_pids(home: Path) -> list[int]:
    pids = [read_pid(p) for p in (home / "clusters" / "twice" / "it-twice" / "pids").glob("*.pid")]
    return sorted(p for p in pids if alive(p))


def test_deploy_and_teardown_activities_twice(devhost: Any, home: Path) -> None:
    Stack(home).up()
    first, second = twice("preflight_backup_destination", SPEC)
    assert first["outcome"] == second["outcome"] == "done"

    first, second = twice("ensure_namespace", SPEC)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")

    secret = home / "secrets" / "twice" / "db-user-pass"
    first = activity("ensure_app_secret")(SPEC)
    content = secret.read_text()
    second = activity("ensure_app_secret")(SPEC)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    assert secret.read_text() == content, "a second delivery must not rotate the password"
    assert "password" not in json.dumps([first, second])

    for name in ("configure_operator", "configure_monitoring", "ensure_backup_identity"):
        first, second = twice(name, SPEC)
        assert first == second and first["outcome"] == "skipped"

    first = activity("apply_cluster")(SPEC)
    pids = patroni_pids(home)
    ports = cluster_state(home, "it-twice", "twice")["members"]
    second = activity("apply_cluster")(SPEC)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    assert len(pids) == 2 and patroni_pids(home) == pids, "a second apply must not start members again"
    assert cluster_state(home, "it-twice", "twice")["members"] == ports

    status = activity("get_cluster_status")
    deadline = time.monotonic() + 120
    while not status(NAMES)["healthy"]:
        assert time.monotonic() < deadline, status(NAMES)
        time.sleep(0.5)

    first, second = twice("verify_monitoring", SPEC)
    assert first["outcome"] == second["outcome"] == "done"
    first, second = twice("load_sample_dataset", SPEC)
    assert first["data"]["count"] == second["data"]["count"] == 3
    with app_connection(home, "it-twice", "read-write", "twice") as conn:
        assert conn.execute("SELECT count(*) FROM datasample").fetchone()[0] == 3
    first, second = twice("check_replicas", SPEC)
    assert first == second and first["data"]["count"] == 3
    first, second = twice("check_wal_archiving", SPEC)
    assert first["outcome"] == second["outcome"] == "done"
    first, second = twice("ensure_scheduled_backup", SPEC)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    first, second = twice("expose_endpoints", SPEC)
    assert first == second and first["data"]["pgHba"] == ["host appdb all 10.1.0.0/16 scram-sha-256"]

    # teardown, each step twice
    first, second = twice("remove_endpoints", NAMES)
    assert first == second
    first, second = twice("remove_scheduled_backups", NAMES)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    first, second = twice("delete_cluster", NAMES)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    assert not any(alive(p) for p in pids)
    first, second = twice("delete_app_secret", SPEC)
    assert (first["outcome"], second["outcome"]) == ("done", "unchanged")
    first, second = twice("remove_backup_identity", SPEC)
    assert first == second
    assert archived_segments(home, "it-twice")
    first, second = twice("delete_backups", SPEC)
    assert first["data"]["deleted"] > 0 and second["data"]["deleted"] == 0
    assert archived_segments(home, "it-twice") == []

    report = {"operationId": "deploy-twice-it-twice-x", "runbook": "deploy_cluster", "cluster": NAMES,
              "status": "succeeded", "startedAt": "2026-01-01T00:00:00+00:00", "endedAt": None,
              "durationSeconds": None, "steps": [], "error": None}
    first, second = twice("store_report", report)
    assert first == second
    storage = Stack(home).require().connection_string
    assert locks.try_acquire(storage, "twice", "it-twice", "deploy-twice-it-twice-x", "deploy_cluster")
    first, second = twice("release_lock", {**NAMES, "operationId": "deploy-twice-it-twice-x"})
    assert (first, second) == (True, False)
    assert locks.holder(storage, "twice", "it-twice") is None
    assert locks.try_acquire(storage, "twice", "it-twice", "other-op", "deploy_cluster")
    assert activity("release_lock")({**NAMES, "operationId": "deploy-twice-it-twice-x"}) is False
    assert locks.holder(storage, "twice", "it-twice").operation_id == "other-op"  # someone else's lock stays
    assert locks.release(storage, "twice", "it-twice", "other-op")
