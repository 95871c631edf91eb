"""switchover_cluster's refusals on the durable engine, over HTTP, with the scripted platform: a bad target
is a 400 naming it, an unknown cluster a 404, an unhealthy cluster a refused run that touches nothing and
frees the cluster. The switchover itself is proven on the real stack (tests/integration/test_drills_local.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.platforms import installed
from shared.spec import parse_spec
from tests.conftest import follow, report_of, step
from tests.scripted_platform import ScriptedPlatform


@pytest.fixture()
def scripted() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform(polls_until_ready=None)) as platform:  # never healthy
        spec = parse_spec({"name": "pg-sw", "instances": 3, "synchronousReplicas": 1})
        platform.clusters[(spec.namespace, spec.name)] = spec
        yield platform


def test_bad_targets_and_unknown_clusters_are_refused_before_any_run(api: httpx.Client,
                                                                     scripted: ScriptedPlatform) -> None:
    for body, field in (({"target": "pg-sw-9"}, "target"), ({"target": "Not An Instance"}, "target"),
                        ({"target": 3}, "target"), ({"sideways": True}, "sideways")):
        answer = api.post("/api/clusters/pg-sw/switchover", json=body)
        assert answer.status_code == 400 and answer.json()["field"] == field, (body, answer.text)
    assert api.post("/api/clusters/pg-none/switchover", json={}).status_code == 404
    assert scripted.calls["promote"] == 0


def test_an_unhealthy_cluster_is_refused_with_the_reason_and_left_free(api: httpx.Client,
                                                                       scripted: ScriptedPlatform) -> None:
    started = api.post("/api/clusters/pg-sw/switchover", json={"target": "pg-sw-2"})
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"])
    assert done.status_code == 422
    report = report_of(done)
    refusal = step(report, "pre-flight")
    assert refusal["outcome"] == "failed" and "switchover refused" in refusal["detail"]
    assert "1/3 instances ready" in refusal["detail"] and "pg-sw-2 is not an in-sync standby" in refusal["detail"]
    assert [s["name"] for s in report["steps"]] == ["read cluster spec", "pre-flight"]
    assert scripted.calls["promote"] == 0
    again = api.post("/api/clusters/pg-sw/switchover", json={})  # the lock went with the run
    assert again.status_code == 202, again.text
    assert follow(api, again.headers["Location"]).status_code == 422
