"""rotate_credentials on the durable engine with the scripted platform: every cluster sharing the secret is
covered; a rotation that fails before its new password is proven puts the old one back on every cluster, so
the applications keep logging in with what the secret says; a cluster busy elsewhere refuses it. The real
logins are proven on the real stack (tests/integration/test_updates_local.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared import locks
from shared.outcome import Outcome
from shared.platforms import installed
from shared.settings import Settings
from shared.spec import ClusterSpec, parse_spec
from tests.conftest import follow, report_of, step
from tests.scripted_platform import ScriptedPlatform

URL = "/api/clusters/pg-a/credentials/rotate"


@pytest.fixture()
def two_clusters() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform(polls_until_ready=1)) as platform:
        for name in ("pg-a", "pg-b", "pg-c"):  # pg-c has a secret of its own
            spec = parse_spec({"name": name, "instances": 1, "synchronousReplicas": 0,
                               "bootstrap": {"secretName": "other-pass" if name == "pg-c" else "db-user-pass"}})
            platform.clusters[(spec.namespace, spec.name)] = spec
        yield platform


def rotate(api: httpx.Client) -> httpx.Response:
    started = api.post(URL, json={})
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"])


def test_every_cluster_of_the_secret_gets_the_new_password(api: httpx.Client, two_clusters: ScriptedPlatform) -> None:
    done = rotate(api)
    assert done.status_code == 200, done.text
    assert done.json()["result"]["clusters"] == ["pg-a", "pg-b"]
    keys = two_clusters.app_keys[("default", "db-user-pass")]
    assert set(keys) == {"password"} and keys["password"] != "first"
    assert two_clusters.role_passwords == {("default", "pg-a"): keys["password"], ("default", "pg-b"): keys["password"]}
    assert keys["password"] not in done.text
    assert locks.holder(Settings.from_env().storage_connection, "default", "pg-b") is None  # its lock given back


def test_a_failure_before_the_proof_puts_the_old_password_back(api: httpx.Client,
                                                               two_clusters: ScriptedPlatform) -> None:
    calls = {"n": 0}
    original = two_clusters.set_owner_password

    def second_fails(spec: ClusterSpec, which: str) -> Outcome:  # pg-a takes the new password, pg-b's ALTER ROLE fails
        calls["n"] += 1
        if calls["n"] in (2, 3, 4):  # the step's attempts on pg-b
            raise RuntimeError("scripted failure on pg-b")
        return original(spec, which)

    two_clusters.set_owner_password = second_fails  # type: ignore[method-assign]
    done = rotate(api)
    assert done.status_code == 422, done.text
    report = report_of(done)
    assert step(report, "set password on pg-b")["outcome"] == "failed"
    assert step(report, "restore previous password")["outcome"] in ("done", "unchanged")
    assert report["result"]["reverted"] is True
    keys = two_clusters.app_keys[("default", "db-user-pass")]
    assert keys == {"password": "first"}  # the staged password dropped
    assert two_clusters.role_passwords[("default", "pg-a")] == "first"  # set back where it had changed


def test_a_cluster_busy_elsewhere_refuses_the_rotation(api: httpx.Client, two_clusters: ScriptedPlatform) -> None:
    connection = Settings.from_env().storage_connection
    assert locks.try_acquire(connection, "default", "pg-b", "someone-else", "failover_drill")
    try:
        done = rotate(api)
    finally:
        locks.release(connection, "default", "pg-b", "someone-else")
    assert done.status_code == 422
    assert "pg-b is busy with failover_drill someone-else" in step(report_of(done), "pre-flight")["detail"]
    assert two_clusters.calls["stage_app_password"] == 0


def test_a_rotation_terminated_mid_way_is_settled_by_its_compensation(
        api: httpx.Client, devhost: Any, two_clusters: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while a role's ALTER hangs, then terminated past the deadline: the compensation makes every
    role answer to the password the secret holds, drops the staged one and gives back pg-b's lock."""
    import asyncio
    import time

    import azure.durable_functions as df

    from triggers.terminations import terminate_overdue

    monkeypatch.setenv("PGHA_CANCEL_TIMEOUT_SECONDS", "1")
    two_clusters.delays["set_owner_password"] = 3  # the step a cooperative cancel has to wait for
    started = api.post(URL, json={})
    location, operation = started.headers["Location"], started.json()["id"]
    deadline = time.monotonic() + 30
    while two_clusters.calls["set_owner_password"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.post(f"{location}/cancel").status_code == 202
    client = df.DurableOrchestrationClient(devhost.server.starter_binding())
    time.sleep(1.2)
    assert asyncio.run_coroutine_threadsafe(terminate_overdue(client), devhost.server.loop).result(30) == [operation]
    two_clusters.delays.clear()
    compensation = follow(api, location.replace(operation, f"{operation}-compensate"), timeout=30)
    assert compensation.status_code == 200, compensation.text
    keys = two_clusters.app_keys[("default", "db-user-pass")]
    assert set(keys) == {"password"}  # nothing staged or kept behind
    assert {two_clusters.role_passwords.get(("default", n)) for n in ("pg-a", "pg-b")} == {keys["password"]}
    assert locks.holder(Settings.from_env().storage_connection, "default", "pg-b") is None
