"""The `aks` adapter's Kubernetes calls, through the real kubernetes client, against FakeKubeApi:
each call's method, path, query, content type and body, and CNPG's status JSON read back."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shared import status as st
from shared.platform import PreflightFailed
from shared.platforms.aks import cnpg
from shared.platforms.aks.kube import KubeError
from shared.platforms.aks.manifests import DNS_LABEL
from shared.platforms.aks.platform import SPEC_ANNOTATION, AksPlatform
from shared.spec import ClusterSpec, parse_spec
from tests.contract.fake_kube import FakeKubeApi

CNPG_FIXTURES = Path(__file__).parent / "fixtures" / "cnpg"
SPEC = parse_spec({"name": "pg1", "namespace": "db", "instances": 3, "backup": {"method": "barmanObjectStore"},
                   "endpoints": {"enabled": True, "sourceRanges": ["203.0.113.10/32"], "dnsLabel": "a3f9c2e71b0",
                                 "publicIpName": "aks-primary-pip"}})
CLUSTERS = "/apis/postgresql.cnpg.io/v1/namespaces/db/clusters"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((CNPG_FIXTURES / name).read_text())


def pod(name: str, role: str, ready: bool = True, node: str = "") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "db", "labels": {
        "cnpg.io/cluster": "pg1", "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role}},
        "spec": {"nodeName": node}, "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"}]}}


def with_cluster(api: FakeKubeApi, name: str = "cluster-healthy.json", spec: ClusterSpec = SPEC) -> None:
    body = fixture(name)
    body["metadata"]["annotations"] = {SPEC_ANNOTATION: json.dumps(spec.dump())}
    api.put(f"{CLUSTERS}/pg1", body)
    roles = {"pg1-1": "primary", "pg1-2": "replica", "pg1-3": "replica"}
    for pod_name, role in roles.items():
        api.put(f"/api/v1/namespaces/db/pods/{pod_name}", pod(pod_name, role, node=f"aks-node-{pod_name[-1]}"))


def test_requests_carry_the_kubeconfig_token(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    aks.cluster_status("db", "pg1")
    assert kube_api.requests and all(r.authorization == "Bearer test-token" for r in kube_api.requests)


def test_namespace_and_secret_are_created_once(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    assert aks.ensure_namespace(SPEC).outcome == "done"
    assert aks.ensure_namespace(SPEC).outcome == "unchanged"
    made = aks.ensure_app_secret(SPEC, created_by="deploy-db-pg1-1")
    again = aks.ensure_app_secret(SPEC, created_by="deploy-db-pg1-2")
    assert made.outcome == "done" and again.outcome == "unchanged" and again.data["createdBy"] == "deploy-db-pg1-1"
    (first, second) = kube_api.calls("POST", "/secrets")
    assert first.path == "/api/v1/namespaces/db/secrets"
    assert first.query == {"fieldManager": "pgha", "fieldValidation": "Strict"}
    secret = kube_api.get("/api/v1/namespaces/db/secrets/db-user-pass")
    assert secret is not None and secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["username"]) == b"app"
    assert len(base64.b64decode(secret["data"]["password"])) >= 24
    assert second.body["data"]["password"] != secret["data"]["password"], "the second password was not kept"
    assert "password" not in json.dumps(made.dump()) + json.dumps(again.dump()).replace('"detail"', "")


def test_apply_is_server_side_apply_with_the_spec_kept(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    plugin = SPEC.model_copy(update={"backup": SPEC.backup.model_copy(update={"method": "plugin"})})
    assert aks.apply_cluster(plugin).detail.endswith("created (3 instances)")
    store, cluster = kube_api.calls("PATCH")
    assert store.path == "/apis/barmancloud.cnpg.io/v1/namespaces/db/objectstores/pg1"
    assert cluster.path == f"{CLUSTERS}/pg1"
    for call in (store, cluster):
        assert call.content_type == "application/apply-patch+yaml"
        assert call.query == {"fieldManager": "pgha", "force": "true", "fieldValidation": "Strict"}
    assert cluster.body["kind"] == "Cluster" and cluster.body["spec"]["plugins"][0]["isWALArchiver"] is True
    assert aks.stored_spec("db", "pg1") == plugin
    assert aks.apply_cluster(plugin).detail.endswith("updated (3 instances)")


@pytest.mark.parametrize(("name", "phase", "primary", "ready", "archiving"), [
    ("cluster-healthy.json", st.HEALTHY, "pg1-1", 3, "True"),
    ("cluster-failing-over.json", st.FAILING_OVER, "pg1-1", 2, "True"),
    ("cluster-failover-pending.json", st.FAILING_OVER, "pg1-1", 2, "True"),
    ("cluster-switchover.json", st.SWITCHOVER, "pg1-1", 3, "True"),
    ("cluster-archiving-failing.json", st.HEALTHY, "pg1-1", 3, "False"),
    ("cluster-backup-failed.json", st.HEALTHY, "pg1-1", 3, "True"),
])
def test_cnpg_status_is_read_in_its_own_words(aks: AksPlatform, kube_api: FakeKubeApi, name: str, phase: str,
                                              primary: str, ready: int, archiving: str) -> None:
    with_cluster(kube_api, name)
    status = aks.cluster_status("db", "pg1")
    assert status.phase == phase and status.current_primary == primary and status.ready_instances == ready
    assert status.condition("ContinuousArchiving").status == archiving  # type: ignore[union-attr]
    assert [i.role for i in status.instances_status] == ["primary", "standby", "standby"]
    assert status.healthy == (phase == st.HEALTHY)
    pods_call = kube_api.calls("GET", "/pods")[-1]
    assert pods_call.query["labelSelector"] == "cnpg.io/cluster=pg1,cnpg.io/podRole=instance"
    if phase == st.HEALTHY:  # minSyncReplicas/maxSyncReplicas: CNPG writes `ANY 1 (…)`, so both are quorum
        assert {i.sync_state for i in status.instances_status if i.role == "standby"} == {"quorum"}
        assert status.first_recoverability_point == "2026-11-19T00:05:02Z"


def test_failover_pending_is_no_primary_yet() -> None:
    body = fixture("cluster-failover-pending.json")
    assert cnpg.cluster_status("db", "pg1", body).target_primary == "pending"
    body["status"]["currentPrimary"] = "pending"
    assert cnpg.cluster_status("db", "pg1", body).current_primary is None


def test_backup_failed_condition_and_plugin_recovery_window(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with_cluster(kube_api, "cluster-backup-failed.json")
    failed = aks.cluster_status("db", "pg1").condition("LastBackupSucceeded")
    assert failed is not None and failed.status == "False" and "missing container" in failed.message
    plugin = SPEC.model_copy(update={"backup": SPEC.backup.model_copy(update={"method": "plugin"})})
    with_cluster(kube_api, "cluster-healthy.json", plugin)
    kube_api.objects[f"{CLUSTERS}/pg1"]["status"].pop("firstRecoverabilityPoint")  # not set for plugins
    kube_api.put("/apis/barmancloud.cnpg.io/v1/namespaces/db/objectstores/pg1", fixture("objectstore.json"))
    assert aks.cluster_status("db", "pg1").first_recoverability_point == "2026-11-19T00:05:02Z"


def test_backups_are_created_and_read_with_their_phases(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    started = aks.start_backup(SPEC, "pg1-ondemand")
    assert started.phase == "pending"
    (create,) = kube_api.calls("POST", "/backups")
    assert create.path == "/apis/postgresql.cnpg.io/v1/namespaces/db/backups"
    assert create.body["spec"] == {"method": "barmanObjectStore", "cluster": {"name": "pg1"}}
    assert create.body["metadata"]["labels"] == {"cnpg.io/cluster": "pg1"}
    aks.start_backup(SPEC, "pg1-ondemand")  # a redelivered activity finds the same Backup
    kube_api.put("/apis/postgresql.cnpg.io/v1/namespaces/db/backups/pg1-ondemand", fixture("backup-completed.json"))
    done = aks.get_backup("db", "pg1", "pg1-ondemand")
    assert (done.phase, done.backup_id, done.begin_wal, done.instance) == (
        "completed", "20261126T000502", "000000010000000000000012", "pg1-2")
    kube_api.put("/apis/postgresql.cnpg.io/v1/namespaces/db/backups/pg1-ondemand", fixture("backup-failed.json"))
    failed = aks.get_backup("db", "pg1", "pg1-ondemand")
    assert failed.phase == "failed" and "missing container" in (failed.error or "")


@pytest.mark.parametrize(("mode", "grace"), [("graceful", 1), ("crash", 0)])
def test_delete_primary_pod(aks: AksPlatform, kube_api: FakeKubeApi, mode: str, grace: int) -> None:
    with_cluster(kube_api)
    outcome = aks.delete_primary(SPEC, mode)
    assert outcome.data["instance"] == "pg1-1"
    (call,) = kube_api.calls("DELETE")
    assert call.path == "/api/v1/namespaces/db/pods/pg1-1" and call.body["gracePeriodSeconds"] == grace
    selector = kube_api.calls("GET", "/pods")[-1].query["labelSelector"]
    assert selector == "cnpg.io/cluster=pg1,cnpg.io/instanceRole=primary"


def test_promote_patches_the_status_with_an_optimistic_lock(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with_cluster(kube_api)
    kube_api.failures.append(("PATCH", "/clusters/pg1/status", 409))  # someone changed it meanwhile
    assert aks.promote(SPEC, "pg1-2").outcome == "done"
    _, second = kube_api.calls("PATCH", "/status")
    assert second.path == f"{CLUSTERS}/pg1/status" and second.content_type == "application/merge-patch+json"
    current = kube_api.get(f"{CLUSTERS}/pg1")
    assert current is not None and current["status"]["targetPrimary"] == "pg1-2"
    assert current["status"]["phase"] == "Switchover in progress"
    assert current["status"]["phaseReason"] == "Switching over to pg1-2"
    assert second.body["metadata"]["resourceVersion"]
    assert aks.promote(SPEC, "pg1-2").outcome == "unchanged"
    with pytest.raises(RuntimeError, match="pg1-9 not found"):
        aks.promote(SPEC, "pg1-9")


def test_stale_resource_version_is_a_conflict(kube_api: FakeKubeApi, aks: AksPlatform) -> None:
    with_cluster(kube_api)
    with pytest.raises(KubeError) as raised:
        aks.kube.patch_status("postgresql.cnpg.io/v1", "Cluster", "db", "pg1",
                              {"metadata": {"resourceVersion": "1"}, "status": {"targetPrimary": "pg1-3"}})
    assert raised.value.status == 409


def operator(available: bool) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cnpg-controller-manager",
            "namespace": "cnpg-system"}, "status": {"availableReplicas": 1 if available else 0, "conditions": [
                {"type": "Available", "status": "True" if available else "False"}]}}


def test_operator_down_is_restarted_by_a_rollout(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with_cluster(kube_api)
    deployment = "/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager"
    kube_api.put(deployment, operator(available=False))
    state = aks.ha_manager_status(SPEC)
    assert state.data["healthy"] is False and state.data["remedy"].startswith("restart the CNPG operator")
    assert aks.restore_ha_manager(SPEC).outcome == "done"
    (patch,) = kube_api.calls("PATCH", "/deployments/")
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert "kubectl.kubernetes.io/restartedAt" in patch.body["spec"]["template"]["metadata"]["annotations"]
    kube_api.put(deployment, operator(available=True))
    assert aks.ha_manager_status(SPEC).data["healthy"] is True


def test_a_fenced_cluster_is_reported_never_unfenced(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with_cluster(kube_api)
    kube_api.put("/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager", operator(True))
    kube_api.objects[f"{CLUSTERS}/pg1"]["metadata"]["annotations"]["cnpg.io/fencedInstances"] = '["pg1-1"]'
    state = aks.ha_manager_status(SPEC)
    assert state.data["healthy"] is False and "fenced" in state.detail
    with pytest.raises(RuntimeError, match="not pgha's to fix"):
        aks.restore_ha_manager(SPEC)
    assert not kube_api.calls("PATCH")


def test_delete_cluster_keeps_its_spec_and_counts_its_volumes(aks: AksPlatform, kube_api: FakeKubeApi,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with_cluster(kube_api)
    kube_api.put("/api/v1/namespaces/db/persistentvolumeclaims/pg1-1", {"metadata": {
        "name": "pg1-1", "labels": {"cnpg.io/cluster": "pg1"}}})

    def operator_cleans_up(api: FakeKubeApi, obj_path: str, obj: dict[str, Any]) -> None:
        if obj.get("deleted") and obj_path.endswith("/clusters/pg1"):
            api.objects.pop("/api/v1/namespaces/db/persistentvolumeclaims/pg1-1", None)

    kube_api.on_write.append(operator_cleans_up)
    assert aks.remaining_volumes("db", "pg1") == 1
    assert aks.delete_cluster("db", "pg1").outcome == "done"
    assert aks.remaining_volumes("db", "pg1") == 0
    assert aks.retained_specs("db", "pg1") == [SPEC]
    assert aks.delete_cluster("db", "pg1").outcome == "unchanged"
    assert aks.cluster_status("db", "pg1").phase == st.NOT_FOUND


def test_api_errors_are_clear(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    kube_api.failures.append(("GET", "/clusters/pg1", 503))
    with pytest.raises(KubeError, match="503"):
        aks.cluster_status("db", "pg1")
    assert aks.cluster_status("db", "pg1").phase == st.NOT_FOUND  # the next call goes through


def test_services_are_applied_with_their_annotations(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    outcome = aks.expose_endpoints(SPEC)
    assert outcome.outcome == "done" and outcome.data == {"rw": "pending", "ro": "pending"}
    rw, ro = kube_api.calls("PATCH", "/services/")
    assert rw.path == "/api/v1/namespaces/db/services/pg1-lb-rw"
    assert rw.body["spec"]["loadBalancerSourceRanges"] == ["203.0.113.10/32"]
    assert ro.body["spec"]["ports"][0]["port"] == 5433
    for call in (rw, ro):  # the cluster's own static IP, shared by rw and ro as the runbook's
        assert call.body["metadata"]["annotations"]["service.beta.kubernetes.io/azure-pip-name"] == "aks-primary-pip"
    # one DNS label per public IP (cloud-provider-azure reconcileDNSSettings): set on rw only
    assert rw.body["metadata"]["annotations"][DNS_LABEL] == "a3f9c2e71b0"
    assert DNS_LABEL not in ro.body["metadata"]["annotations"]
    assert aks.remove_endpoints("db", "pg1").outcome == "done"
    assert aks.remove_endpoints("db", "pg1").outcome == "unchanged"


def test_preflight_needs_the_container_and_an_empty_archive(aks: AksPlatform, kube_api: FakeKubeApi,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import objectstore

    names: list[str] = ["pg1/wals/0000000100000000/000000010000000000000001"]
    monkeypatch.setattr(objectstore, "container_exists", lambda client, **options: True)
    monkeypatch.setattr(objectstore, "list_names", lambda client, prefix: [n for n in names if n.startswith(prefix)])
    with pytest.raises(PreflightFailed, match="deleteBackups"):
        aks.preflight_backup_destination(SPEC)
    names.clear()
    assert aks.preflight_backup_destination(SPEC).outcome == "done"
    with_cluster(kube_api)
    assert aks.preflight_backup_destination(SPEC).outcome == "unchanged"


def test_every_kept_generation_stays_findable_until_its_backups_go(aks: AksPlatform, kube_api: FakeKubeApi,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import objectstore

    monkeypatch.setattr(objectstore, "delete_prefix", lambda client, prefix: 3)
    first = SPEC.model_copy(update={"backup": SPEC.backup.model_copy(update={"server_name": "pg1-a"})})
    second = SPEC.model_copy(update={"backup": SPEC.backup.model_copy(update={"server_name": "pg1-b"})})
    for generation in (first, second):
        with_cluster(kube_api, spec=generation)
        aks.delete_cluster("db", "pg1")
    assert aks.retained_specs("db", "pg1") == [first, second]
    patch = kube_api.calls("PATCH", "/configmaps/pgha-retained-pg1")[-1]
    assert patch.content_type == "application/merge-patch+json"
    assert aks.delete_backups(first).data["deleted"] == 3
    assert aks.retained_specs("db", "pg1") == [second]
    aks.delete_backups(second)
    assert kube_api.get("/api/v1/namespaces/db/configmaps/pgha-retained-pg1") is None


def test_sql_verifies_the_server_with_the_clusters_ca(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with_cluster(kube_api)
    kube_api.put("/api/v1/namespaces/db/secrets/db-user-pass", {"metadata": {"name": "db-user-pass"}, "data": {
        "username": base64.b64encode(b"app").decode(), "password": base64.b64encode(b"x" * 24).decode()}})
    with pytest.raises(RuntimeError, match=r"pg1-ca has no ca\.crt"), aks.connect("db", "pg1", "rw"):
        pass
    assert aks.endpoint(SPEC, "rw") == ("pg1-rw.db.svc", 5432)  # in-cluster service DNS by default


def test_an_api_server_that_does_not_answer_is_retried_then_reported(aks: AksPlatform, kube_api: FakeKubeApi,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from shared.platforms.aks import kube

    monkeypatch.setattr(kube, "REQUEST_TIMEOUT_SECONDS", 0.3)
    kube_api.stalls.append(("GET", "/clusters/pg1", 1.0))
    started = time.monotonic()
    assert aks.cluster_status("db", "pg1").phase == st.NOT_FOUND  # one slow answer: the retry goes through
    assert 0.3 <= time.monotonic() - started < 1.0
    kube_api.stalls.extend([("GET", "/clusters/pg1", 1.0)] * 6)  # an API server that stays silent
    with pytest.raises(KubeError, match="Unreachable"):
        aks.cluster_status("db", "pg1")
