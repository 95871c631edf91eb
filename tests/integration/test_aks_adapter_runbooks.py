"""Every runbook over the `aks` adapter, end to end, with real PostgreSQL underneath.

The devhost's orchestrations → activities → AksPlatform → the real kubernetes client → FakeKubeApi
(a test double of the API server: no Kubernetes here) → LocalBackedOperator (a test double of CNPG's
controller whose data plane is the local platform: real Patroni members with TLS, real barman-cloud
backups in Azurite). The adapter's SQL goes to the rw/ro LoadBalancer addresses the "cloud" reports,
verified with the cluster's CA from its `-ca` Secret; its blob inventory reads Azurite (the one
Azure service replaced: the storage account's token auth, by Azurite's key).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from azure.storage.blob import ContainerClient

from shared import objectstore
from shared.changes import major_of
from shared.platforms import installed
from shared.platforms.aks.azure import Azure
from shared.platforms.aks.kube import connect
from shared.platforms.aks.platform import AksPlatform
from shared.platforms.local.platform import LocalPlatform
from shared.settings import Settings
from tests.conftest import at_step, follow, step
from tests.contract.conftest import FakeCredential, settings
from tests.contract.fake_kube import FakeKubeApi, FakeKubeServer
from tests.contract.installed import install, pgha_role
from tests.contract.local_operator import LocalBackedOperator
from tests.integration.helpers import cluster_state, superuser, until_healthy

pytestmark = pytest.mark.integration
NS = "aks-real"
SPEC = {"name": "pg-aks", "namespace": NS, "instances": 3, "sampleData": True, "drills": {"enabled": True},
        "endpoints": {"enabled": True, "sourceRanges": ["127.0.0.1/32"]},
        "postgresql": {"parameters": {"shared_buffers": "32MB"}}}


class AzuriteAzure(Azure):
    """Azure's blob access with Azurite's account key instead of a workload token (no Entra ID here)."""

    def container(self, destination_path: str) -> ContainerClient:
        container = destination_path.rstrip("/").split("/")[3]
        return objectstore.container(LocalPlatform(Settings.from_env()).stack.require().connection_string, container)


@pytest.fixture(scope="module")
def on_aks(devhost: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(rbac=pgha_role())  # pgha's identity may do exactly what access.py lists
    install(api)  # CNPG 1.30 with the Barman Cloud plugin: backup.method auto resolves to the plugin
    server = FakeKubeServer(api)
    local = LocalPlatform(Settings.from_env())
    LocalBackedOperator(api, local)
    objectstore.container(local.stack.up().connection_string, "backups", create=True)  # the infra's container
    kubeconfig = tmp_path_factory.mktemp("aks") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(server.kubeconfig()))
    aks_settings = settings(kubeconfig=str(kubeconfig), identity_name="", sql_access="loadBalancer")
    platform = AksPlatform(aks_settings, connect(aks_settings), AzuriteAzure(aks_settings, FakeCredential()))
    with installed(platform):
        yield api
    for spec in list(local.list_clusters()):
        if spec.namespace == NS:
            local.delete_cluster(NS, spec.name, graceful=False)
            local.delete_backups(spec)
    server.shutdown()


def run(api: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    started = api.request(method, url, **kwargs)
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"], timeout=240)


@pytest.fixture(scope="module")
def deployed(on_aks: FakeKubeApi, devhost: Any) -> dict[str, Any]:
    on_aks.rbac = pgha_role(only="deploy")  # each runbook with only what access.py lists for it
    with devhost.client() as api:
        done = run(api, "POST", "/api/clusters", json=SPEC)
    assert done.status_code == 200, done.text
    return done.json()


def test_deploy_over_the_aks_adapter_with_real_sql(deployed: dict[str, Any], on_aks: FakeKubeApi) -> None:
    assert step(deployed, "sample dataset")["detail"] == "datasample holds 3 rows"
    assert "pg_is_in_recovery() false on rw, true on ro" in step(deployed, "replica check")["detail"]
    assert step(deployed, "zone spread")["outcome"] == "done"
    assert on_aks.calls("PATCH", f"/namespaces/{NS}/clusters/pg-aks")[0].content_type == (
        "application/apply-patch+yaml")


def test_verify_backups_over_the_aks_adapter(api: httpx.Client, deployed: dict[str, Any],
                                             on_aks: FakeKubeApi) -> None:
    on_aks.rbac = pgha_role(only="verify")
    done = run(api, "POST", "/api/clusters/pg-aks/backups", params={"namespace": NS}, json={})
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["result"]["backup"]["phase"] == "completed"
    assert "WAL continuous from" in step(report, "object-store inventory")["detail"]
    (create,) = on_aks.calls("POST", f"/namespaces/{NS}/backups")
    assert create.body["spec"]["cluster"] == {"name": "pg-aks"}


def test_restore_over_the_aks_adapter(api: httpx.Client, deployed: dict[str, Any], on_aks: FakeKubeApi,
                                      home: Path) -> None:
    on_aks.rbac = pgha_role(only="restore")
    done = run(api, "POST", "/api/clusters/pg-aks/restores", params={"namespace": NS}, json={
        "checks": [{"name": "rows", "query": "SELECT count(*) FROM datasample", "expected": 3}]})
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    assert result["checks"][0]["ok"] is True
    name = result["restoreCluster"]["name"]
    recovery = on_aks.calls("PATCH", f"/namespaces/{NS}/clusters/{name}")[0].body
    assert recovery["spec"]["bootstrap"]["recovery"]["source"] == "clusterBackup"
    assert on_aks.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/{name}") is None  # cleaned up
    assert not (home / "clusters" / NS / name).exists()


def test_failover_drill_over_the_aks_adapter(api: httpx.Client, deployed: dict[str, Any],
                                             on_aks: FakeKubeApi) -> None:
    on_aks.rbac = pgha_role(only="drill")
    done = run(api, "POST", "/api/clusters/pg-aks/drills/failover", params={"namespace": NS},
               json={"mode": "graceful"})
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    original = next(name for name, role in result["rolesBefore"].items() if role == "primary")  # whoever won
    assert result["rpoLostWrites"] == 0 and result["failoverTo"] != original
    assert result["rolesAfter"][original] == "primary"
    assert step(done.json(), "standbys stay in sync")["outcome"] == "done"
    (delete,) = on_aks.calls("DELETE", f"/namespaces/{NS}/pods/{original}")
    assert delete.body["gracePeriodSeconds"] == 1
    (promote,) = on_aks.calls("PATCH", f"/namespaces/{NS}/clusters/pg-aks/status")
    assert promote.body["status"]["targetPrimary"] == original and promote.body["metadata"]["resourceVersion"]


def test_alert_response_restarts_a_down_operator_over_the_aks_adapter(
    api: httpx.Client, deployed: dict[str, Any], on_aks: FakeKubeApi, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CNPG operator is down (its deployment unavailable; underneath, failover is off: Patroni paused) and
    the primary's PostgreSQL stops. pgha finds the operator down, restarts it, and the primary comes back."""
    import signal

    from shared.platforms.local import processes
    from tests.alert_payloads import PROMETHEUS, alert

    monkeypatch.setenv("PGHA_ALERT_GRACE_SECONDS", "2")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "90")
    local = LocalPlatform(Settings.from_env())
    on_aks.put("/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cnpg-controller-manager",
        "namespace": "cnpg-system"}, "status": {"availableReplicas": 0, "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]}})
    members = {m.name: m for m in local.records.members(NS, "pg-aks")}
    primary = members[local.cluster_status(NS, "pg-aks").current_primary or ""]
    assert httpx.patch(f"{primary.api}/config", json={"pause": True}, timeout=5).status_code == 200
    assert processes.stop(primary.postmaster, timeout=20, sig=signal.SIGINT)

    on_aks.rbac = pgha_role(only="alert")
    body = alert(PROMETHEUS, "aks-operator-down", None)
    body["data"]["alertContext"]["labels"] = {"alertname": "CNPGClusterOffline", "namespace": NS,
                                              "pod": f"{primary.name}", "cluster": "aks-primary"}
    done = run(api, "POST", "/api/alerts", json=body)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["cluster"] == {"namespace": NS, "name": "pg-aks"}  # by the pod, not the AKS cluster's label
    assert "operator deployment cnpg-controller-manager is not available" in step(report, "check the HA manager")[
        "detail"]
    assert step(report, "restore the HA manager")["detail"].startswith("operator deployment cnpg-controller-manager "
                                                                        "restarted")
    assert report["result"]["outcome"] == "recovered"
    (restart,) = on_aks.calls("PATCH", "/deployments/cnpg-controller-manager")
    assert restart.content_type == "application/strategic-merge-patch+json"
    until_healthy(api, "pg-aks", NS)  # "recovered" means writable; the old primary may still be rejoining


def postmaster_started(home: Path, member: str) -> datetime:
    """When the member's PostgreSQL last started, asked of PostgreSQL itself."""
    port = cluster_state(home, "pg-aks", NS)["members"][member]["pgPort"]
    with superuser(home, "pg-aks", port, NS) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


def test_a_supervised_rolling_update_watched_through_cnpg_over_the_aks_adapter(
    api: httpx.Client, deployed: dict[str, Any], on_aks: FakeKubeApi, home: Path
) -> None:
    """CNPG rolls a parameter that needs a restart (LocalBackedOperator plays its controller over the real
    members): pgha patches the Cluster and watches the standbys restart; at CNPG's "Waiting for user action"
    it asks a person, and once approved promotes the most advanced standby (`kubectl cnpg promote`). The new
    value is then live on every instance (pg_settings read through pods/exec) with no acknowledged write
    lost, each standby restarted before the former primary."""
    on_aks.rbac = pgha_role(only="update")
    primary = api.get("/api/clusters/pg-aks", params={"namespace": NS}).json()["currentPrimary"]
    before = {m: postmaster_started(home, m) for m in ("pg-aks-1", "pg-aks-2", "pg-aks-3")}
    started = api.patch("/api/clusters/pg-aks", params={"namespace": NS}, json={
        "primaryUpdateStrategy": "supervised", "primaryUpdateMethod": "switchover",
        "postgresql": {"parameters": {"shared_buffers": "48MB"}}})
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    at_step(api, location, f"waiting for approval: update the primary {primary} (switchover)", timeout=180)
    status = on_aks.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/pg-aks")["status"]
    assert (status["phase"], status["phaseReason"]) == ("Waiting for user action",
                                                        "User must issue a supervised switchover")
    standbys = [m for m in before if m != primary]
    assert all(postmaster_started(home, m) > before[m] for m in standbys)  # restarted while CNPG waits
    assert postmaster_started(home, primary) == before[primary]  # the primary last: not yet
    operation = location.rsplit("/", 1)[1]
    assert api.post(f"/api/operations/{operation}/approve", json={"by": "test"}).status_code == 202
    done = follow(api, location, timeout=240)
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    assert [r["action"] for r in result["restarts"]] == ["rolling update", "switchover"], result["restarts"]
    promoted = result["restarts"][1]["instance"]
    assert promoted in standbys and result["rolesAfter"][promoted] == "primary"
    assert result["rpoLostWrites"] == 0
    assert result["settings"] == {m: {"shared_buffers": "48MB"} for m in before}
    assert step(done.json(), "rolling update")["outcome"] == "done"
    (promote,) = [c for c in on_aks.calls("PATCH", f"/namespaces/{NS}/clusters/pg-aks/status")
                  if c.body["status"].get("targetPrimary") == promoted and c.body["status"]["phase"] ==
                  "Switchover in progress"][-1:]
    assert promote.body["metadata"]["resourceVersion"]
    reads = [c for c in on_aks.calls("GET", "/exec") if "pg_settings" in c.query.get("command", "")]
    assert {c.path.split("/")[-2] for c in reads} == set(before), "each instance's settings read through pods/exec"
    assert api.get("/api/clusters/pg-aks", params={"namespace": NS}).json()["drift"] == []


def test_a_major_upgrade_is_gated_and_rolled_back_when_pg_upgrade_fails_over_the_aks_adapter(
    api: httpx.Client, deployed: dict[str, Any], on_aks: FakeKubeApi
) -> None:
    """A higher major in imageName: first the gates, a backup taken and verified and then restored into a new
    cluster that is removed again; then CNPG's in-place upgrade, whose pg_upgrade Job fails here (this machine
    has one PostgreSQL). The run ends quoting the Job, sets the old image back (CNPG's rollback) and leaves the
    cluster healthy on its old major."""
    on_aks.rbac = pgha_role()  # the restore test runs the restore runbook: its rows too (docs/azure.md)
    cluster = f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/pg-aks"
    running = on_aks.get(cluster)["status"]["image"]
    newer = f"ghcr.io/cloudnative-pg/postgresql:{major_of(running) + 1}.1-system-trixie"
    started = api.patch("/api/clusters/pg-aks", params={"namespace": NS}, json={
        "imageName": newer, "backup": {"serverName": f"pg-aks-{major_of(newer)}"}})
    assert started.status_code == 202, started.text
    done = follow(api, started.headers["Location"], timeout=240)
    assert done.status_code == 422, done.text
    report = done.json()["report"]
    names = [s["name"] for s in report["steps"]]
    assert names.index("verify backup") < names.index("restore test") < names.index("apply spec") < names.index(
        "rolling update") < names.index("roll back the image") < names.index("cluster settles"), names
    assert "restored into" in step(report, "restore test")["detail"]
    failed = step(report, "rolling update")["detail"]
    primary = report["result"]["rolesBefore"] and next(n for n, r in report["result"]["rolesBefore"].items()
                                                       if r == "primary")
    assert f"the major upgrade Job {primary}-major-upgrade failed (pg_upgrade)" in failed, failed
    assert report["result"]["rolledBackTo"] == running  # the data directory's image, pinned: not a default
    assert report["result"]["leftWith"].startswith("phase 'Cluster in healthy state', 3/3 instances ready")
    assert on_aks.get(cluster)["status"]["image"] == running
    assert not [p for p in on_aks.objects if p.startswith(f"/apis/batch/v1/namespaces/{NS}/jobs/")]
    assert not [p for p in on_aks.objects if "/clusters/pg-aks-" in p and "/postgresql.cnpg.io/" in p]  # restore
    assert api.get("/api/clusters/pg-aks", params={"namespace": NS}).json()["drift"] == []


def test_teardown_keeping_backups_then_restore_by_name_over_the_aks_adapter(
    api: httpx.Client, deployed: dict[str, Any], on_aks: FakeKubeApi, home: Path
) -> None:
    """Plugin mode: the ObjectStore outlives the Cluster while its backups are kept, so a restore by the torn-down
    cluster's name finds its recovery store (the plugin looks it up by `barmanObjectName`) and its checks pass;
    deleting the kept backups afterwards removes the ObjectStore too."""
    store = f"/apis/barmancloud.cnpg.io/v1/namespaces/{NS}/objectstores/pg-aks"
    on_aks.rbac = pgha_role(only="teardown")
    done = run(api, "DELETE", "/api/clusters/pg-aks", params={"namespace": NS})
    assert done.status_code == 200, done.text
    assert not (home / "clusters" / NS / "pg-aks").exists()
    assert on_aks.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/pg-aks") is None
    assert on_aks.get(store) is not None  # kept with the backups it describes
    assert not [p for p in on_aks.objects if p.startswith(f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/backups/")]

    on_aks.rbac = pgha_role(only="restore")
    done = run(api, "POST", "/api/clusters/pg-aks/restores", params={"namespace": NS}, json={
        "checks": [{"name": "rows", "query": "SELECT count(*) FROM datasample", "expected": 3}]})
    assert done.status_code == 200, done.text
    report = done.json()
    assert "was torn down; restoring from the backups it kept" in step(report, "read source spec")["detail"]
    assert report["result"]["checks"][0]["ok"] is True
    name = report["result"]["restoreCluster"]["name"]
    recovery = on_aks.calls("PATCH", f"/namespaces/{NS}/clusters/{name}")[0].body
    assert recovery["spec"]["externalClusters"][0]["plugin"]["parameters"]["barmanObjectName"] == "pg-aks"
    assert on_aks.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/{name}") is None  # cleaned up

    on_aks.rbac = pgha_role(only="teardown")
    done = run(api, "DELETE", "/api/clusters/pg-aks", params={"namespace": NS, "deleteBackups": "true"})
    assert done.status_code == 200, done.text
    assert on_aks.get(store) is None
