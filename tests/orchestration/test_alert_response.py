"""respond_to_alert on the durable engine, over HTTP, with the scripted platform: playbooks, dedupe,
approval, Resolved events, callbacks, bad input."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import httpx
import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobClient, ContainerClient

from shared import locks
from shared.platforms import installed
from shared.settings import Settings
from shared.spec import parse_spec
from tests.alert_payloads import LOG, METRIC, PROMETHEUS, alert
from tests.conftest import at_step, follow, step
from tests.receiver import Receiver
from tests.scripted_platform import ScriptedPlatform
from triggers import alerts

FIXTURES = Path(__file__).parents[1] / "contract" / "fixtures" / "alertmanager"


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedPlatform]:
    monkeypatch.setenv("PGHA_ALERT_GRACE_SECONDS", "1")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "3")
    platform = ScriptedPlatform()
    with installed(platform):
        yield platform


def with_cluster(platform: ScriptedPlatform, name: str, instances: int = 3) -> None:
    spec = parse_spec({"name": name, "instances": instances, "synchronousReplicas": 1 if instances > 1 else 0})
    platform.clusters[(spec.namespace, spec.name)] = spec


def send(api: httpx.Client, body: Any) -> httpx.Response:
    answer = api.post("/api/alerts", json=body)
    assert answer.status_code == 202, answer.text
    return answer


def pending_approval(api: httpx.Client, location: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(location)
        assert answer.status_code == 202, answer.text
        pending = (answer.json().get("customStatus") or {}).get("pendingApproval")
        if pending:
            return pending
        time.sleep(0.2)
    raise AssertionError("the run never asked for an approval")


def test_primary_unavailable_with_a_paused_ha_manager_resumes_it(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    with_cluster(scripted, "pg-paused")
    scripted.primary_up, scripted.ha_paused = False, True
    started = send(api, alert(PROMETHEUS, "paused-1", "pg-paused"))
    assert started.json()["playbook"] == "primaryUnavailable"
    done = follow(api, started.headers["Location"], timeout=60)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["result"]["outcome"] == "recovered" and report["result"]["action"]
    assert [s["name"] for s in report["steps"]][:6] == [
        "alert", "find cluster", "confirm", "grace period for the HA manager", "check the HA manager", "policy",
    ]
    assert step(report, "grace period for the HA manager")["outcome"] == "timed out"
    assert step(report, "restore the HA manager")["outcome"] == "done"
    assert step(report, "wait for a writable primary")["outcome"] == "done"
    assert scripted.calls["restore_ha_manager"] == 1
    assert locks.holder(Settings.from_env().storage_connection, "default", "pg-paused") is None


def test_a_primary_that_is_back_needs_no_action(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    with_cluster(scripted, "pg-fine")
    done = follow(api, send(api, alert(PROMETHEUS, "fine-1", "pg-fine")).headers["Location"])
    assert done.json()["result"]["outcome"] == "noActionNeeded"
    assert scripted.calls["ha_manager_status"] == 0


def test_healthy_ha_manager_that_never_promotes_is_escalated_never_overruled(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    with_cluster(scripted, "pg-stuck")
    scripted.primary_up = False
    done = follow(api, send(api, alert(PROMETHEUS, "stuck-1", "pg-stuck")).headers["Location"], timeout=60)
    assert done.status_code == 422, done.text
    report = done.json()["report"]
    assert report["result"]["outcome"] == "escalated"
    assert "an operator must look" in report["error"]
    assert step(report, "remedy")["outcome"] == "skipped"
    assert scripted.calls["restore_ha_manager"] == 0


def test_fifty_concurrent_copies_start_exactly_one_run(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    with_cluster(scripted, "pg-burst")
    body = alert(METRIC, "burst-1", "pg-burst")
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: api.post("/api/alerts", json=body), range(50)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(1 for a in answers if not a.json()["duplicate"]) == 1
    done = follow(api, answers[0].headers["Location"])
    assert done.json()["result"]["playbook"] == "replicationLag"
    assert step(done.json(), "diagnose replication")["outcome"] == "done"
    replay = send(api, body)  # an action group's retry, long after: still the same run
    assert replay.json()["duplicate"] is True and replay.json()["id"] == answers[0].json()["id"]


def test_approval_given_then_the_action_is_taken(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHA_ALERT_POLICY", "primaryUnavailable=approval")
    with_cluster(scripted, "pg-approve")
    scripted.primary_up, scripted.ha_paused = False, True
    started = send(api, alert(PROMETHEUS, "approve-1", "pg-approve"))
    location = started.headers["Location"]
    pending = pending_approval(api, location)
    assert pending["action"].startswith("resume") and pending["approve"].endswith("/approve")
    assert scripted.calls["restore_ha_manager"] == 0, "nothing before the approval"
    decided = api.post(f"{location}/approve", json={"by": "oncall@example.com"})
    assert decided.status_code == 202, decided.text
    done = follow(api, location, timeout=60)
    assert done.status_code == 200, done.text
    assert step(done.json(), "approval")["outcome"] == "approved"
    assert "oncall@example.com" in step(done.json(), "approval")["detail"]
    assert scripted.calls["restore_ha_manager"] == 1
    assert api.post(f"{location}/approve", json={}).status_code == 409  # ended: nothing to approve


def test_no_approval_by_the_deadline_means_no_action(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHA_ALERT_POLICY", "primaryUnavailable=approval")
    monkeypatch.setenv("PGHA_ALERT_APPROVAL_TIMEOUT_SECONDS", "2")
    with_cluster(scripted, "pg-expire")
    scripted.primary_up, scripted.ha_paused = False, True
    done = follow(api, send(api, alert(PROMETHEUS, "expire-1", "pg-expire")).headers["Location"], timeout=60)
    assert done.status_code == 422
    report = done.json()["report"]
    assert step(report, "approval")["outcome"] == "expired"
    assert "nothing done" in step(report, "approval")["detail"]
    assert report["result"]["outcome"] == "notApproved"
    assert scripted.calls["restore_ha_manager"] == 0


def test_approve_is_refused_when_nothing_waits_for_it(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    with_cluster(scripted, "pg-early")
    scripted.primary_up = False  # auto policy: the run waits for a promotion, not for a person
    location = send(api, alert(PROMETHEUS, "early-1", "pg-early")).headers["Location"]
    refused = api.post(f"{location}/approve", json={"by": "someone"})
    assert refused.status_code == 409 and refused.json()["code"] == "NoPendingApproval"
    assert api.post("/api/operations/no-such-op/approve").status_code == 404
    assert api.post("/api/operations/bad%20id/reject").json()["field"] == "id"
    follow(api, location, timeout=60)


def test_fired_then_resolved_is_one_run_ended_by_the_event(api: httpx.Client, scripted: ScriptedPlatform,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    with_cluster(scripted, "pg-resolve")
    scripted.primary_up = False
    fired = send(api, alert(PROMETHEUS, "resolve-1", "pg-resolve"))
    time.sleep(2)  # into the waits
    resolved = send(api, alert(PROMETHEUS, "resolve-1", "pg-resolve", condition="Resolved"))
    assert resolved.json()["id"] == fired.json()["id"] and resolved.json()["resolved"] is True
    started = time.monotonic()
    done = follow(api, fired.headers["Location"], timeout=60)
    assert time.monotonic() - started < 30, "the event ended the run, not its 120 s deadline"
    assert done.status_code == 200, done.text
    assert done.json()["result"]["outcome"] == "resolved"
    assert step(done.json(), "resolved")["outcome"] == "done"
    again = send(api, alert(PROMETHEUS, "resolve-1", "pg-resolve", condition="Resolved"))
    assert again.json()["id"] is None  # nothing running for it any more: nothing started


def test_a_resolve_that_cannot_note_its_claim_is_a_503_and_leaves_the_run_to_the_retry(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage fails as the Resolved is noted on the firing's claim: the sender gets a 503 saying what pgha was
    doing (never the storage error's text) and retries; the run goes on until that retry ends it."""
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    with_cluster(scripted, "pg-unmarked")
    scripted.primary_up = False
    fired = send(api, alert(PROMETHEUS, "unmarked-1", "pg-unmarked"))

    def storage_down(connection: str, key: str) -> bool:
        raise ServiceRequestError(f"could not reach the account in {connection}")

    with monkeypatch.context() as patched:
        patched.setattr(locks, "mark_resolved", storage_down)
        refused = api.post("/api/alerts", json=alert(PROMETHEUS, "unmarked-1", "pg-unmarked", condition="Resolved"))
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "Unavailable"
    assert "noting that alert" in refused.json()["message"] and "resolved" in refused.json()["message"]
    assert "AccountKey" not in refused.text and "could not reach" not in refused.text
    assert api.get(fired.headers["Location"]).status_code == 202  # still running: nothing was ended
    retried = send(api, alert(PROMETHEUS, "unmarked-1", "pg-unmarked", condition="Resolved"))
    assert retried.json()["id"] == fired.json()["id"] and retried.json()["resolved"] is True
    done = follow(api, fired.headers["Location"], timeout=60)
    assert done.status_code == 200 and done.json()["result"]["outcome"] == "resolved", done.text
    marked = {c.key for c in locks.resolved_before(Settings.from_env().storage_connection, time.time() + 3600)}
    assert fired.json()["id"] in marked  # the retry noted it: the claim's retention runs


def test_alert_for_an_unknown_cluster_is_reported_without_action(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    done = follow(api, send(api, alert(PROMETHEUS, "unknown-1", "no-such-cluster")).headers["Location"])
    assert done.status_code == 200
    assert done.json()["result"]["outcome"] == "unknownCluster"
    assert "no action" in step(done.json(), "cluster")["detail"]
    assert scripted.calls["ha_manager_status"] == 0 and scripted.calls["cluster_status"] == 0


def test_log_alert_about_backups_picks_the_backup_playbook(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHA_ALERT_POLICY", "backupStale=approval")
    monkeypatch.setenv("PGHA_ALERT_APPROVAL_TIMEOUT_SECONDS", "1")
    with_cluster(scripted, "pg-backups")
    started = send(api, alert(LOG, "log-1", "pg-backups"))
    assert started.json()["playbook"] == "backupStale"
    report = follow(api, started.headers["Location"]).json()
    assert report["result"]["outcome"] == "notApproved" and report["status"] == "succeeded"


def test_an_alert_on_a_busy_cluster_only_reports(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    with_cluster(scripted, "pg-busy")
    scripted.primary_up, scripted.ha_paused = False, True
    connection = Settings.from_env().storage_connection
    assert locks.try_acquire(connection, "default", "pg-busy", "drill-default-pg-busy-x", "failover_drill")
    try:
        done = follow(api, send(api, alert(PROMETHEUS, "busy-1", "pg-busy")).headers["Location"])
    finally:
        locks.release(connection, "default", "pg-busy", "drill-default-pg-busy-x")
    assert done.json()["result"]["outcome"] == "deferred"
    assert "failover_drill drill-default-pg-busy-x" in step(done.json(), "remedy")["detail"]
    assert scripted.calls["restore_ha_manager"] == 0


def test_report_is_posted_to_the_callback_and_its_key_stays_out_of_history(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/workflows/x/triggers/manual?sig=CALLBACK-SECRET-42"
        monkeypatch.setenv("PGHA_ALERT_CALLBACK_URL", url)
        with_cluster(scripted, "pg-callback")
        started = send(api, alert(METRIC, "callback-1", "pg-callback"))
        done = follow(api, started.headers["Location"])
        assert done.status_code == 200
        assert len(receiver.bodies) == 1 and receiver.paths[0].endswith("sig=CALLBACK-SECRET-42")
        posted = receiver.bodies[0]
        assert posted["operationId"] == started.json()["id"] and posted["result"]["playbook"] == "replicationLag"
        callback_step = step(done.json(), "post report to callback")
        assert callback_step["outcome"] == "done" and "CALLBACK-SECRET-42" not in callback_step["detail"]
        history = api.get(f"/runtime/webhooks/durabletask/instances/{started.json()['id']}",
                          params={"showHistory": "true", "showHistoryOutput": "true", "showInput": "true"})
        assert history.status_code == 200
        assert "CALLBACK-SECRET-42" not in history.text and "CALLBACK-SECRET-42" not in done.text
    finally:
        receiver.shutdown()


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 400, "body"),
    (json.dumps({**PROMETHEUS, "schemaId": "Microsoft.Insights/activityLogs"}).encode(), 400, "schemaId"),
    (json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {}}).encode(), 400, "data.essentials"),
    (json.dumps({**PROMETHEUS, "data": {"essentials": {**PROMETHEUS["data"]["essentials"], "alertId": ""}}}).encode(),
     400, "data.essentials.alertId"),
    (b"[" * 300_000, 413, None),
])
def test_bad_alerts_are_refused_naming_what_is_wrong(
    api: httpx.Client, scripted: ScriptedPlatform, body: bytes, status: int, field: str | None
) -> None:
    answer = api.post("/api/alerts", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert set(answer.json()) >= {"code", "message"}
    if field:
        assert answer.json()["field"] == field


def test_a_manager_pgha_may_not_fix_is_escalated_without_asking(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGHA_ALERT_POLICY", "primaryUnavailable=approval")
    with_cluster(scripted, "pg-fenced")
    scripted.primary_up, scripted.ha_paused, scripted.ha_fixable = False, True, False
    done = follow(api, send(api, alert(PROMETHEUS, "fenced-1", "pg-fenced")).headers["Location"], timeout=60)
    assert done.status_code == 422
    report = done.json()["report"]
    assert report["result"]["outcome"] == "escalated" and "not pgha's to fix" in report["error"]
    assert not [s for s in report["steps"] if s["name"] == "approval"]
    assert scripted.calls["restore_ha_manager"] == 0


# ---- Alertmanager's webhook (captured payloads: tests/contract/fixtures/alertmanager) ------------------------
def alertmanager(condition: str, *clusters: str, starts_at: str = "2026-12-02T16:50:32Z") -> dict[str, Any]:
    """A captured Alertmanager delivery, one alert per cluster (their own fingerprints)."""
    body = json.loads((FIXTURES / f"{condition}.json").read_text())
    template = body["alerts"][0]
    body["alerts"] = []
    for cluster in clusters:
        item = json.loads(json.dumps(template))
        item["labels"].update(cnpg_io_cluster=cluster, namespace="default", alertname="CNPGClusterOffline",
                              playbook="primaryUnavailable")
        item["fingerprint"] = hashlib.sha256(cluster.encode()).hexdigest()[:16]
        item["startsAt"] = starts_at
        body["alerts"].append(item)
    return body


def test_each_alert_of_an_alertmanager_group_gets_its_own_run(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    for name in ("pg-am-1", "pg-am-2"):
        with_cluster(scripted, name)
    answer = send(api, alertmanager("firing", "pg-am-1", "pg-am-2"))
    first, second = answer.json()["alerts"]
    assert "Location" not in answer.headers  # a group has no one operation
    assert first["id"] != second["id"] and not first["duplicate"] and not second["duplicate"]
    assert {first["cluster"]["name"], second["cluster"]["name"]} == {"pg-am-1", "pg-am-2"}
    for started in (first, second):
        report = follow(api, started["statusQueryGetUri"]).json()
        assert report["result"]["outcome"] == "noActionNeeded", report["result"]
        assert report["result"]["alert"]["monitoringService"] == "Alertmanager"
    again = send(api, alertmanager("firing", "pg-am-1", "pg-am-2"))  # a retried delivery: the same runs
    assert [a["id"] for a in again.json()["alerts"]] == [first["id"], second["id"]]
    assert all(a["duplicate"] for a in again.json()["alerts"])
    later = send(api, alertmanager("firing", "pg-am-1", starts_at="2026-12-02T17:20:00Z"))  # it fired anew
    assert later.json()["alerts"][0]["id"] not in (first["id"], second["id"])
    assert follow(api, later.json()["alerts"][0]["statusQueryGetUri"]).status_code == 200  # not left to the next test


def test_an_alertmanager_resolve_ends_its_run(api: httpx.Client, scripted: ScriptedPlatform,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    with_cluster(scripted, "pg-am-resolve")
    scripted.primary_up = False
    (fired,) = send(api, alertmanager("firing", "pg-am-resolve")).json()["alerts"]
    time.sleep(2)  # into the waits
    (resolved,) = send(api, alertmanager("resolved", "pg-am-resolve")).json()["alerts"]
    assert resolved["id"] == fired["id"] and resolved["resolved"] is True
    done = follow(api, fired["statusQueryGetUri"], timeout=60)
    assert done.status_code == 200 and done.json()["result"]["outcome"] == "resolved", done.text
    assert "Alertmanager resolved the alert" in step(done.json(), "resolved")["detail"]


def test_a_bad_alertmanager_delivery_is_refused_naming_the_field(api: httpx.Client) -> None:
    body = alertmanager("firing", "pg-am-bad")
    body["alerts"][0].pop("fingerprint")
    refused = api.post("/api/alerts", json=body)
    assert refused.status_code == 400 and refused.json()["field"] == "alerts[0].fingerprint", refused.text


def test_a_resolve_while_archiving_is_awaited_lets_the_remedy_ask_and_wait(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alertmanager resolving the archiving alert says archiving works again: the response goes on to its
    remedy, and the approval it asks for is not cut short by the resolve it already heard."""
    monkeypatch.setenv("PGHA_ALERT_POLICY", "walArchivingFailing=approval")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "120")
    with_cluster(scripted, "pg-am-archive")
    firing = alertmanager("firing", "pg-am-archive")
    firing["alerts"][0]["labels"].update(alertname="PGHAWALArchivingFailing", playbook="walArchivingFailing")
    (fired,) = send(api, firing).json()["alerts"]
    at_step(api, fired["statusQueryGetUri"], "wait for archiving to work again")
    resolved = alertmanager("resolved", "pg-am-archive")
    resolved["alerts"][0]["labels"].update(alertname="PGHAWALArchivingFailing", playbook="walArchivingFailing")
    assert send(api, resolved).json()["alerts"][0]["id"] == fired["id"]
    pending = pending_approval(api, fired["statusQueryGetUri"])
    assert pending["action"] == "take a backup"
    assert api.post(f"{fired['statusQueryGetUri']}/reject", json={"by": "oncall@example.com"}).status_code == 202
    report = follow(api, fired["statusQueryGetUri"], timeout=60).json()
    assert report["result"]["outcome"] == "notApproved", report["result"]
    assert "resolved the alert: archiving works again" in step(report, "archiving")["detail"]


def test_claims_go_a_retention_after_their_alert_resolved_once_their_run_has_ended(
    api: httpx.Client, scripted: ScriptedPlatform, devhost: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer's hourly sweep, with its clock a week and an hour ahead: the claim of a resolved alert whose run
    ended goes; one whose alert still fires stays (a repeat of it must not start its id again); one whose run
    still waits for an approval stays until that run ends; with today's clock none goes."""
    monkeypatch.setenv("PGHA_ALERT_POLICY", "primaryUnavailable=approval")
    with_cluster(scripted, "pg-forget")
    scripted.primary_up, scripted.ha_paused = False, True
    storage = Settings.from_env().storage_connection
    resolved = send(api, alert(PROMETHEUS, "forget-resolved", "no-such-cluster"))
    firing = send(api, alert(PROMETHEUS, "forget-firing", "no-such-cluster"))
    for started in (resolved, firing):
        assert follow(api, started.headers["Location"]).status_code == 200
    send(api, alert(PROMETHEUS, "forget-resolved", "no-such-cluster", condition="Resolved"))
    waiting = send(api, alert(PROMETHEUS, "forget-waiting", "pg-forget"))
    pending_approval(api, waiting.headers["Location"])
    assert locks.mark_resolved(storage, waiting.json()["id"])  # as its Resolved would, but the run goes on
    client = df.DurableOrchestrationClient(devhost.server.starter_binding())

    def sweep(hours_ahead: float) -> list[str]:
        now = time.time() + hours_ahead * 3600
        return asyncio.run_coroutine_threadsafe(alerts.forget_old_claims(client, now), devhost.server.loop).result(60)

    ids = {name: answer.json()["id"] for name, answer in (("resolved", resolved), ("firing", firing),
                                                          ("waiting", waiting))}
    assert not set(ids.values()) & set(sweep(0))
    forgotten = sweep(169)
    assert ids["resolved"] in forgotten and locks.claimed_at(storage, ids["resolved"]) == 0.0
    assert ids["resolved"] not in alerts.CLAIMED
    for kept in ("firing", "waiting"):
        assert ids[kept] not in forgotten and locks.claimed_at(storage, ids[kept]) > 0, kept
    assert api.post(f"{waiting.headers['Location']}/reject", json={"by": "oncall@example.com"}).status_code == 202
    assert follow(api, waiting.headers["Location"], timeout=60).status_code in (200, 422)
    assert ids["waiting"] in sweep(169) and locks.claimed_at(storage, ids["firing"]) > 0


def test_a_sweep_reads_the_claims_whose_alert_resolved_and_no_other(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly sweep lists the markers of the hours past the cutoff and reads their claims, never the claims
    it keeps: its cost is what it deletes (a listing of every claim with its metadata stalled the acks)."""
    storage = Settings.from_env().storage_connection
    keys = [f"sweep-only-{i}-{time.time_ns()}" for i in range(30)]
    for key in keys:
        assert locks.claim(storage, key)
    assert locks.mark_resolved(storage, keys[0], now=time.time() - 3 * 3600)
    listed: list[str | None] = []
    read: list[str] = []
    real_list, real_read = ContainerClient.list_blobs, BlobClient.get_blob_properties
    monkeypatch.setattr(ContainerClient, "list_blobs", lambda self, *args, **kwargs: listed.append(
        kwargs.get("name_starts_with")) or real_list(self, *args, **kwargs))
    monkeypatch.setattr(BlobClient, "get_blob_properties", lambda self, *args, **kwargs: read.append(
        self.blob_name) or real_read(self, *args, **kwargs))
    (found,) = locks.resolved_before(storage, time.time() - 2 * 3600)
    assert found.key == keys[0] and found.etag is not None
    assert listed and all(prefix and prefix.startswith(locks.MARKERS) for prefix in listed), listed
    assert read == [f"{keys[0]}.json"]
    assert locks.resolved_before(storage, time.time() - 4 * 3600) == []  # resolved after that cutoff
    assert locks.forget_claim(storage, found)
    assert locks.claimed_at(storage, keys[0]) == 0.0 and locks.claimed_at(storage, keys[1]) > 0
    assert keys[0] not in {c.key for c in locks.resolved_before(storage, time.time())}  # its marker went too
