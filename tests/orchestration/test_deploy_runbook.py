"""deploy_cluster and teardown_cluster on the durable engine, over HTTP, with the scripted platform."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import locks, reports
from shared.platforms import installed
from shared.settings import Settings
from shared.spec import parse_spec
from tests.conftest import follow, step
from tests.scripted_platform import ScriptedPlatform

SPEC = {"name": "scripted", "instances": 1, "synchronousReplicas": 0}
PLAN_SPEC = Path(__file__).parents[1] / "contract" / "fixtures" / "runbook" / "spec.json"


@pytest.fixture()
def scripted() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform()) as platform:
        yield platform  # type: ignore[misc]


def deploy(api: httpx.Client, spec: dict[str, Any] | None = None) -> httpx.Response:
    started = api.post("/api/clusters", json=spec or SPEC)
    assert started.status_code == 202, started.text
    assert started.headers["Location"].endswith(f"/api/operations/{started.json()['id']}")
    return follow(api, started.headers["Location"])


def test_deploy_runs_every_step_in_order(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    done = deploy(api)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["status"] == "succeeded"
    assert [s["name"] for s in report["steps"]] == [
        "validate spec", "pre-flight", "backup destination pre-flight", "namespace", "app-user secret",
        "operator config",
        "monitoring", "backup identity", "apply cluster", "endpoints", "wait ready", "verify monitoring",
        "zone spread", "WAL archiving", "sample dataset", "replica check", "synchronous standby", "scheduled backup",
    ]
    assert step(report, "replica check")["outcome"] == "skipped"  # one instance has no replica
    settings = Settings.from_env()
    stored = reports.load(settings.storage_connection, report["operationId"])
    assert stored is not None and stored["steps"] == report["steps"]
    assert locks.holder(settings.storage_connection, "default", "scripted") is None
    assert ("default", "scripted") in scripted.clusters


def test_a_wait_ends_on_the_first_answer_that_says_success_is_impossible_and_compensates(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    scripted.polls_until_ready = None  # never ready by itself: without the sign, the wait would run 600 s
    scripted.failure = "instance doomed-1: Patroni has exited and nothing restarts it: FATAL:  disk full"
    done = deploy(api, {**SPEC, "name": "doomed", "instances": 2})
    assert done.status_code == 422, done.text
    report = done.json()["report"]
    wait = step(report, "wait ready")
    assert wait["outcome"] == "failed" and wait["data"] == {"polls": 1}, wait
    assert wait["detail"] == f"cannot succeed: {scripted.failure}"
    assert step(report, "delete cluster")["outcome"] == "done"  # what the run made is removed
    assert ("default", "doomed") not in scripted.clusters


def test_step_failing_after_retries_fails_the_run_and_names_the_step(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    scripted.failing["verify_monitoring"] = -1
    done = deploy(api, {**SPEC, "name": "fails"})
    assert done.status_code == 422, done.text
    body = done.json()
    assert body["code"] == "OperationFailed"
    assert "verify monitoring" in body["message"]
    report = body["report"]
    failed = step(report, "verify monitoring")
    assert failed["outcome"] == "failed"
    assert "scripted failure of verify_monitoring" in failed["detail"]
    assert scripted.calls["verify_monitoring"] == Settings.from_env().activity_attempts
    # compensation: what this run made is gone
    assert scripted.clusters == {}
    assert scripted.secrets == set()
    assert step(report, "delete cluster")["outcome"] == "done"
    assert locks.holder(Settings.from_env().storage_connection, "default", "fails") is None


def test_secret_made_by_a_delivery_whose_answer_was_lost_is_still_compensated(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    scripted.lose_result["ensure_app_secret"] = 1  # made, answer lost; the retry answers "exists"
    scripted.failing["verify_monitoring"] = -1
    done = deploy(api, {**SPEC, "name": "lost-answer"})
    assert done.status_code == 422
    assert scripted.calls["ensure_app_secret"] == 2
    assert step(done.json()["report"], "app-user secret")["outcome"] == "unchanged"
    assert scripted.secrets == set(), "the run made the secret, so its compensation removes it"


def test_someone_elses_secret_is_kept(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    scripted.secrets.add(("default", "db-user-pass"))
    scripted.secret_owners[("default", "db-user-pass")] = "deploy-default-other-1"
    scripted.failing["verify_monitoring"] = -1
    assert deploy(api, {**SPEC, "name": "shares-secret"}).status_code == 422
    assert scripted.secrets == {("default", "db-user-pass")}


def test_transient_failure_is_retried_and_the_run_succeeds(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    scripted.failing["apply_cluster"] = 2
    done = deploy(api, {**SPEC, "name": "flaky"})
    assert done.status_code == 200, done.text
    assert scripted.calls["apply_cluster"] == 3


def test_readiness_deadline_fails_clearly_and_leaves_nothing(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.polls_until_ready = None
    monkeypatch.setenv("PGHA_READY_TIMEOUT_SECONDS", "3")
    done = deploy(api, {**SPEC, "name": "never-ready", "instances": 3, "synchronousReplicas": 1})
    assert done.status_code == 422
    report = done.json()["report"]
    wait = step(report, "wait ready")
    assert wait["outcome"] == "failed"
    assert "not ready after 3s" in wait["detail"] and "1/3 instances ready" in wait["detail"]
    assert report["error"].startswith("wait ready: not ready after 3s")
    assert scripted.clusters == {} and scripted.secrets == set() and scripted.archives == set()
    assert scripted.calls["verify_monitoring"] == 0  # nothing after the failed gate ran


def test_preflight_refusal_makes_nothing(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    scripted.archives.add("taken")
    done = deploy(api, {**SPEC, "name": "taken"})
    assert done.status_code == 422
    report = done.json()["report"]
    assert step(report, "backup destination pre-flight")["outcome"] == "failed"
    assert scripted.calls["apply_cluster"] == 0 and scripted.calls["ensure_app_secret"] == 0
    assert scripted.archives == {"taken"}  # someone else's archive is never touched


def test_teardown_keeps_backups_unless_asked(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    assert deploy(api, {**SPEC, "name": "gone"}).status_code == 200
    started = api.delete("/api/clusters/gone")
    assert started.status_code == 202
    done = follow(api, started.headers["Location"])
    assert done.status_code == 200
    assert step(done.json(), "delete backups")["outcome"] == "skipped"
    assert "gone" in scripted.archives
    assert api.delete("/api/clusters/gone").status_code == 404


def test_second_request_for_a_busy_cluster_is_409(api: httpx.Client, scripted: ScriptedPlatform,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    scripted.polls_until_ready = None
    monkeypatch.setenv("PGHA_READY_TIMEOUT_SECONDS", "4")
    first = api.post("/api/clusters", json={**SPEC, "name": "busy"})
    assert first.status_code == 202
    second = api.post("/api/clusters", json={**SPEC, "name": "busy"})
    assert second.status_code == 409
    assert second.json()["code"] == "ClusterBusy"
    assert second.headers["Location"] == first.headers["Location"]
    assert follow(api, first.headers["Location"]).status_code == 422
    scripted.polls_until_ready = 1
    assert deploy(api, {**SPEC, "name": "busy"}).status_code == 200  # the lock was released


def test_the_plan_lists_the_steps_the_run_takes(
    api: httpx.Client, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pgha plan deploy` walks the runbook itself: the steps it lists are the steps a deploy runs, in order."""
    from triggers.plans import plan

    # the scripted platform runs no SQL: no sample data, and one instance (no replica to read)
    spec = {**json.loads(PLAN_SPEC.read_text()), "sampleData": False, "instances": 1, "synchronousReplicas": 0}
    report = deploy(api, spec).json()
    ran = [s["name"] for s in report["steps"] if s["name"] != "validate spec"]  # decided without an activity
    for name, value in {"PGHA_AKS_SUBSCRIPTION_ID": "sub-1", "PGHA_AKS_RESOURCE_GROUP": "rg",
                        "PGHA_AKS_CLUSTER": "aks", "PGHA_AKS_IDENTITY_NAME": "mi",
                        "PGHA_AKS_IDENTITY_CLIENT_ID": "9e3b7c1a-5d2f-4a8e-b6c4-2f1d8e7a9b30"}.items():
        monkeypatch.setenv(name, value)
    planned = [entry["step"] for entry in plan("deploy", parse_spec(spec))]
    assert [name for n, name in enumerate(planned) if n == 0 or planned[n - 1] != name] == ran
