"""update_cluster's refusals on the durable engine, over HTTP, with the scripted platform: a refused pre-flight
(an unhealthy cluster, a change the platform cannot make) ends in a report with nothing applied and the cluster
free; a dry run starts nothing. The rolling update itself is proven on the real stack
(tests/integration/test_updates_local.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.platforms import installed
from shared.spec import parse_spec
from tests.conftest import follow, report_of, step
from tests.scripted_platform import ScriptedPlatform

URL = "/api/clusters/pg-up"
RESTART = {"postgresql": {"parameters": {"max_connections": "200"}}}


def scripted_cluster(polls_until_ready: int | None) -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform(polls_until_ready=polls_until_ready)) as platform:
        spec = parse_spec({"name": "pg-up", "instances": 3, "synchronousReplicas": 1})
        platform.clusters[(spec.namespace, spec.name)] = spec
        yield platform


@pytest.fixture()
def unhealthy() -> Iterator[ScriptedPlatform]:
    yield from scripted_cluster(None)


@pytest.fixture()
def healthy() -> Iterator[ScriptedPlatform]:
    yield from scripted_cluster(1)


def refused(api: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    started = api.patch(URL, json=body)
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"])
    assert done.status_code == 422, done.text
    return report_of(done)


def test_an_unhealthy_cluster_is_refused_with_nothing_applied(api: httpx.Client, unhealthy: ScriptedPlatform) -> None:
    report = refused(api, RESTART)
    refusal = step(report, "pre-flight")
    assert "update refused" in refusal["detail"] and "1/3 instances ready" in refusal["detail"], refusal
    assert [s["name"] for s in report["steps"]] == ["read cluster spec", "pre-flight"]
    assert unhealthy.calls["apply_cluster"] == 0 and unhealthy.restarted == []
    stored = unhealthy.clusters[("default", "pg-up")]
    assert "max_connections" not in stored.postgresql.parameters
    assert refused(api, RESTART)["status"] == "failed"  # the lock went with the run: a second one starts


def test_a_change_the_platform_cannot_make_is_refused_with_its_reason(api: httpx.Client,
                                                                      healthy: ScriptedPlatform) -> None:
    healthy.refuse = {"rolling": "not on this platform"}
    report = refused(api, RESTART)
    assert "postgresql.parameters.max_connections: not on this platform" in step(report, "pre-flight")["detail"]
    assert healthy.calls["apply_cluster"] == 0 and healthy.calls["start_backup"] == 0


def test_a_dry_run_starts_nothing(api: httpx.Client, healthy: ScriptedPlatform) -> None:
    answer = api.patch(URL, params={"dryRun": "true"}, json={**RESTART, "instances": 4})
    assert answer.status_code == 200, answer.text
    assert {c["field"]: c["kind"] for c in answer.json()["changes"]} == {
        "instances": "scale", "postgresql.parameters.max_connections": "rolling"}
    assert healthy.calls["apply_cluster"] == 0 and healthy.calls["restart_instance"] == 0
    healthy.refuse = {"scale": "not here"}  # what the run's pre-flight would refuse, said before any run
    assert api.patch(URL, params={"dryRun": "true"}, json={"instances": 4}).json()["refused"] == [
        "instances: not here"]
    assert "operation" not in api.get(URL).json()


def test_a_major_upgrade_is_planned_from_the_running_major(api: httpx.Client, healthy: ScriptedPlatform) -> None:
    healthy.major = 15
    image = {"imageName": "ghcr.io/cloudnative-pg/postgresql:16.6", "backup": {"serverName": "pg-up-16"}}
    answer = api.patch(URL, params={"dryRun": "true"}, json=image)
    assert [c["kind"] for c in answer.json()["changes"]] == ["major", "major"], answer.text
    healthy.major = 17
    downgrade = api.patch(URL, params={"dryRun": "true"}, json=image)
    assert downgrade.status_code == 400 and downgrade.json()["field"] == "imageName", downgrade.text

