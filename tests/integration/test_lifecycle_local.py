"""Teardown, the archive pre-flight on redeploy, and bad input — on the real local stack."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import follow, report_of, step
from tests.integration.helpers import app_connection, archived_segments

pytestmark = pytest.mark.integration
SMALL = {"namespace": "life", "instances": 2, "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


def run(api: httpx.Client, method: str, url: str, **kwargs: object) -> httpx.Response:
    started = api.request(method, url, **kwargs)  # type: ignore[arg-type]
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"])


def test_teardown_keeps_backups_and_the_preflight_names_both_fixes(api: httpx.Client, home: Path) -> None:
    assert run(api, "POST", "/api/clusters", json={"name": "it-life", **SMALL}).status_code == 200
    assert archived_segments(home, "it-life")

    kept = run(api, "DELETE", "/api/clusters/it-life?namespace=life")
    assert kept.status_code == 200
    assert step(kept.json(), "delete backups")["outcome"] == "skipped"
    assert not (home / "clusters" / "life" / "it-life").exists()
    assert not (home / "secrets" / "life" / "db-user-pass").exists()
    assert archived_segments(home, "it-life"), "teardown must keep the backups"

    refused = run(api, "POST", "/api/clusters", json={"name": "it-life", **SMALL})
    assert refused.status_code == 422
    report = report_of(refused)
    detail = step(report, "backup destination pre-flight")["detail"]
    assert "already holds WAL for server name 'it-life'" in detail
    assert "backup.serverName" in detail and "deleteBackups: true" in detail
    assert [s["name"] for s in report["steps"]] == ["validate spec", "pre-flight", "backup destination pre-flight"]
    assert not (home / "clusters" / "life" / "it-life").exists()  # nothing half-made
    assert api.get("/api/clusters/it-life?namespace=life").status_code == 404

    # fix 1: another server name
    renamed = {"name": "it-life", **SMALL, "backup": {"serverName": "it-life-v2"}}
    assert run(api, "POST", "/api/clusters", json=renamed).status_code == 200
    assert archived_segments(home, "it-life-v2")
    assert run(api, "DELETE", "/api/clusters/it-life", params={"namespace": "life", "deleteBackups": "true"}
               ).status_code == 200
    assert archived_segments(home, "it-life-v2") == []

    # fix 2: the backups kept by the first teardown deleted by name, then the same server name deploys again
    assert archived_segments(home, "it-life")
    deleted = run(api, "DELETE", "/api/clusters/it-life?namespace=life", json={"deleteBackups": True})
    assert deleted.status_code == 200
    assert step(deleted.json(), "delete backups")["outcome"] == "done"
    assert archived_segments(home, "it-life") == []
    assert api.delete("/api/clusters/it-life?namespace=life&deleteBackups=true").status_code == 404  # nothing left
    assert run(api, "POST", "/api/clusters", json={"name": "it-life", **SMALL}).status_code == 200
    cleanup = run(api, "DELETE", "/api/clusters/it-life", params={"namespace": "life", "deleteBackups": "true"})
    assert cleanup.status_code == 200


def test_a_torn_down_cluster_is_restored_from_the_backups_it_kept(api: httpx.Client, home: Path) -> None:
    """Disaster recovery: the cluster is gone (deleted by mistake), its backups were kept."""
    spec = {"name": "it-dr", **SMALL, "instances": 1, "synchronousReplicas": 0, "sampleData": True}
    assert run(api, "POST", "/api/clusters", json=spec).status_code == 200
    assert run(api, "POST", "/api/clusters/it-dr/backups", params={"namespace": "life"}, json={}).status_code == 200
    with app_connection(home, "it-dr", "read-write", "life") as conn:  # after the backup; nobody switches WAL
        conn.execute("INSERT INTO datasample (id, name) VALUES (99, 'last words')")
        conn.commit()
    gone = run(api, "DELETE", "/api/clusters/it-dr", params={"namespace": "life"})
    assert gone.status_code == 200
    assert step(gone.json(), "archive the last WAL")["outcome"] == "done"  # the teardown shipped it
    assert api.get("/api/clusters/it-dr", params={"namespace": "life"}).status_code == 404

    wrong = api.post("/api/clusters/it-dr/restores", params={"namespace": "life"}, json={"sourceServerName": "nope"})
    assert wrong.status_code == 404 and wrong.json()["field"] == "sourceServerName"
    restored = run(api, "POST", "/api/clusters/it-dr/restores", params={"namespace": "life"}, json={
        "checks": [{"name": "rows", "query": "SELECT count(*) FROM datasample", "expected": 4}]})
    assert restored.status_code == 200, restored.text
    report = restored.json()
    assert "was torn down; restoring from the backups it kept" in step(report, "read source spec")["detail"]
    assert report["result"]["checks"][0]["ok"] is True
    assert run(api, "DELETE", "/api/clusters/it-dr", params={"namespace": "life", "deleteBackups": "true"}
               ).status_code == 200
    assert archived_segments(home, "it-dr") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "instances": 12}, "instances"),
        ({"name": "UPPER"}, "name"),
        ({"name": "x", "storage": {"size": "lots"}}, "storage.size"),
        ({"name": "x", "synchronousReplicas": 3}, "synchronousReplicas"),
        ({"name": "x", "surprise": True}, "surprise"),
        ([], "body"),
    ],
)
def test_invalid_spec_is_400_naming_the_field(api: httpx.Client, body: object, field: str, home: Path) -> None:
    response = api.post("/api/clusters", json=body)
    assert response.status_code == 400
    error = response.json()
    code = "InvalidRequest" if field == "body" else "InvalidSpec"  # not an object: no spec to speak of
    assert error["code"] == code and error["field"] == field and error["message"]
    assert not (home / "clusters" / "default" / "x").exists()


def test_malformed_requests(api: httpx.Client) -> None:
    bad_json = api.post("/api/clusters", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["field"] == "body"
    assert api.post("/api/clusters", content=b"x" * 300_000).status_code == 413
    assert api.get("/api/clusters/nope").json()["code"] == "ClusterNotFound"
    assert api.delete("/api/clusters/nope").status_code == 404
    assert api.get("/api/clusters/nope?namespace=Bad_NS").status_code == 400
    assert api.get("/api/clusters/nope?namespace=default%0A").status_code == 400
    assert api.get("/api/clusters/%00").status_code == 404
    assert api.post("/api/clusters", content=b"[" * 100_000).status_code == 400
    assert api.get("/api/operations/deploy-default-none-1").status_code == 404
    assert api.get("/api/operations/bad%20id").status_code == 400
    assert api.put("/api/clusters").status_code == 405
