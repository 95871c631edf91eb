"""Runbooks end to end over the `aks` adapter: the devhost's orchestrations → activities → AksPlatform →
the real kubernetes client → FakeKubeApi, with ScriptedOperator playing CNPG's controller.

What needs a database (SQL checks, the write probe) cannot run against a fake API server; these runs
stop short of it or take the branches that need none, and say so.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.platforms.aks.platform import AksPlatform
from shared.spec import ClusterSpec, parse_spec
from tests.conftest import follow, step
from tests.contract.fake_kube import FakeKubeApi
from tests.contract.installed import pgha_role

CLUSTER = "/apis/postgresql.cnpg.io/v1/namespaces/aks-e2e/clusters"


def settled(platform: AksPlatform, body: dict[str, Any]) -> ClusterSpec:
    """The spec as the deploy's pre-flight leaves it (backup.method resolved against the operator)."""
    return ClusterSpec.model_validate(platform.preflight(parse_spec(body)).data["spec"])


def spec(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "aks-e2e", "sampleData": False, "backup": {"schedule": "0 15 * ? * *"},
            "endpoints": {"enabled": True, "sourceRanges": ["203.0.113.10/32"]}, **extra}


def run(api: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    started = api.request(method, url, **kwargs)
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"], timeout=120)


def test_deploy_status_drill_refusal_and_teardown(api: httpx.Client, on_aks: AksPlatform,
                                                  kube_api: FakeKubeApi) -> None:
    """Each runbook with only the permissions access.py lists for it (a call beyond them is a 403)."""
    kube_api.rbac = pgha_role(only="deploy")
    done = run(api, "POST", "/api/clusters", json=spec("pg-one", instances=1, synchronousReplicas=0))
    assert done.status_code == 200, done.text
    report = done.json()
    assert step(report, "wait ready")["outcome"] == "done"
    assert step(report, "operator config")["outcome"] == "skipped"  # ENABLE_AZURE_PVC_UPDATES: gone since 1.26
    assert "ENABLE_AZURE_PVC_UPDATES" in step(report, "operator config")["detail"]
    assert step(report, "pre-flight")["data"]["backupMethod"] == "plugin", "auto: the plugin is installed"
    assert step(report, "backup identity")["outcome"] == "skipped"
    assert step(report, "zone spread")["detail"].startswith("1 instances over 1 zones")
    assert step(report, "WAL archiving")["outcome"] == "done"
    assert step(report, "scheduled backup")["outcome"] == "done"
    assert kube_api.get(f"{CLUSTER}/pg-one") is not None
    assert kube_api.get("/apis/postgresql.cnpg.io/v1/namespaces/aks-e2e/scheduledbackups/pg-one-scheduled")
    status = api.get("/api/clusters/pg-one", params={"namespace": "aks-e2e"}).json()
    assert status["phase"] == "Cluster in healthy state" and status["currentPrimary"] == "pg-one-1"

    kube_api.rbac = pgha_role(only="drill")
    refused = run(api, "POST", "/api/clusters/pg-one/drills/failover", params={"namespace": "aks-e2e"}, json={})
    assert refused.status_code == 422
    assert "no in-sync standby" in refused.json()["message"] and "opted in" in refused.json()["message"]
    assert not kube_api.calls("DELETE", "/pods/"), "a refused drill touches nothing"

    kube_api.rbac = pgha_role(only="teardown")
    gone = run(api, "DELETE", "/api/clusters/pg-one", params={"namespace": "aks-e2e"})
    assert gone.status_code == 200, gone.text
    assert kube_api.get(f"{CLUSTER}/pg-one") is None
    assert not [k for k in kube_api.objects if "persistentvolumeclaims/pg-one" in k]
    assert kube_api.get("/api/v1/namespaces/aks-e2e/configmaps/pgha-retained-pg-one"), "backups kept, and known"
    assert kube_api.get("/api/v1/namespaces/aks-e2e/services/pg-one-lb-rw") is None


def test_a_failed_deploy_removes_what_it_made_on_aks(api: httpx.Client, on_aks: AksPlatform,
                                                      kube_api: FakeKubeApi) -> None:
    """Three instances reach the replica check, which needs SQL: the run fails there and compensates (with
    deploy's own permissions)."""
    kube_api.rbac = pgha_role(only="deploy")
    done = run(api, "POST", "/api/clusters", json=spec("pg-three"))
    assert done.status_code == 422
    report = done.json()["report"]
    assert step(report, "replica check")["outcome"] == "failed"
    assert step(report, "delete cluster")["outcome"] == "done"
    assert kube_api.get(f"{CLUSTER}/pg-three") is None
    assert kube_api.get("/api/v1/namespaces/aks-e2e/secrets/db-user-pass") is None


def test_a_drill_dry_run_on_a_healthy_three_instance_cluster(api: httpx.Client, on_aks: AksPlatform,
                                                             kube_api: FakeKubeApi) -> None:
    cluster = settled(on_aks, spec("pg-drill", drills={"enabled": True}))
    on_aks.apply_cluster(cluster)
    for _ in range(3):
        on_aks.cluster_status("aks-e2e", "pg-drill")  # the operator reconciles on each look
    done = run(api, "POST", "/api/clusters/pg-drill/drills/failover", params={"namespace": "aks-e2e"},
               json={"dryRun": True, "mode": "crash"})
    assert done.status_code == 200, done.text
    assert "in-sync standbys pg-drill-2, pg-drill-3" in step(done.json(), "pre-flight")["detail"]
    assert {s["outcome"] for s in done.json()["steps"][2:]} == {"planned"}
    assert not kube_api.calls("DELETE") and not kube_api.calls("PATCH", "/status")


def test_a_switchover_pre_flight_on_aks_reads_cnpg_status_with_its_own_permissions(
        api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    """The switchover's pre-flight with only the rows access.py lists for it: the primary named as the target
    is refused touching nothing; unnamed, the target is an in-sync standby (the run then needs SQL for its
    write probe, which the doubles have not: it fails there and cleans up, still without a promote)."""
    cluster = settled(on_aks, spec("pg-sw"))
    on_aks.apply_cluster(cluster)
    for _ in range(3):
        on_aks.cluster_status("aks-e2e", "pg-sw")  # the operator reconciles on each look
    kube_api.rbac = pgha_role(only="switchover")
    url = "/api/clusters/pg-sw/switchover"
    refused = run(api, "POST", url, params={"namespace": "aks-e2e"}, json={"target": "pg-sw-1"})
    assert refused.status_code == 422
    assert "pg-sw-1 is the primary already" in step(refused.json()["report"], "pre-flight")["detail"]
    chosen = run(api, "POST", url, params={"namespace": "aks-e2e"}, json={})
    report = chosen.json()["report"]
    assert "promoting pg-sw-2 (in sync, the most advanced in-sync standby)" in step(report, "pre-flight")["detail"]
    assert step(report, "prepare probe")["outcome"] == "failed"
    assert not kube_api.calls("PATCH", "/status") and not kube_api.calls("DELETE")


def test_operator_switchover_and_failover_as_the_drill_drives_them(on_aks: AksPlatform) -> None:
    """The drill's platform steps on their own: delete the primary pod, watch CNPG fail over, promote back."""
    cluster = settled(on_aks, spec("pg-fo", drills={"enabled": True}))
    on_aks.apply_cluster(cluster)
    for _ in range(3):
        on_aks.cluster_status("aks-e2e", "pg-fo")
    assert on_aks.delete_primary(cluster, "crash").data["instance"] == "pg-fo-1"
    phases = [on_aks.cluster_status("aks-e2e", "pg-fo") for _ in range(4)]
    assert phases[0].phase == "Failing over" and phases[0].current_primary is not None
    assert phases[-1].phase == "Cluster in healthy state" and phases[-1].current_primary == "pg-fo-2"
    assert on_aks.promote(cluster, "pg-fo-1").outcome == "done"
    back = [on_aks.cluster_status("aks-e2e", "pg-fo") for _ in range(2)]
    assert back[-1].current_primary == "pg-fo-1" and back[-1].healthy


def test_dry_run_over_http_touches_nothing(api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHA_PLATFORM", "aks")
    unset = api.post("/api/clusters", params={"dryRun": "true"}, json=spec("pg-plan"))
    assert unset.status_code == 422 and "PGHA_AKS_IDENTITY_CLIENT_ID" in unset.json()["message"], unset.text
    monkeypatch.setenv("PGHA_AKS_IDENTITY_CLIENT_ID", "9e3b7c1a-5d2f-4a8e-b6c4-2f1d8e7a9b30")
    answer = api.post("/api/clusters", params={"dryRun": "true"}, json=spec("pg-plan"))
    assert answer.status_code == 200, answer.text
    calls = [entry["call"] for entry in answer.json()["plan"] if entry["call"]]
    assert "PATCH /apis/postgresql.cnpg.io/v1/namespaces/aks-e2e/clusters/pg-plan" in calls
    assert kube_api.requests == [], "nothing was sent to the API server"
    bad = api.post("/api/clusters", params={"dryRun": "true"}, json=spec("pg-plan", instances=42))
    assert bad.status_code == 400 and bad.json()["field"] == "instances"


def test_an_update_on_aks_with_its_own_permissions(api: httpx.Client, on_aks: AksPlatform,
                                                   kube_api: FakeKubeApi) -> None:
    """update_cluster with only the rows access.py lists for it. A major upgrade is refused before anything moves
    while the operator is older than CNPG 1.26 (no in-place pg_upgrade), naming its version; a scale passes the
    pre-flight (CNPG rolls it: pgha watches) and the recovery-point gates (CNPG's status, a WAL switch through
    pods/exec), then needs SQL for its write probe, which the doubles have not: it fails there, having patched
    nothing. The rolling update itself runs over real members in tests/integration/test_aks_adapter_runbooks.py."""
    cluster = settled(on_aks, spec("pg-up"))
    on_aks.apply_cluster(cluster)
    for _ in range(3):
        on_aks.cluster_status("aks-e2e", "pg-up")
    kube_api.rbac = pgha_role(only="update")
    url = "/api/clusters/pg-up"
    before = len(kube_api.calls("PATCH"))
    operator = "/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager"
    manager = kube_api.objects[operator]["spec"]["template"]["spec"]["containers"][0]
    current, manager["image"] = manager["image"], "ghcr.io/cloudnative-pg/cloudnative-pg:1.25.2"
    running = kube_api.get(f"{CLUSTER}/pg-up")["status"]["image"]  # CNPG's default image: PostgreSQL 18
    major = run(api, "PATCH", url, params={"namespace": "aks-e2e"},
                json={"imageName": "ghcr.io/cloudnative-pg/postgresql:19.0-system-trixie",
                      "backup": {"serverName": "pg-up-19"}})
    assert major.status_code == 422 and running.endswith(":18.4-system-trixie")
    refusal = step(major.json()["report"], "pre-flight")["detail"]
    assert "imageName: CNPG 1.25.2 cannot upgrade PostgreSQL's major version in place (CNPG 1.26 and later" in refusal
    manager["image"] = current
    scale = run(api, "PATCH", url, params={"namespace": "aks-e2e"}, json={"instances": 4})
    report = scale.json()["report"]
    assert [s["outcome"] for s in report["steps"][:4]] == ["done"] * 4, report["steps"]
    assert step(report, "pre-flight")["data"]["rolledBy"] == "operator"
    assert step(report, "WAL archived now")["outcome"] == "done"
    assert step(report, "prepare probe")["outcome"] == "failed"
    assert len(kube_api.calls("PATCH")) == before  # nothing applied
    assert on_aks.stored_spec("aks-e2e", "pg-up").instances == 3


def test_a_rotation_moves_the_app_secret_keys_with_its_own_permissions(on_aks: AksPlatform,
                                                                      kube_api: FakeKubeApi) -> None:
    """The rotation's secret steps over the real client with only the rows access.py lists for `rotate`: the
    Secret's data keys moved by merge patches (a removed key sent as null), each step a no-op when done; the
    owner's password is CNPG's to set from the Secret, so pgha leaves the role alone."""
    import base64

    cluster = settled(on_aks, spec("pg-rot"))
    on_aks.ensure_app_secret(cluster)
    kube_api.rbac = pgha_role(only="rotate")

    def keys() -> dict[str, str]:
        data = on_aks.kube.get("v1", "Secret", "aks-e2e", cluster.bootstrap.secret_name)["data"]
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    old = keys()["password"]
    assert on_aks.stage_app_password(cluster).outcome == "done"
    pending = keys()["pending"]
    assert on_aks.stage_app_password(cluster).outcome == "unchanged" and keys()["pending"] == pending
    assert on_aks.set_owner_password(cluster, "pending").outcome == "skipped"
    assert on_aks.commit_app_password(cluster).outcome == "done"
    assert keys() == {"username": cluster.bootstrap.owner, "password": pending, "previous": old}
    assert on_aks.forget_previous_password(cluster).outcome == "done"
    assert keys() == {"username": cluster.bootstrap.owner, "password": pending}
    assert on_aks.revert_app_password(cluster, committed=True).outcome == "unchanged"  # nothing to go back to
    assert on_aks.revert_app_password(cluster, committed=False).outcome == "unchanged"  # nothing staged
    patches = kube_api.calls("PATCH", "/secrets/")
    assert {p.content_type for p in patches} == {"application/merge-patch+json"} and len(patches) == 3
    assert patches[1].body["data"]["pending"] is None  # the commit drops the staged key


def test_drift_is_a_hand_edit_of_a_field_pgha_applies(on_aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    """Only the fields pgha's server-side apply sends are compared: after the apply (and CNPG's webhook filling
    in its defaults) nothing drifts; a `kubectl edit` of one of them does."""
    cluster = settled(on_aks, spec("pg-drift", postgresql={"parameters": {"work_mem": "4MB"}}))
    on_aks.apply_cluster(cluster)
    on_aks.cluster_status("aks-e2e", "pg-drift")
    assert on_aks.drift(cluster) == []
    on_aks.kube.merge_patch("postgresql.cnpg.io/v1", "Cluster", "aks-e2e", "pg-drift",
                            {"spec": {"postgresql": {"parameters": {"work_mem": "64MB"}}, "instances": 4}})
    found = {d.field: (d.held, d.running) for d in on_aks.drift(cluster)}
    assert found == {"postgresql.parameters.work_mem": ("4MB", "64MB"), "instances": (3, 4)}


def test_an_approved_in_place_restart_of_the_primary_is_the_plugins(on_aks: AksPlatform,
                                                                    kube_api: FakeKubeApi) -> None:
    """`kubectl cnpg restart <cluster> <instance>` (internal/cmd/plugin/restart, v1.30.0): the primary is asked
    of CNPG through the status subresource (phase "Primary instance is being restarted in-place", "Requested by
    the user", resourceVersion as the lock), which its instance manager then restarts; a standby's pod is
    deleted for CNPG to recreate."""
    cluster = settled(on_aks, spec("pg-rst"))
    on_aks.apply_cluster(cluster)
    for _ in range(3):
        on_aks.cluster_status("aks-e2e", "pg-rst")
    kube_api.rbac = pgha_role(only="update")
    assert on_aks.restart_instance(cluster, "pg-rst-1").outcome == "done"
    (patch,) = kube_api.calls("PATCH", "/clusters/pg-rst/status")
    asked = patch.body["status"]
    assert (asked["phase"], asked["phaseReason"]) == ("Primary instance is being restarted in-place",
                                                      "Requested by the user")
    ready = next(c for c in asked["conditions"] if c["type"] == "Ready")  # SetClusterReadyCondition
    assert (ready["status"], ready["reason"]) == ("False", "ClusterIsNotReady") and ready["lastTransitionTime"]
    assert patch.body["metadata"]["resourceVersion"]
    assert on_aks.cluster_status("aks-e2e", "pg-rst").phase == "Cluster in healthy state"  # restarted
    kube_api.rbac = pgha_role(only="drill")
    assert on_aks.restart_instance(cluster, "pg-rst-2").outcome == "done"
    assert [c.path.rsplit("/", 1)[1] for c in kube_api.calls("DELETE", "/pods/")] == ["pg-rst-2"]


def test_a_volume_grows_only_where_its_storage_class_allows_it(api: httpx.Client, on_aks: AksPlatform,
                                                              kube_api: FakeKubeApi) -> None:
    """A larger volume is a PVC patch the API server refuses unless the StorageClass sets allowVolumeExpansion:
    the plan says so before anything moves (the dry run and the run's pre-flight weigh it the same way)."""
    cluster = settled(on_aks, spec("pg-vol"))
    on_aks.apply_cluster(cluster)
    kube_api.rbac = pgha_role(only="update")
    grow = {"storage": {"size": "8Gi"}}
    plan = api.patch("/api/clusters/pg-vol", params={"namespace": "aks-e2e", "dryRun": "true"}, json=grow).json()
    assert [c["kind"] for c in plan["changes"]] == ["storage"] and plan["refused"] == []
    kube_api.objects[f"/apis/storage.k8s.io/v1/storageclasses/{cluster.storage.storage_class}"][
        "allowVolumeExpansion"] = False
    plan = api.patch("/api/clusters/pg-vol", params={"namespace": "aks-e2e", "dryRun": "true"}, json=grow).json()
    assert plan["refused"] == [f"storage.size: StorageClass {cluster.storage.storage_class} does not allow volume "
                               "expansion (allowVolumeExpansion): the API server refuses a larger PVC; restore into "
                               "a new cluster with bigger volumes instead"]
    assert not kube_api.calls("PATCH", "/persistentvolumeclaims/")
