"""Day-2 changes on the real local stack: a restart-requiring parameter rolled through three Patroni members in
CNPG's order with the write probe beside it (in place, and supervised by switchover), the dry run, the refusals,
a scale 3 -> 4 -> 2 whose serials are never reused and whose primary never goes, and a credential rotation over
every cluster that shares the app secret."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.platforms import local_platform
from shared.ports import port_open
from shared.settings import Settings
from tests.conftest import at_step, follow, report_of, step
from tests.integration.helpers import cluster_state, superuser

pytestmark = pytest.mark.integration
NS = "upd"
NAME = "it-upd"
URL = f"/api/clusters/{NAME}"
SPEC = {"name": NAME, "namespace": NS, "instances": 3, "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


def patch(api: httpx.Client, body: dict[str, Any], **params: str) -> httpx.Response:
    started = api.patch(URL, json=body, params={"namespace": NS, **params})
    if started.status_code != 202:
        return started
    return follow(api, started.headers["Location"])


def cluster(api: httpx.Client) -> dict[str, Any]:
    return api.get(URL, params={"namespace": NS}).json()


def live(home: Path, name: str, setting: str) -> tuple[str, bool]:
    """A member's value in force and whether anything waits there for a restart, asked of PostgreSQL itself."""
    port = cluster_state(home, NAME, NS)["members"][name]["pgPort"]
    with superuser(home, NAME, port, NS) as conn:
        value = conn.execute("SELECT current_setting(%s)", (setting,)).fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()[0]
    return value, bool(pending)


@pytest.fixture(scope="module")
def deployed(devhost: Any) -> str:
    with devhost.client() as api:
        started = api.post("/api/clusters", json=SPEC)
        assert started.status_code == 202, started.text
        done = follow(api, started.headers["Location"])
    assert done.status_code == 200, done.text
    return done.json()["result"]["currentPrimary"]


def test_dry_run_plans_and_touches_nothing(api: httpx.Client, home: Path, deployed: str) -> None:
    answer = api.patch(URL, params={"namespace": NS, "dryRun": "true"},
                       json={"postgresql": {"parameters": {"shared_buffers": "48MB", "work_mem": "8MB"}}})
    assert answer.status_code == 200, answer.text
    kinds = {c["field"]: c["kind"] for c in answer.json()["changes"]}
    assert kinds == {"postgresql.parameters.shared_buffers": "rolling", "postgresql.parameters.work_mem": "online"}
    assert answer.json()["spec"]["postgresql"]["parameters"]["shared_buffers"] == "48MB"
    assert cluster(api)["spec"]["postgresql"]["parameters"] == {"shared_buffers": "32MB"}
    assert "operation" not in cluster(api)
    nothing = api.patch(URL, params={"namespace": NS}, json={"instances": 3})  # the same value: nothing to do, no run
    assert nothing.status_code == 200 and nothing.json()["changes"] == [], nothing.text


@pytest.mark.parametrize(("body", "field"), [
    ({"storage": {"size": "1Gi"}}, "storage.size"),  # a shrink
    ({"bootstrap": {"owner": "someone"}}, "bootstrap.owner"),  # fixed at deploy
    ({"instances": 1}, "synchronousReplicas"),  # fewer than synchronousReplicas + 1
    ({"imageName": "ghcr.io/cloudnative-pg/postgresql:14.10"}, "imageName"),  # a major downgrade
    ({"postgresql": {"parameters": {"wal_level": "minimal"}}}, "postgresql.parameters"),  # the operator's
    ({"name": "other"}, "name"),
])
def test_refused_with_the_field(api: httpx.Client, deployed: str, body: dict[str, Any], field: str) -> None:
    answer = api.patch(URL, params={"namespace": NS}, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field, answer.text


def test_a_major_upgrade_is_refused_with_the_reason(api: httpx.Client, deployed: str) -> None:
    done = patch(api, {"imageName": "ghcr.io/cloudnative-pg/postgresql:16.4", "backup": {"serverName": "pg16"}})
    assert done.status_code == 422, done.text
    refusal = step(report_of(done), "pre-flight")
    assert "major upgrade needs a second PostgreSQL version" in refusal["detail"], refusal
    assert cluster(api)["spec"].get("imageName") is None  # nothing applied


def test_a_restart_parameter_rolls_standbys_first_then_the_primary(api: httpx.Client, home: Path,
                                                                   deployed: str) -> None:
    primary = cluster(api)["currentPrimary"]
    done = patch(api, {"postgresql": {"parameters": {"shared_buffers": "48MB", "work_mem": "8MB"}}})
    assert done.status_code == 200, done.text
    report = report_of(done)
    result = done.json()["result"]
    names = [s["name"] for s in report["steps"]]
    # the gates before anything moved: archiving, WAL archived now, a verified backup
    assert names.index("verify backup") < names.index("apply spec")
    restarts = result["restarts"]
    order = [r["instance"] for r in restarts]
    standbys = sorted((n for n in order if n != primary), key=lambda n: int(n.rsplit("-", 1)[1]), reverse=True)
    assert order == [*standbys, primary], order  # CNPG's order: highest serial first, the primary last
    assert [r["role"] for r in restarts][-1] == "primary"  # primaryUpdateMethod restart: in place
    assert result["rpoLostWrites"] == 0 and result["probe"]["acknowledged"] > 20
    assert all(r["rtoSeconds"] < 30 for r in restarts), restarts
    assert result["rolesAfter"][primary] == "primary"
    for member in result["rolesAfter"]:
        assert live(home, member, "shared_buffers") == ("48MB", False)
        assert live(home, member, "work_mem")[0] == "8MB"
    assert cluster(api)["spec"]["postgresql"]["parameters"] == {"shared_buffers": "48MB", "work_mem": "8MB"}


def test_a_hand_edit_on_a_member_is_drift(api: httpx.Client, home: Path, deployed: str) -> None:
    """`ALTER SYSTEM` behind pgha's back on one member: GET names the member, the field, both values."""
    assert cluster(api)["drift"] == []
    member = sorted(cluster_state(home, NAME, NS)["members"])[-1]
    port = cluster_state(home, NAME, NS)["members"][member]["pgPort"]
    held = cluster(api)["spec"]["postgresql"]["parameters"]["work_mem"]
    with superuser(home, NAME, port, NS) as conn:
        conn.execute("ALTER SYSTEM SET work_mem = '16MB'")
        conn.execute("SELECT pg_reload_conf()")
        try:
            deadline = time.monotonic() + 10  # the postmaster rereads its files when the signal lands
            while not (drift := cluster(api)["drift"]) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            conn.execute("ALTER SYSTEM RESET work_mem")
            conn.execute("SELECT pg_reload_conf()")
    assert drift == [{"field": "postgresql.parameters.work_mem", "held": held, "running": "16MB",
                      "instance": member}], drift


def test_supervised_switchover_waits_for_a_person_and_resumes_after_a_rejection(api: httpx.Client, home: Path,
                                                                                   deployed: str) -> None:
    """primaryUpdateStrategy supervised: the standbys restart, the primary waits for a person. Rejected, the run
    fails with the primary still waiting (drift says so); a PATCH that changes nothing resumes it, and once
    approved the most advanced standby is promoted and the former primary restarted (primaryUpdateMethod
    switchover)."""
    primary = cluster(api)["currentPrimary"]
    step_name = f"waiting for approval: update the primary {primary} (switchover)"
    started = api.patch(URL, params={"namespace": NS}, json={
        "primaryUpdateStrategy": "supervised", "primaryUpdateMethod": "switchover",
        "postgresql": {"parameters": {"shared_buffers": "40MB", "max_connections": "120"}}})
    assert started.status_code == 202, started.text
    waiting = at_step(api, started.headers["Location"], step_name, timeout=120)
    assert waiting["customStatus"]["pendingApproval"]["approve"].endswith("/approve")
    operation = started.headers["Location"].rsplit("/", 1)[1]
    assert api.post(f"/api/operations/{operation}/reject", json={"by": "test"}).status_code == 202
    rejected = follow(api, started.headers["Location"])
    assert rejected.status_code == 422 and "was not approved" in rejected.json()["message"], rejected.text
    drift = {(d["instance"], d["field"]) for d in cluster(api)["drift"]}
    assert (primary, "postgresql.parameters.shared_buffers") in drift, drift  # it still waits for its restart

    resumed = api.patch(URL, params={"namespace": NS}, json={"primaryUpdateMethod": "switchover"})
    assert resumed.status_code == 202, resumed.text  # nothing changes, but the primary waits: a run rolls it
    at_step(api, resumed.headers["Location"], step_name, timeout=120)
    operation = resumed.headers["Location"].rsplit("/", 1)[1]
    assert api.post(f"/api/operations/{operation}/approve", json={"by": "test"}).status_code == 202
    done = follow(api, resumed.headers["Location"])
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    actions = [(r["action"], r["instance"]) for r in result["restarts"]]
    promoted = actions[0][1]
    assert actions == [("switchover", promoted), ("restart", primary)] and promoted != primary, actions
    assert result["rolesAfter"][promoted] == "primary" and result["rolesAfter"][primary] == "standby"
    assert result["rpoLostWrites"] == 0
    assert step(report_of(done), "approval")["outcome"] == "approved"
    for member in result["rolesAfter"]:
        assert live(home, member, "shared_buffers") == ("40MB", False)
        assert live(home, member, "max_connections")[0] == "120"  # Patroni passes it on the command line
    assert cluster(api)["drift"] == []


def test_scale_up_then_down_keeps_serials_and_the_primary(api: httpx.Client, home: Path, deployed: str) -> None:
    primary = cluster(api)["currentPrimary"]
    up = patch(api, {"instances": 4})
    assert up.status_code == 200, up.text
    assert up.json()["result"]["instances"] == [f"{NAME}-{n}" for n in (1, 2, 3, 4)]
    assert up.json()["result"]["restarts"] == []
    exporters = {m: p["exporterPort"] for m, p in cluster_state(home, NAME, NS)["members"].items()}
    down = patch(api, {"instances": 2})
    assert down.status_code == 200, down.text
    kept = down.json()["result"]["instances"]
    assert len(kept) == 2 and primary in kept, kept
    standbys = sorted(n for n in (f"{NAME}-{k}" for k in (1, 2, 3, 4)) if n != primary)
    assert kept == sorted([primary, standbys[0]], key=lambda n: int(n.rsplit("-", 1)[1]))  # highest serials went
    state = cluster_state(home, NAME, NS)
    assert sorted(state["members"]) == sorted(kept) and state["latestGeneratedNode"] == 4
    # Prometheus follows: the removed members' targets are gone, their exporters stopped
    monitoring = local_platform(Settings.from_env()).stack.monitoring
    deadline = time.monotonic() + 15
    while {t.split("/")[1] for t in monitoring.discovered(NS, NAME, deadline)} != set(kept):
        assert time.monotonic() < deadline, monitoring.discovered(NS, NAME, deadline)
        time.sleep(0.5)
    assert len(monitoring.discovered(NS, NAME, deadline)) == 2 * len(kept)  # Patroni and an exporter each
    assert all(port_open(port) == (member in kept) for member, port in exporters.items()), exporters
    now = cluster(api)
    assert now["phase"] == "Cluster in healthy state" and now["instances"] == 2 and now["readyInstances"] == 2
    again = patch(api, {"instances": 3})  # a new serial, never one used before
    assert again.status_code == 200, again.text
    assert f"{NAME}-5" in again.json()["result"]["instances"]


def secret(home: Path) -> dict[str, str]:
    return json.loads((home / "secrets" / NS / "db-user-pass").read_text())


def login(home: Path, name: str, password: str) -> str | None:
    """None when the app owner logs in to `name` with this password; else PostgreSQL's refusal."""
    port = next(iter(cluster_state(home, name, NS)["members"].values()))["pgPort"]
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="app", password=password, dbname="appdb",
                             connect_timeout=5, target_session_attrs="any"):
            return None
    except psycopg.OperationalError as err:
        return str(err)


def test_rotation_covers_every_cluster_of_the_secret_and_proves_it(api: httpx.Client, home: Path,
                                                                   deployed: str) -> None:
    other = {"name": "it-upd-b", "namespace": NS, "instances": 1, "synchronousReplicas": 0}
    made = api.post("/api/clusters", json=other)
    assert made.status_code == 202 and follow(api, made.headers["Location"]).status_code == 200
    old = secret(home)["password"]
    port = cluster_state(home, NAME, NS)["members"][cluster(api)["currentPrimary"]]["pgPort"]
    with psycopg.connect(host="127.0.0.1", port=port, user="app", password=old, dbname="appdb") as session:
        started = api.post(f"{URL}/credentials/rotate", params={"namespace": NS}, json={})
        assert started.status_code == 202, started.text
        done = follow(api, started.headers["Location"])
        assert done.status_code == 200, done.text
        assert session.execute("SELECT 1").fetchone() == (1,)  # a session already open goes on
    result = done.json()["result"]
    assert result["clusters"] == [NAME, "it-upd-b"] and result["secret"] == "db-user-pass"
    keys = secret(home)
    assert keys["password"] != old and set(keys) == {"username", "password", "createdBy"}  # nothing left over
    for name in (NAME, "it-upd-b"):
        assert login(home, name, keys["password"]) is None
        assert "password authentication failed" in (login(home, name, old) or ""), name
        assert step(report_of(done), f"old password refused on {name}")["outcome"] == "done"
    assert old not in done.text and keys["password"] not in done.text  # no password in the report
    history = b"".join(f.read_bytes() for f in (home / "devhost" / "hubs").glob("*") if f.is_file())
    assert history and old.encode() not in history and keys["password"].encode() not in history  # nor in history
