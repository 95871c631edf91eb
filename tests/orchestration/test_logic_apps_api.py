"""The API as Logic Apps uses it, on the durable engine with the scripted platform: callbacks,
subscribe / unsubscribe, cooperative cancel with compensation, and the function key on every route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared import locks
from shared.platforms import installed
from shared.settings import Settings
from tests.conftest import follow, step
from tests.receiver import Receiver
from tests.scripted_platform import ScriptedPlatform

SPEC = {"name": "la", "instances": 1, "synchronousReplicas": 0}


@pytest.fixture()
def scripted() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform()) as platform:
        yield platform  # type: ignore[misc]


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.shutdown()


def wait_for_step(api: httpx.Client, location: str, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(location)
        assert answer.status_code == 202, answer.text
        if (answer.json().get("customStatus") or {}).get("step") == name:
            return
        time.sleep(0.1)
    raise AssertionError(f"never reached {name}: {answer.json()}")


def test_callback_url_gets_the_report(api: httpx.Client, scripted: ScriptedPlatform, receiver: Receiver) -> None:
    started = api.post("/api/clusters", json={**SPEC, "name": "la-callback",
                                              "callbackUrl": f"{receiver.url}/hook?sig=KEY-IN-THE-URL"})
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"])
    assert done.status_code == 200
    (posted,) = receiver.wait_for(1)
    assert posted["operationId"] == started.json()["id"] and posted["status"] == "succeeded"
    assert "KEY-IN-THE-URL" not in done.text
    assert step(done.json(), "post report to callback")["outcome"] == "done"


def test_callback_to_a_dead_receiver_is_reported_and_the_run_still_succeeds(
    api: httpx.Client, scripted: ScriptedPlatform
) -> None:
    from shared.ports import free_ports

    (port,) = free_ports(1)
    started = api.post("/api/clusters", json={**SPEC, "name": "la-dead", "callbackUrl": f"http://127.0.0.1:{port}/x"})
    done = follow(api, started.headers["Location"])
    assert done.status_code == 200
    callback = step(done.json(), "post report to callback")
    assert callback["outcome"] == "failed" and "after 4 attempt(s)" in callback["detail"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://", 42,
                                 "http://169.254.169.254/metadata/instance", "https://evil.example.com/hook",
                                 "http://prod-12.westeurope.logic.azure.com/workflows/x"])
def test_bad_callback_url_is_a_400_naming_it(api: httpx.Client, scripted: ScriptedPlatform, url: object) -> None:
    answer = api.post("/api/clusters", json={**SPEC, "name": "la-bad", "callbackUrl": url})
    assert answer.status_code == 400 and answer.json()["field"] == "callbackUrl"
    assert scripted.calls["apply_cluster"] == 0


def test_unsubscribe_cancels_the_run_and_its_compensation_runs(
    api: httpx.Client, scripted: ScriptedPlatform, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.polls_until_ready = None  # never ready: the run waits until told otherwise
    subscribed = api.post("/api/subscriptions", json={
        "operation": "deploy", "request": {**SPEC, "name": "la-sub"}, "callbackUrl": f"{receiver.url}/done"})
    assert subscribed.status_code == 201, subscribed.text
    operation = subscribed.json()["id"]
    assert subscribed.headers["Location"].endswith(f"/api/subscriptions/{operation}")
    status_uri = subscribed.json()["statusQueryGetUri"]
    wait_for_step(api, status_uri, "synchronous standby")
    assert ("default", "la-sub") in scripted.clusters
    cancelled = api.delete(f"/api/subscriptions/{operation}")
    assert cancelled.status_code == 202, cancelled.text
    done = follow(api, status_uri, timeout=30)
    assert done.status_code == 422 and done.json()["code"] == "OperationCanceled"
    report = done.json()["report"]
    assert report["status"] == "canceled"
    assert step(report, "synchronous standby")["outcome"] == "interrupted"
    assert ("default", "la-sub") not in scripted.clusters, "compensation removed the cluster the run made"
    assert receiver.wait_for(1)[0]["status"] == "canceled"
    assert locks.holder(Settings.from_env().storage_connection, "default", "la-sub") is None
    again = api.delete(f"/api/subscriptions/{operation}")
    assert again.status_code == 200  # Logic Apps may unsubscribe after the run ended: nothing to do


def test_cancel_route_and_its_refusals(api: httpx.Client, scripted: ScriptedPlatform) -> None:
    scripted.polls_until_ready = None
    started = api.post("/api/clusters", json={**SPEC, "name": "la-cancel"})
    location = started.headers["Location"]
    wait_for_step(api, location, "synchronous standby")
    answer = api.post(f"{location}/cancel")
    assert answer.status_code == 202 and answer.headers["Location"] == location
    assert follow(api, location, timeout=30).json()["code"] == "OperationCanceled"
    assert api.post(f"{location}/cancel").status_code == 409
    assert api.post("/api/operations/nope/cancel").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"operation": "explode", "callbackUrl": "http://127.0.0.1:9/x"}, "operation"),
    ({"operation": "deploy", "request": SPEC}, "callbackUrl"),
    ({"operation": "restore", "cluster": "Not_A_Name", "callbackUrl": "http://127.0.0.1:9/x"}, "name"),
    ({"operation": "deploy", "request": [], "callbackUrl": "http://127.0.0.1:9/x"}, "request"),
    ({"operation": "deploy", "extra": 1, "callbackUrl": "http://127.0.0.1:9/x"}, "extra"),
])
def test_bad_subscriptions_name_the_field(api: httpx.Client, scripted: ScriptedPlatform, body: dict,
                                          field: str) -> None:
    answer = api.post("/api/subscriptions", json=body)
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["field"] == field


PROTECTED = [
    ("POST", "/api/clusters"), ("GET", "/api/clusters/x"), ("DELETE", "/api/clusters/x"),
    ("POST", "/api/clusters/x/backups"), ("POST", "/api/clusters/x/restores"),
    ("POST", "/api/clusters/x/drills/failover"), ("POST", "/api/clusters/x/switchover"), ("POST", "/api/alerts"),
    ("GET", "/api/operations/x"),
    ("GET", "/api/operations/x/report"), ("POST", "/api/operations/x/approve"), ("POST", "/api/operations/x/reject"),
    ("POST", "/api/operations/x/cancel"), ("POST", "/api/subscriptions"), ("DELETE", "/api/subscriptions/x"),
    ("DELETE", "/api/subscriptions"),
    ("GET", "/api/openapi.json"), ("GET", "/runtime/webhooks/durabletask/instances/x"),
]


def test_every_protected_route_wants_the_key(devhost: object, scripted: ScriptedPlatform) -> None:
    url = devhost.url  # type: ignore[attr-defined]
    with httpx.Client(base_url=url, timeout=30) as anonymous:
        for method, path in PROTECTED:
            for headers, params in (({}, {}), ({"x-functions-key": "wrong"}, {}), ({}, {"code": "wrong"})):
                answer = anonymous.request(method, path, headers=headers, params=params)
                assert answer.status_code == 401, (method, path, answer.status_code)
                assert answer.json()["code"] == "Unauthorized"
        key = devhost.key  # type: ignore[attr-defined]
        assert anonymous.get("/api/operations/x", params={"code": key}).status_code == 404  # the key as ?code=
        assert anonymous.get("/api/health").status_code == 200  # the one anonymous route
    assert scripted.calls == {}


def test_unsubscribe_by_callback_url_finds_the_run(
    api: httpx.Client, scripted: ScriptedPlatform, receiver: Receiver
) -> None:
    scripted.polls_until_ready = None
    callback = f"{receiver.url}/workflows/w/runs/r/actions/a/run?sig=S3CRET"
    subscribed = api.post("/api/subscriptions", json={
        "operation": "deploy", "request": {**SPEC, "name": "la-unsub"}, "callbackUrl": callback})
    assert subscribed.status_code == 201, subscribed.text
    status_uri = subscribed.json()["statusQueryGetUri"]
    wait_for_step(api, status_uri, "synchronous standby")
    cancelled = api.request("DELETE", "/api/subscriptions", json={"callbackUrl": callback})
    assert cancelled.status_code == 202 and cancelled.json()["id"] == subscribed.json()["id"]
    assert follow(api, status_uri, timeout=30).json()["code"] == "OperationCanceled"
    unknown = api.request("DELETE", "/api/subscriptions", json={"callbackUrl": f"{receiver.url}/other"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "callbackUrl"


def test_a_run_that_does_not_stop_is_terminated_after_the_deadline_and_compensated(
    api: httpx.Client, devhost: Any, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import azure.durable_functions as df

    from triggers.terminations import terminate_overdue

    monkeypatch.setenv("PGHA_CANCEL_TIMEOUT_SECONDS", "1")
    scripted.delays["apply_cluster"] = 6  # the step a cooperative cancel has to wait for
    receiver = Receiver()
    started = api.post("/api/clusters", json={**SPEC, "name": "la-stuck", "callbackUrl": f"{receiver.url}/hook"})
    location, operation = started.headers["Location"], started.json()["id"]
    wait_for_step(api, location, "apply cluster")
    assert api.post(f"{location}/cancel").status_code == 202
    client = df.DurableOrchestrationClient(devhost.server.starter_binding())

    def sweep() -> list[str]:  # what the periodic timer does, on the devhost's loop as its timers run
        return asyncio.run_coroutine_threadsafe(terminate_overdue(client), devhost.server.loop).result(30)

    assert sweep() == [], "not yet past its deadline"
    time.sleep(1.2)
    assert sweep() == [operation]
    done = follow(api, location, timeout=10)
    assert done.status_code == 422 and done.json()["code"] == "OperationCanceled"
    assert "terminated" in done.json()["report"]["error"]
    compensation = follow(api, location.replace(operation, f"{operation}-compensate"), timeout=30)
    assert compensation.status_code == 200, compensation.text
    assert "DELETE /api/clusters" in step(compensation.json(), "cluster")["detail"]
    assert locks.holder(Settings.from_env().storage_connection, "default", "la-stuck") is None
    assert sweep() == []  # forgotten once done
    assert receiver.wait_for(1)[0]["status"] == "canceled", "the caller's webhook heard of it"
    receiver.shutdown()


def test_a_caller_using_the_code_query_follows_locations_with_it(devhost: Any, scripted: ScriptedPlatform) -> None:
    with httpx.Client(base_url=devhost.url, timeout=30) as by_query:
        started = by_query.post("/api/clusters", params={"code": devhost.key}, json={**SPEC, "name": "la-code"})
        assert started.status_code == 202, started.text
        assert started.headers["Location"].endswith(f"?code={devhost.key}")
        done = follow(by_query, started.headers["Location"])  # no header: the key rides in the Location
        assert done.status_code == 200


def test_storage_failure_is_a_503_in_the_error_shape(api: httpx.Client, scripted: ScriptedPlatform,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    from shared import locks as lock_module

    def unreachable(*args: object, **kwargs: object) -> None:
        raise ServiceRequestError("storage unreachable")

    monkeypatch.setattr(lock_module, "holder", unreachable)
    answer = api.post("/api/clusters", json={**SPEC, "name": "la-storage"})
    assert answer.status_code == 503 and answer.json()["code"] == "Unavailable"
    assert "ServiceRequestError" in answer.json()["message"]
