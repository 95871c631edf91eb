"""deploy_cluster for real: Patroni, PostgreSQL 15, etcd, barman-cloud and Azurite, driven over HTTP."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import reports
from shared.platforms.local.stack import Stack
from tests.conftest import follow, step
from tests.integration.helpers import (
    ServedDevhost,
    app_connection,
    app_password,
    archived_segments,
    cluster_state,
    superuser,
)

pytestmark = pytest.mark.integration
SPEC = {"name": "it-main", "instances": 3, "sampleData": True,
        "postgresql": {"parameters": {"shared_buffers": "64MB", "pg_stat_statements.max": "1000"}}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedDevhost]:
    with ServedDevhost(tmp_path_factory.mktemp("served")) as host:
        yield host


@pytest.fixture(scope="module")
def deployed(served: ServedDevhost) -> dict[str, Any]:
    """One real deploy over HTTP to `pgha serve` running as its own process."""
    with served.client() as api:
        started = api.post("/api/clusters", json=SPEC)
        assert started.status_code == 202, started.text
        second = api.post("/api/clusters", json=SPEC)
        done = follow(api, started.headers["Location"])
        final = api.get(started.headers["Location"])
        operation = started.json()["id"]
        history = api.get(f"/runtime/webhooks/durabletask/instances/{operation}",
                          params={"showHistory": "true", "showHistoryOutput": "true", "showInput": "true"})
    return {"started": started, "second": second, "done": done, "final": final, "id": operation,
            "instance": history.json()}


def test_deploy_answers_200_with_a_succeeded_report(deployed: dict[str, Any]) -> None:
    done = deployed["done"]
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["status"] == "succeeded"
    assert step(report, "wait ready")["outcome"] == "done"
    assert step(report, "operator config")["outcome"] == "skipped"
    assert "Azure-only" in step(report, "backup identity")["detail"]
    assert step(report, "verify monitoring")["outcome"] == "done"
    assert report["result"]["phase"] == "Cluster in healthy state"
    assert deployed["final"].status_code == 200  # a finished operation keeps answering 200


def test_second_post_while_running_is_409_with_the_status_link(deployed: dict[str, Any]) -> None:
    second = deployed["second"]
    assert second.status_code == 409, second.text
    body = second.json()
    assert body["code"] == "ClusterBusy"
    assert body["operationId"] == deployed["id"]
    assert second.headers["Location"] == deployed["started"].headers["Location"]


def test_three_members_one_primary_two_quorum_standbys(deployed: dict[str, Any], home: Path) -> None:
    members = cluster_state(home, "it-main")["members"]
    assert sorted(members) == ["it-main-1", "it-main-2", "it-main-3"]
    primaries = []
    for name, ports in members.items():
        with superuser(home, "it-main", ports["pgPort"]) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                primaries.append((name, ports["pgPort"]))
    assert len(primaries) == 1
    primary, port = primaries[0]
    with superuser(home, "it-main", port) as conn:
        names = conn.execute("SHOW synchronous_standby_names").fetchone()[0]
        replication = conn.execute(
            "SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY 1"
        ).fetchall()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        checksums = conn.execute("SHOW data_checksums").fetchone()[0]
    standbys = sorted(set(members) - {primary})
    assert re.fullmatch(r"ANY 1 \((.+)\)", names), names
    assert sorted(n.strip('"') for n in names[7:-1].split(",")) == standbys
    assert replication == [(s, "streaming", "quorum") for s in standbys]
    assert preload == "pg_stat_statements"  # loaded because one of its parameters is set, as CNPG does
    assert checksums == "on"


def test_sample_data_on_rw_and_ro(deployed: dict[str, Any], home: Path) -> None:
    with app_connection(home, "it-main", "read-write") as rw:
        assert rw.execute("SELECT pg_is_in_recovery(), count(*) FROM datasample").fetchone() == (False, 3)
        assert rw.execute("SELECT current_user, current_database()").fetchone() == ("app", "appdb")
    with app_connection(home, "it-main", "standby") as ro:
        assert ro.execute("SELECT pg_is_in_recovery(), count(*) FROM datasample").fetchone() == (True, 3)


def test_wal_of_this_cluster_is_in_azurite(deployed: dict[str, Any], home: Path) -> None:
    segments = [s for s in archived_segments(home, "it-main") if re.search(r"/[0-9A-F]{24}(\.\w+)?$", s)]
    assert segments, "no WAL segment of it-main in Azurite"
    assert all(s.startswith("it-main/wals/0000000100000000/") for s in segments)
    archived = step(deployed["done"].json(), "WAL archiving")["data"]["segment"]
    assert any(archived in s for s in segments)


def test_status_route_speaks_cnpg(deployed: dict[str, Any], served: ServedDevhost) -> None:
    api = served.client(timeout=30)
    body = api.get("/api/clusters/it-main").json()
    assert body["phase"] == "Cluster in healthy state"
    assert body["instances"] == body["readyInstances"] == 3
    assert body["currentPrimary"] == body["targetPrimary"]
    assert {i["role"] for i in body["instancesStatus"]} == {"primary", "standby"}
    assert body["conditions"][0]["type"] == "ContinuousArchiving"
    assert body["conditions"][0]["status"] == "True"
    assert api.get("/api/clusters/it-main?namespace=other").status_code == 404


def test_generated_password_is_nowhere_but_its_secret(deployed: dict[str, Any], served: ServedDevhost,
                                                      home: Path) -> None:
    password = app_password(home)
    secret_file = home / "secrets" / "default" / "db-user-pass"
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    operation = deployed["id"]

    instance = deployed["instance"]
    history = [json.dumps(event) for event in instance["historyEvents"]]
    assert any('"TaskScheduled"' in e and "ensure_app_secret" in e and '"Input"' in e for e in history)
    assert any('"TaskCompleted"' in e and "datasample holds 3 rows" in e for e in history)
    custom = json.dumps(instance["customStatus"]) + json.dumps(instance["input"]) + json.dumps(instance["output"])
    assert "stepsDone" in custom and "it-main" in custom
    output = served.output()
    assert "Executed 'Functions.ensure_app_secret' (Succeeded" in output  # the scan reads real host output
    storage = Stack(home).require().connection_string
    stored = reports.load(storage, operation)
    assert stored and stored["steps"]
    from shared import objectstore

    markdown = objectstore.container(storage, "reports").download_blob(
        f"{operation}.md").readall().decode()
    assert "| wait ready | done |" in markdown

    scanned = 0
    logs = 0
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != secret_file:
            data = path.read_bytes()
            scanned += 1
            logs += path.name.endswith(".log")
            assert password.encode() not in data, f"password found in {path}"
    assert scanned > 100 and logs >= 3  # data directories, configs, Patroni/PostgreSQL logs were read

    for source, text in {"history": "\n".join(history), "custom status": custom, "stdout/stderr": output,
                         "report": repr(stored) + markdown}.items():
        assert password not in text, f"password found in {source}"


def test_serve_stops_within_2s_of_sigterm_with_a_run_in_flight_and_logs_no_sdk_http(
    deployed: dict[str, Any], served: ServedDevhost
) -> None:
    """Last in this module: it stops the module's `pgha serve`. A verification is mid-run (its backup
    running); SIGTERM ends the process within 2 s all the same. Its output never carried the Azure SDK's
    HTTP request and response dumps (they show only with PGHA_LOG_LEVEL=debug)."""
    import time

    with served.client() as api:
        started = api.post(f"/api/clusters/{SPEC['name']}/backups", json={})
        assert started.status_code == 202, started.text
        time.sleep(1.5)
        assert api.get(started.headers["Location"]).status_code == 202, "still running when stopped"
    asked = time.monotonic()
    served.process.terminate()
    served.process.wait(timeout=10)
    took = time.monotonic() - asked
    assert took < 2.0, f"pgha serve took {took:.2f}s to stop"
    output = served.output()
    assert "Request URL:" not in output and "Response status:" not in output
    assert "stopping" in output
