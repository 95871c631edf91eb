"""`pgha doctor` on AKS over the doubles: each check and each of its outcomes, reached by breaking one thing
in the world the fixtures set up as docs/azure.md says (installed.py, azure_world.py, pgha_role); and the
pre-flights of deploy and teardown refusing before any write."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from devhost.cli import main
from shared.doctor import PROBE, Check, Diagnosis, look
from shared.platforms import installed
from shared.platforms.aks import access
from shared.platforms.aks.azure import credential_name
from shared.platforms.aks.platform import AksPlatform
from shared.spec import ClusterSpec, parse_spec
from tests.conftest import follow, report_of, step
from tests.contract.azure_world import (
    CONTRIBUTOR,
    CONTROL_READER,
    PGHA_OBJECT_ID,
    READER,
    UAMI_OBJECT_ID,
    AzureWorld,
    WorldAzure,
    WorldCredential,
)
from tests.contract.conftest import CNPG_RELEASES, FakeAzure, kube_for, settings
from tests.contract.fake_kube import FakeKubeApi, FakeKubeServer
from tests.contract.installed import CRD_PATH, install, pgha_role

NS = "aks-doctor"
README = Path(__file__).parents[2] / "README.md"


def platform(kube_api: FakeKubeApi, azure_fake: FakeAzure, tmp_path: Path, credential: Any = None,
             **extra: Any) -> AksPlatform:
    """The adapter as an operator would point it at a healthy environment (every monitoring endpoint set)."""
    base: dict[str, Any] = {"log_workspace_id": "ws-1", "log_analytics_endpoint": azure_fake.url, **extra}
    aks_settings = settings(azure_fake, kubeconfig=str(tmp_path / "kubeconfig"), **base)
    return AksPlatform(aks_settings, kube_for(kube_api, tmp_path), WorldAzure(aks_settings, azure_fake, credential))


def checks(aks: AksPlatform, spec: dict[str, Any] | None = None, purpose: Any = "doctor",
           delete_backups: bool = False) -> dict[str, Check]:
    found = aks.diagnose(parse_spec(spec or {"name": PROBE, "namespace": NS}), purpose, delete_backups)
    return {c.name: c for c in found}


def reinstall(api: FakeKubeApi, **world: Any) -> None:
    for path in [p for p in api.objects if p.startswith(CRD_PATH) or "/cnpg-system/" in p]:
        del api.objects[path]
    install(api, **world)


@pytest.fixture()
def kube_api() -> Iterator[FakeKubeApi]:
    """The doctor only reads, and its pre-flights refuse before any write: the newest CNPG minor serves here
    (the contract tests of what is written run over both)."""
    api = FakeKubeApi(cnpg_version="1.30", rbac=pgha_role())
    install(api, version=CNPG_RELEASES["1.30"])
    server = FakeKubeServer(api)
    api.server = server  # type: ignore[attr-defined]
    yield api
    server.shutdown()


@pytest.fixture()
def doctor(kube_api: FakeKubeApi, azure_fake: FakeAzure, azure_world: AzureWorld, tmp_path: Path,
           in_cluster_network: None) -> AksPlatform:
    return platform(kube_api, azure_fake, tmp_path)


def test_a_healthy_environment_passes_every_check(doctor: AksPlatform, kube_api: FakeKubeApi) -> None:
    found = checks(doctor)
    assert {c.verdict for c in found.values()} == {"PASS"}, [c.line() for c in found.values() if c.verdict != "PASS"]
    assert set(found) >= {"CNPG operator", "backup method", "CRDs", "CRD objectstores", "Kubernetes RBAC",
                          "identity settings", "identity", "federated credentials", "backups container",
                          "backups delete permission", "Prometheus", "Log Analytics", "SQL access"}
    reviews = kube_api.calls("POST", "/selfsubjectaccessreviews")
    assert len(reviews) == len(access.PERMISSIONS)
    exec_review = next(r.body["spec"]["resourceAttributes"] for r in reviews
                       if r.body["spec"]["resourceAttributes"].get("subresource") == "exec")
    assert exec_review["namespace"] == NS and exec_review["resource"] == "pods"
    assert not [r for r in kube_api.requests if r.method in ("PATCH", "PUT", "DELETE")
                or (r.method == "POST" and not r.path.endswith("/selfsubjectaccessreviews"))], "read-only"


# ---- the operator, CRDs and the backup method ------------------------------------------------------------

@pytest.mark.parametrize(("world", "verdict", "says"), [
    ({"version": "1.27.4"}, "FAIL", "older than pgha supports (1.29 to 1.30): upgrade the operator to 1.30"),
    ({"image": "ghcr.io/cloudnative-pg/cloudnative-pg@sha256:" + "c" * 64}, "WARN", "CNPG version unknown"),
    ({"version": "1.31.0"}, "WARN", "newer than pgha was tested with (1.29 to 1.30)"),
])
def test_the_operator_version(doctor: AksPlatform, kube_api: FakeKubeApi, world: dict[str, Any], verdict: str,
                              says: str) -> None:
    reinstall(kube_api, **world)
    found = checks(doctor)["CNPG operator"]
    assert found.verdict == verdict and says in found.detail, found.line()


def test_an_operator_missing_or_unavailable_fails(doctor: AksPlatform, kube_api: FakeKubeApi) -> None:
    deployment = "/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager"
    kube_api.objects[deployment]["status"] = {"availableReplicas": 0, "conditions": [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]}
    assert "has no available replica" in checks(doctor)["CNPG operator"].detail
    del kube_api.objects[deployment]
    found = checks(doctor)["CNPG operator"]
    assert found.verdict == "FAIL" and "cnpg-system/cnpg-controller-manager not found" in found.detail
    assert "PGHA_CNPG_NAMESPACE" in found.detail


def test_missing_crds(doctor: AksPlatform, kube_api: FakeKubeApi) -> None:
    del kube_api.objects[f"{CRD_PATH}/podmonitors.monitoring.coreos.com"]
    found = checks(doctor)["CRD monitoring.coreos.com"]
    assert found.verdict == "WARN" and "pgha skips the PodMonitor for kube-prometheus-stack" in found.detail
    del kube_api.objects[f"{CRD_PATH}/objectstores.barmancloud.cnpg.io"]
    wanted = checks(doctor, {"name": PROBE, "namespace": NS, "backup": {"method": "plugin"}})
    assert wanted["backup method"].verdict == "FAIL"  # the plugin is found by its CRD and its Service
    del kube_api.objects[f"{CRD_PATH}/scheduledbackups.postgresql.cnpg.io"]
    found = checks(doctor)["CRDs"]
    assert found.verdict == "FAIL" and "scheduledbackups.postgresql.cnpg.io not installed" in found.detail


def test_the_backup_method_as_auto_resolves_it(doctor: AksPlatform, kube_api: FakeKubeApi) -> None:
    assert "Barman Cloud plugin" in checks(doctor)["backup method"].detail
    named = checks(doctor, {"name": PROBE, "namespace": NS, "backup": {"method": "barmanObjectStore"}})
    assert named["backup method"].verdict == "WARN" and "deprecated" in named["backup method"].detail
    reinstall(kube_api, plugin=False)
    assert "not installed" in checks(doctor)["backup method"].detail  # auto: in-tree, said why
    wanted = checks(doctor, {"name": PROBE, "namespace": NS, "backup": {"method": "plugin"}})["backup method"]
    assert wanted.verdict == "FAIL" and "install plugin-barman-cloud" in wanted.detail
    reinstall(kube_api, plugin=False, version="1.31.0")
    assert "gone in CNPG 1.31" in checks(doctor)["backup method"].detail


# ---- Kubernetes RBAC -----------------------------------------------------------------------------------

def test_a_missing_verb_fails_naming_it(doctor: AksPlatform, kube_api: FakeKubeApi) -> None:
    taken = tuple(p for p in access.PERMISSIONS if p.resource in ("pods/exec", "clusters/status"))
    kube_api.rbac = pgha_role(without=taken)
    found = checks(doctor)["Kubernetes RBAC"]
    assert found.verdict == "FAIL", found.line()
    assert f"get, create pods/exec in {NS}" in found.detail
    assert f"patch clusters/status.postgresql.cnpg.io in {NS}" in found.detail
    teardown = checks(doctor, purpose="teardown")["Kubernetes RBAC"]
    assert teardown.verdict == "FAIL" and "pods/exec" in teardown.detail  # it archives the last WAL first
    assert "clusters/status" not in teardown.detail  # a teardown never promotes


def test_every_runbook_permission_is_in_the_table() -> None:
    """The table names the runbooks that use each row; the doctor asks all of them."""
    assert {r for p in access.PERMISSIONS for r in p.runbooks} == set(access.RUNBOOKS)
    assert len(access.needed_by("doctor")) == len(access.PERMISSIONS) > len(access.needed_by("teardown"))


# ---- the identity ------------------------------------------------------------------------------------

def test_identity_settings(kube_api: FakeKubeApi, azure_fake: FakeAzure, azure_world: AzureWorld,
                           tmp_path: Path, in_cluster_network: None) -> None:
    unset = checks(platform(kube_api, azure_fake, tmp_path, identity_client_id=""))["identity settings"]
    assert unset.verdict == "FAIL" and "PGHA_AKS_IDENTITY_CLIENT_ID is unset" in unset.detail
    no_name = checks(platform(kube_api, azure_fake, tmp_path, identity_name=""))
    assert no_name["identity settings"].verdict == "WARN" and "identity" not in no_name
    azure_world.identity = None
    missing = checks(platform(kube_api, azure_fake, tmp_path))["identity"]
    assert missing.verdict == "FAIL" and missing.detail.startswith("reading identity mi-aks-cnpg: ResourceNotFound")


def test_identity_and_node_group_settings_missing(kube_api: FakeKubeApi, azure_fake: FakeAzure,
                                                  azure_world: AzureWorld, tmp_path: Path,
                                                  in_cluster_network: None) -> None:
    unset = checks(platform(kube_api, azure_fake, tmp_path, identity_resource_group=""))["identity settings"]
    assert unset.verdict == "FAIL" and "PGHA_AKS_IDENTITY_RESOURCE_GROUP unset" in unset.detail
    spec = {"name": "pg1", "namespace": NS, "endpoints": {"enabled": True, "sourceRanges": ["10.0.0.0/8"],
                                                          "publicIpName": "pip-pg1"}}
    no_group = checks(platform(kube_api, azure_fake, tmp_path, node_resource_group=""), spec)["public IP"]
    assert no_group.verdict == "FAIL" and "PGHA_AKS_NODE_RESOURCE_GROUP unset" in no_group.detail


def test_identity_client_id_must_match(kube_api: FakeKubeApi, azure_fake: FakeAzure, azure_world: AzureWorld,
                                       tmp_path: Path, in_cluster_network: None) -> None:
    wrong = checks(platform(kube_api, azure_fake, tmp_path, identity_client_id="11111111-2222-3333-4444-555555555555"))
    assert wrong["identity"].verdict == "FAIL" and "set it to the identity's" in wrong["identity"].detail


@pytest.mark.parametrize(("used", "verdict", "says"), [
    (3, "PASS", "3 of Entra's 20 federated credentials used: 17 more"),
    (18, "WARN", "2 more cluster(s) or restore(s) possible"),
    (20, "FAIL", "no cluster or restore can be added"),
])
def test_federated_credentials_against_the_limit(doctor: AksPlatform, azure_world: AzureWorld, used: int,
                                                 verdict: str, says: str) -> None:
    azure_world.credentials = [f"other-{n}" for n in range(used)]
    found = checks(doctor)["federated credentials"]
    assert found.verdict == verdict and says in found.detail, found.line()


def test_a_full_identity_still_serves_the_cluster_that_holds_one(doctor: AksPlatform,
                                                                 azure_world: AzureWorld) -> None:
    azure_world.credentials = [f"other-{n}" for n in range(19)] + [credential_name(NS, "pg1")]
    assert checks(doctor, {"name": "pg1", "namespace": NS})["federated credentials"].verdict == "WARN"


# ---- the backups storage -------------------------------------------------------------------------------

def test_an_unreachable_container_fails(doctor: AksPlatform, azure_world: AzureWorld) -> None:
    azure_world.containers.clear()
    found = checks(doctor)["backups container"]
    assert found.verdict == "FAIL" and "does not exist: create the container" in found.detail


def revoke(world: AzureWorld, principal: str, role: str) -> None:
    world.assignments = [a for a in world.assignments
                         if not (a["principalId"] == principal and a["roleDefinitionId"].endswith(role))]


def test_delete_permission_from_role_assignments(doctor: AksPlatform, azure_world: AzureWorld,
                                                 azure_fake: FakeAzure) -> None:
    assert checks(doctor)["backups delete permission"].detail == "Storage Blob Data Contributor for pgha at backups"
    assignments = [unquote(s.path) for s in azure_fake.seen if "roleAssignments" in s.path]
    assert f"assignedTo('{PGHA_OBJECT_ID}')" in assignments[-1]
    assert not [s for s in azure_fake.seen if s.method in ("PUT", "DELETE")], "no probe blob written"
    revoke(azure_world, PGHA_OBJECT_ID, CONTRIBUTOR)
    azure_world.grant(PGHA_OBJECT_ID, READER, azure_world.account_id("pghabackups"))
    warned = checks(doctor)["backups delete permission"]
    assert warned.verdict == "WARN" and "assign Storage Blob Data Contributor" in warned.detail
    required = checks(doctor, purpose="teardown", delete_backups=True)["backups delete permission"]
    assert required.verdict == "FAIL"
    assert "backups delete permission" not in checks(doctor, purpose="teardown")


def test_what_pgha_may_not_read_is_a_warning(doctor: AksPlatform, azure_world: AzureWorld) -> None:
    """Without Reader on the account, ARM's list leaves it out and its role assignments answer 403: pgha cannot
    tell, and says how to let it (a run is not refused for what the doctor cannot see)."""
    revoke(azure_world, PGHA_OBJECT_ID, CONTROL_READER)
    found = checks(doctor, purpose="teardown", delete_backups=True)["backups delete permission"]
    assert found.verdict == "WARN" and "give pgha Reader on storage account pghabackups" in found.detail
    azure_world.grant(PGHA_OBJECT_ID, CONTROL_READER, f"{azure_world.account_id('pghabackups')}/blobServices")
    forbidden = checks(doctor)["backups write permission"]  # the account is still not listed to pgha
    assert forbidden.verdict == "WARN"


def test_a_role_under_a_condition_is_a_warning(doctor: AksPlatform, azure_world: AzureWorld) -> None:
    revoke(azure_world, UAMI_OBJECT_ID, CONTRIBUTOR)
    container = f"{azure_world.account_id('pghabackups')}/blobServices/default/containers/backups"
    azure_world.grant(UAMI_OBJECT_ID, CONTRIBUTOR, container, condition=(
        "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'other'"))
    found = checks(doctor)["backups write permission"]
    assert found.verdict == "WARN" and "under a condition pgha does not evaluate" in found.detail


def test_the_workload_identity_must_write_the_container(doctor: AksPlatform, azure_world: AzureWorld) -> None:
    assert checks(doctor)["backups write permission"].detail == (
        "Storage Blob Data Contributor for mi-aks-cnpg at backups")
    revoke(azure_world, UAMI_OBJECT_ID, CONTRIBUTOR)
    found = checks(doctor, purpose="deploy")["backups write permission"]
    assert found.verdict == "FAIL" and "barman-cloud cannot archive" in found.detail


def test_delete_permission_unknown_without_an_object_id(kube_api: FakeKubeApi, azure_fake: FakeAzure,
                                                        azure_world: AzureWorld, tmp_path: Path,
                                                        in_cluster_network: None) -> None:
    anonymous = platform(kube_api, azure_fake, tmp_path, credential=WorldCredential(object_id=""))
    assert checks(anonymous)["backups delete permission"].verdict == "WARN"
    azure_world.accounts.clear()
    gone = checks(platform(kube_api, azure_fake, tmp_path), purpose="teardown", delete_backups=True)
    assert "storage account pghabackups is not visible to pgha" in gone["backups delete permission"].detail


# ---- monitoring endpoints, the public IP, SQL access --------------------------------------------------

def test_monitoring_endpoints(kube_api: FakeKubeApi, azure_fake: FakeAzure, azure_world: AzureWorld,
                             tmp_path: Path, in_cluster_network: None) -> None:
    unset = checks(platform(kube_api, azure_fake, tmp_path, prometheus_endpoint="", log_workspace_id=""))
    assert unset["Prometheus"].verdict == unset["Log Analytics"].verdict == "WARN"
    azure_world.prometheus_up = azure_world.logs_up = False
    down = checks(platform(kube_api, azure_fake, tmp_path))
    assert down["Prometheus"].verdict == "FAIL" and "503" in down["Prometheus"].detail
    assert down["Log Analytics"].verdict == "FAIL"


def test_the_public_ip(doctor: AksPlatform, azure_world: AzureWorld) -> None:
    spec = {"name": "pg1", "namespace": NS, "endpoints": {"enabled": True, "sourceRanges": ["10.0.0.0/8"],
                                                          "publicIpName": "pip-pg1"}}
    assert checks(doctor, spec)["public IP"].verdict == "FAIL"
    azure_world.public_ips["pip-pg1"] = {"sku": "Basic", "allocation": "Dynamic"}
    assert checks(doctor, spec)["public IP"].verdict == "WARN"
    azure_world.public_ips["pip-pg1"] = {"sku": "Standard", "allocation": "Static"}
    assert checks(doctor, spec)["public IP"].verdict == "PASS"
    assert "public IP" not in checks(doctor)
    revoke(azure_world, PGHA_OBJECT_ID, CONTROL_READER)
    unseen = checks(doctor, spec)["public IP"]
    assert unseen.verdict == "WARN" and "give pgha Reader on the node resource group" in unseen.detail


def test_sql_access(kube_api: FakeKubeApi, azure_fake: FakeAzure, azure_world: AzureWorld, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.platforms.aks import doctor as aks_doctor

    monkeypatch.setattr(aks_doctor, "resolves", lambda host: False)  # pgha outside the cluster's network
    assert "does not resolve from where pgha runs" in checks(platform(kube_api, azure_fake, tmp_path))[
        "SQL access"].detail
    lb = platform(kube_api, azure_fake, tmp_path, sql_access="loadBalancer")
    assert "endpoints.enabled false" in checks(lb)["SQL access"].detail
    spec = {"name": "pg1", "namespace": NS, "endpoints": {"enabled": True, "sourceRanges": ["203.0.113.0/24"]}}
    assert checks(lb, spec)["SQL access"].verdict == "WARN"
    outside = platform(kube_api, azure_fake, tmp_path, sql_access="loadBalancer", outbound_addresses=("198.51.100.7",))
    assert "198.51.100.7 outside endpoints.sourceRanges" in checks(outside, spec)["SQL access"].detail
    inside = platform(kube_api, azure_fake, tmp_path, sql_access="loadBalancer", outbound_addresses=("203.0.113.9",))
    assert checks(inside, spec)["SQL access"].verdict == "PASS"


def test_a_platform_that_cannot_be_reached_is_one_fail_line() -> None:
    def connect() -> Any:
        raise RuntimeError("PGHA_AKS_CLUSTER unset: pgha finds the AKS cluster by them\nsecond line")

    diagnosis = look("aks", connect, ClusterSpec(name=PROBE))
    (only,) = diagnosis.checks
    assert only.verdict == "FAIL" and "second line" not in only.detail and diagnosis.verdict == "FAIL"


# ---- the pre-flights refuse before any write ----------------------------------------------------------

def started(api: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    response = api.request(method, url, **kwargs)
    assert response.status_code == 202, response.text
    return report_of(follow(api, response.headers["Location"], timeout=60))


def test_deploy_is_refused_before_any_write_for_a_missing_crd_or_verb(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi
) -> None:
    del kube_api.objects[f"{CRD_PATH}/clusters.postgresql.cnpg.io"]
    kube_api.rbac = pgha_role(without=tuple(p for p in access.PERMISSIONS if p.resource == "pods/exec"))
    report = started(api, "POST", "/api/clusters", json={"name": "pg-refused", "namespace": NS, "instances": 1,
                                                         "synchronousReplicas": 0})
    assert report["status"] == "failed"
    refused = step(report, "pre-flight")["detail"]
    assert "FAIL CRDs: clusters.postgresql.cnpg.io not installed" in refused
    assert f"FAIL Kubernetes RBAC: not allowed: get, create pods/exec in {NS}" in refused
    assert kube_api.writes() == [], "refused before anything was applied"


def test_teardown_is_refused_before_anything_goes_without_its_verbs(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi
) -> None:
    done = started(api, "POST", "/api/clusters", json={"name": "pg-kept", "namespace": NS, "instances": 1,
                                                       "synchronousReplicas": 0})
    assert done["status"] == "succeeded", done
    before = len(kube_api.writes())
    kube_api.rbac = pgha_role(without=tuple(p for p in access.PERMISSIONS
                                            if p.resource == "clusters" and p.verb == "delete"))
    report = started(api, "DELETE", "/api/clusters/pg-kept", params={"namespace": NS})
    assert "delete clusters.postgresql.cnpg.io in aks-doctor" in step(report, "pre-flight")["detail"]
    assert kube_api.writes()[before:] == [] and on_aks.stored_spec(NS, "pg-kept") is not None


# ---- HTTP and CLI --------------------------------------------------------------------------------------

def test_get_and_post_api_doctor(api: httpx.Client, on_aks: AksPlatform) -> None:
    answer = api.get("/api/doctor", params={"namespace": NS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["platform"] == "aks" and body["verdict"] == "WARN"  # the fixture sets no identity name
    assert {c["name"] for c in body["checks"]} >= {"CNPG operator", "Kubernetes RBAC", "SQL access"}
    refused = api.post("/api/doctor", json={"name": "pg1", "instances": 0})
    assert refused.status_code == 400 and refused.json()["field"] == "instances"
    assert api.post("/api/doctor", json={"name": "pg1", "namespace": NS}).json()["verdict"] == "WARN"


def test_cli_prints_a_table_and_exits_1_on_a_fail(doctor: AksPlatform, kube_api: FakeKubeApi,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with installed(doctor):
        assert main(["doctor", "--namespace", NS]) == 0
        assert "aks: 16 passed, 0 warnings, 0 failed" in capsys.readouterr().out
        del kube_api.objects[f"{CRD_PATH}/backups.postgresql.cnpg.io"]
        assert main(["doctor", "--namespace", NS, "--json"]) == 1
        body = json.loads(capsys.readouterr().out)
        assert body["verdict"] == "FAIL" and any(c["name"] == "CRDs" for c in body["checks"])


# ---- the README's examples, produced here --------------------------------------------------------------

def readme_example(title: str, diagnosis: Diagnosis) -> str:
    return f"<!-- doctor: {title} -->\n```\n$ pgha doctor --platform aks\n{diagnosis.table()}\n```\n"


def test_the_readme_shows_a_healthy_and_a_broken_environment(
    doctor: AksPlatform, kube_api: FakeKubeApi, azure_world: AzureWorld
) -> None:
    """`PGHA_UPDATE_README=1` rewrites the README's examples from this test; otherwise they must match."""
    healthy = Diagnosis(platform="aks", checks=list(checks(doctor).values()))
    del kube_api.objects[f"{CRD_PATH}/podmonitors.monitoring.coreos.com"]
    kube_api.rbac = pgha_role(without=tuple(p for p in access.PERMISSIONS if p.resource == "pods/exec"))
    azure_world.credentials = [f"pgha-pg{n}" for n in range(20)]
    revoke(azure_world, PGHA_OBJECT_ID, CONTRIBUTOR)
    broken = Diagnosis(platform="aks", checks=list(checks(doctor).values()))
    text = README.read_text()
    for title, diagnosis in (("healthy", healthy), ("broken", broken)):
        start = text.index(f"<!-- doctor: {title} -->")
        end = text.index("```\n", text.index("```\n", start) + 4) + 4
        if os.environ.get("PGHA_UPDATE_README"):
            text = text[:start] + readme_example(title, diagnosis) + text[end:]
            continue
        assert text[start:end] == readme_example(title, diagnosis), "run with PGHA_UPDATE_README=1"
    if os.environ.get("PGHA_UPDATE_README"):
        README.write_text(text)
