"""A cluster that cannot become ready without a person ends a run's wait at once, quoting why (issue 12, item 2):
the `aks` adapter's ClusterStatus.failure on CNPG's unrecoverable phase, an instance crash-looping past
PGHA_CRASHLOOP_RESTARTS, and a bootstrap Job that failed for good — each played by ScriptedOperator as
CNPG and Kubernetes do it (scripted_operator.py says where from). The run compensates as after any failure.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared import status as st
from shared.platforms.aks.platform import AksPlatform
from shared.restore import restore_spec
from shared.spec import ClusterSpec, parse_spec
from tests.conftest import follow, step
from tests.contract.fake_kube import FakeKubeApi
from tests.contract.installed import pgha_role
from tests.contract.scripted_operator import NO_POD_ALIVE, ScriptedOperator

NS = "aks-e2e"
READY_TIMEOUT = 600  # PGHA_READY_TIMEOUT_SECONDS' default: each wait below ends long before it


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "instances": 1, "synchronousReplicas": 0, "sampleData": False, **extra}


def deploy_failed(api: httpx.Client, kube_api: FakeKubeApi, name: str) -> dict[str, Any]:
    """A deploy with only deploy's permissions, failed: its report."""
    kube_api.rbac = pgha_role(only="deploy")
    started = api.post("/api/clusters", json=body(name))
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"], timeout=120)
    assert done.status_code == 422, done.text
    return done.json()["report"]


def left_of(kube_api: FakeKubeApi, name: str) -> list[str]:
    """What the API server still holds of the cluster: the Cluster, and whatever carries its label."""
    return [path for path, obj in kube_api.objects.items()
            if path.endswith(f"/clusters/{name}")
            or ((obj.get("metadata") or {}).get("labels") or {}).get("cnpg.io/cluster") == name]


def assert_failed_fast_and_compensated(report: dict[str, Any], kube_api: FakeKubeApi, name: str,
                                       polls: int) -> str:
    wait = step(report, "wait ready")
    assert wait["outcome"] == "failed"
    assert wait["detail"].startswith("cannot succeed: "), wait["detail"]
    assert wait["data"]["polls"] == polls, "the wait ends on the poll that first shows the sign"
    assert wait["durationSeconds"] < READY_TIMEOUT / 10
    assert report["error"].startswith("wait ready: cannot succeed: ")
    assert step(report, "delete cluster")["outcome"] == "done"
    assert step(report, "volumes released")["outcome"] == "done"
    assert step(report, "delete app-user secret")["outcome"] == "done"
    assert left_of(kube_api, name) == []
    assert kube_api.get(f"/api/v1/namespaces/{NS}/secrets/db-user-pass") is None
    return wait["detail"]


def test_a_bootstrap_job_that_failed_ends_the_deploy(api: httpx.Client, on_aks: AksPlatform,
                                                     kube_api: FakeKubeApi, operator: ScriptedOperator) -> None:
    """initdb's Job fails pod after pod (backoffLimit 6, some 10 minutes of back-off before Failed=True): the
    poll that sees PGHA_CRASHLOOP_RESTARTS (3) failed pods ends the wait, long before CNPG's own verdict."""
    operator.failing_bootstrap.add("pg-job")
    report = deploy_failed(api, kube_api, "pg-job")
    detail = assert_failed_fast_and_compensated(report, kube_api, "pg-job", polls=3)
    assert detail == "cannot succeed: initdb job pg-job-1-initdb: 3 pods failed"
    assert kube_api.calls("GET", f"/apis/batch/v1/namespaces/{NS}/jobs"), "read with deploy's permissions"


def test_an_instance_crash_looping_ends_the_deploy(api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi,
                                                   operator: ScriptedOperator) -> None:
    """Restarts 1 and 2 are routine; at PGHA_CRASHLOOP_RESTARTS (3) the wait ends, quoting the last exit."""
    operator.crashlooping.add("pg-loop")
    report = deploy_failed(api, kube_api, "pg-loop")
    detail = assert_failed_fast_and_compensated(report, kube_api, "pg-loop", polls=3)
    assert detail == ("cannot succeed: pod pg-loop-1 container postgres in CrashLoopBackOff after 3 restarts; "
                      "last exit: Error (exit code 1)")


def test_the_crash_loop_threshold_is_a_setting(api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi,
                                               operator: ScriptedOperator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHA_CRASHLOOP_RESTARTS", "5")
    operator.crashlooping.add("pg-loop5")
    report = deploy_failed(api, kube_api, "pg-loop5")
    detail = assert_failed_fast_and_compensated(report, kube_api, "pg-loop5", polls=5)
    assert "after 5 restarts" in detail


def test_the_unrecoverable_phase_ends_the_deploy(api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi,
                                                 operator: ScriptedOperator) -> None:
    operator.unrecoverable["pg-lost"] = NO_POD_ALIVE
    report = deploy_failed(api, kube_api, "pg-lost")
    detail = assert_failed_fast_and_compensated(report, kube_api, "pg-lost", polls=1)
    assert detail == f"cannot succeed: CNPG: {st.UNRECOVERABLE}: {NO_POD_ALIVE.strip()}"


def test_a_restore_whose_recovery_job_fails_says_which(aks: AksPlatform, kube_api: FakeKubeApi,
                                                       operator: ScriptedOperator) -> None:
    """A restore's first instance comes from a full-recovery Job (CreatePrimaryJobViaRecovery): its failure is
    read the same way, with restore's permissions; then CNPG's unrecoverable phase names the Job too."""
    source = ClusterSpec.model_validate(aks.preflight(parse_spec(body("pg-src"))).data["spec"])
    aks.apply_cluster(source)
    target = restore_spec(source, "pg-src-r1", 1, None, None)
    operator.failing_bootstrap.add(target.name)
    kube_api.rbac = pgha_role(only="restore")
    aks.apply_cluster(target)
    seen = [aks.cluster_status(NS, target.name) for _ in range(8)]
    assert [s.failure for s in seen[:2]] == [None] * 2, "a pod or two failing is routine"
    assert seen[2].failure == "full-recovery job pg-src-r1-1-full-recovery: 3 pods failed"
    assert seen[6].phase == st.SETTING_UP_PRIMARY
    assert seen[6].failure == ("full-recovery job pg-src-r1-1-full-recovery failed: BackoffLimitExceeded: Job has "
                               "reached the specified backoff limit")
    assert seen[7].phase == st.UNRECOVERABLE
    assert seen[7].phase_reason.startswith("Instance creation failed for the following jobs: "
                                           "pg-src-r1-1-full-recovery.")
    assert seen[7].failure is not None and seen[7].failure.startswith(f"CNPG: {st.UNRECOVERABLE}: Instance creation")
    assert seen[7].failure.endswith("; " + seen[6].failure)
    kube_api.rbac = pgha_role(only="teardown")
    aks.delete_cluster(NS, target.name)
    assert left_of(kube_api, target.name) == []


def test_routine_states_never_fail(aks: AksPlatform, kube_api: FakeKubeApi, operator: ScriptedOperator) -> None:
    """A three-instance cluster coming up, failing over and back: each look has a phase, none a failure."""
    cluster = ClusterSpec.model_validate(aks.preflight(parse_spec(body("pg-ok", instances=3, synchronousReplicas=1,
                                                                        drills={"enabled": True}))).data["spec"])
    aks.apply_cluster(cluster)
    looks = [aks.cluster_status(NS, "pg-ok") for _ in range(3)]
    aks.delete_primary(cluster, "crash")
    looks += [aks.cluster_status(NS, "pg-ok") for _ in range(4)]
    assert {s.phase for s in looks} >= {st.CREATING_REPLICA, st.HEALTHY, st.FAILING_OVER, st.WAITING_FOR_INSTANCES}
    assert [s.failure for s in looks] == [None] * len(looks)
    assert any(s.phase_reason.startswith("Failing over from pg-ok-1") for s in looks)
