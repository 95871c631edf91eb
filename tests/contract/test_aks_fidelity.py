"""The AKS path as CloudNativePG really behaves: one test (or a few) per finding of the fidelity review,
each against the doubles that now answer as CNPG's source says (fake_kube.py, admission.py,
scripted_operator.py, installed.py). Each of these failed on the adapter before the fix."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared import status as st
from shared.platform import PreflightFailed
from shared.platforms.aks import cnpg, manifests
from shared.platforms.aks.operator import SUPPORTED, image_version
from shared.platforms.aks.platform import SPEC_ANNOTATION, AksPlatform
from shared.restore import restore_name, restore_spec
from shared.spec import ClusterSpec, parse_spec
from tests.conftest import follow, report_of, step
from tests.contract.admission import Invalid, admit
from tests.contract.conftest import CNPG_RELEASES, settings
from tests.contract.fake_kube import FakeKubeApi
from tests.contract.installed import CRD_PATH, install
from tests.contract.scripted_operator import ScriptedOperator
from triggers.plans import plan

NS = "aks-e2e"
CNPG = f"/apis/postgresql.cnpg.io/v1/namespaces/{NS}"
STORES = f"/apis/barmancloud.cnpg.io/v1/namespaces/{NS}/objectstores"


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "instances": 1, "synchronousReplicas": 0, "sampleData": False, **extra}


def run(api: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    started = api.request(method, url, **kwargs)
    assert started.status_code == 202, started.text
    return follow(api, started.headers["Location"], timeout=120)


def settled(platform: AksPlatform, spec: dict[str, Any]) -> ClusterSpec:
    return ClusterSpec.model_validate(platform.preflight(parse_spec(spec)).data["spec"])


def test_the_fixtures_are_the_supported_range() -> None:
    assert sorted(CNPG_RELEASES) == [f"{major}.{minor}" for major, minor in SUPPORTED]


# ---- 1. PodMonitors ---------------------------------------------------------------------------------

def test_deploy_passes_verify_monitoring_where_only_managed_prometheus_is(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi
) -> None:
    """AKS Managed Prometheus brings azmonitoring.coreos.com only: the monitoring.coreos.com PodMonitor is
    skipped, said so, and the deploy does not roll back."""
    del kube_api.objects[f"{CRD_PATH}/podmonitors.monitoring.coreos.com"]
    done = run(api, "POST", "/api/clusters", json=body("pg-mon"))
    assert done.status_code == 200, done.text
    assert "no podmonitors.monitoring.coreos.com CRD" in step(done.json(), "monitoring")["detail"]
    assert step(done.json(), "verify monitoring")["outcome"] == "done"
    assert kube_api.get(f"/apis/azmonitoring.coreos.com/v1/namespaces/{NS}/podmonitors/pg-mon-metrics-managed-"
                        "prometheus")
    cluster = kube_api.get(f"{CNPG}/clusters/pg-mon")
    assert cluster is not None and "monitoring" not in cluster["spec"], "enablePodMonitor is deprecated"


def test_with_kube_prometheus_pgha_makes_the_podmonitor_itself(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    spec = parse_spec(body("pg1"))
    assert aks.configure_monitoring(spec).outcome == "done"
    made = kube_api.get(f"/apis/monitoring.coreos.com/v1/namespaces/{NS}/podmonitors/pg1")
    assert made is not None and made["spec"]["selector"]["matchLabels"] == {"cnpg.io/cluster": "pg1"}
    assert aks.verify_monitoring(spec).outcome == "done"
    for crd in ("podmonitors.monitoring.coreos.com", "podmonitors.azmonitoring.coreos.com"):
        del kube_api.objects[f"{CRD_PATH}/{crd}"]
    assert aks.configure_monitoring(spec).outcome == "skipped"


# ---- 2. plugin mode: restore from kept backups ----------------------------------------------------

def test_teardown_keeps_the_objectstore_a_restore_names_and_deletes_it_with_the_backups(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi, operator: ScriptedOperator
) -> None:
    deployed = run(api, "POST", "/api/clusters", json=body("pg-kept"))
    assert deployed.status_code == 200, deployed.text
    assert run(api, "DELETE", "/api/clusters/pg-kept", params={"namespace": NS}).status_code == 200
    assert kube_api.get(f"{STORES}/pg-kept") is not None, "kept backups keep the store that describes them"
    # the restore's recovery source names it (test_a_restore_whose_source_store_is_gone_brings_it_back); the
    # restore runs for real over LocalBackedOperator in tests/integration/test_aks_adapter_runbooks.py
    assert run(api, "DELETE", "/api/clusters/pg-kept", params={"namespace": NS, "deleteBackups": "true"}
               ).status_code == 200
    assert kube_api.get(f"{STORES}/pg-kept") is None
    assert not [n for n in operator.archive if n.startswith("pg-kept/")]


def test_a_restore_whose_source_store_is_gone_brings_it_back(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    """A source torn down by an older pgha lost its ObjectStore: CNPG's reconciliation would stall on the
    restore ("barman object configuration not found, requeuing"); pgha creates it, never changing one."""
    operator = ScriptedOperator(kube_api)
    source = settled(aks, body("pg-src"))
    assert source.backup.method == "plugin"
    target = restore_spec(source, restore_name("pg-src", "op-1"), 1, None, None, own_secret=True)
    aks.apply_cluster(target)
    store = kube_api.get(f"{STORES}/pg-src")
    assert store is not None and store["spec"]["configuration"]["destinationPath"] == source.backup.destination_path
    assert aks.cluster_status(NS, target.name).phase != st.NOT_FOUND and not operator.stalled
    kube_api.objects[f"{STORES}/pg-src"]["spec"]["retentionPolicy"] = "30d"
    aks.apply_cluster(target)
    assert kube_api.get(f"{STORES}/pg-src")["spec"]["retentionPolicy"] == "30d"  # type: ignore[index]


# ---- 3. names within Kubernetes' limits -----------------------------------------------------------

@pytest.mark.parametrize("runbook", ["deploy", "restore"])
def test_a_47_character_cluster_plans_only_valid_names(runbook: str, kube_api: FakeKubeApi,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    aks = settings()
    for setting, value in {"PGHA_AKS_SUBSCRIPTION_ID": aks.subscription_id,
                           "PGHA_AKS_RESOURCE_GROUP": aks.resource_group, "PGHA_AKS_CLUSTER": aks.cluster,
                           "PGHA_AKS_IDENTITY_NAME": aks.identity_name,
                           "PGHA_AKS_IDENTITY_CLIENT_ID": aks.identity_client_id}.items():
        monkeypatch.setenv(setting, value)
    name = "p" * 47
    spec = parse_spec(body(name, endpoints={"enabled": True, "sourceRanges": ["203.0.113.10/32"],
                                            "dnsLabel": "a3f9c2e71b0"}))
    objects = [e["object"] for e in plan(runbook, spec) if "object" in e]
    assert {o["kind"] for o in objects} >= {"Cluster", "Service"} if runbook == "deploy" else {"Cluster"}
    for obj in objects:
        admit(obj, "Strict", kube_api.cnpg_version)  # raises Invalid, naming the field, on any bad name
    restore = restore_spec(spec, restore_name(name, "op"), 1, None, None)
    for role in ("rw", "ro"):
        admit(manifests.load_balancer(restore, role, settings()), "Strict")
    assert len(manifests.service_name(parse_spec(body("q" * 50)), "ro")) <= 63


def test_the_runbooks_old_service_name_is_what_the_api_server_refuses() -> None:
    service = manifests.load_balancer(parse_spec(body("r" * 47)), "rw", settings())
    service["metadata"]["name"] = manifests.legacy_service_name(parse_spec(body("r" * 47)), "rw")
    with pytest.raises(Invalid, match="must be no more than 63 characters"):
        admit(service, "Strict")


# ---- 4. LoadBalancers: one static IP per cluster, one DNS label per IP ----------------------------

def test_two_clusters_and_a_restore_never_share_a_public_ip() -> None:
    aks = settings()
    one = parse_spec(body("pg-a", endpoints={"enabled": True, "sourceRanges": ["203.0.113.10/32"],
                                             "publicIpName": "pip-a", "dnsLabel": "pga"}))
    two = parse_spec(body("pg-b", endpoints={"enabled": True, "sourceRanges": ["203.0.113.10/32"]}))
    pip = "service.beta.kubernetes.io/azure-pip-name"
    annotations = {(s.name, role): manifests.load_balancer(s, role, aks)["metadata"]["annotations"]
                   for s in (one, two, restore_spec(one, "pg-a-r1", 1, None, None)) for role in ("rw", "ro")}
    assert annotations[("pg-a", "rw")][pip] == annotations[("pg-a", "ro")][pip] == "pip-a"  # 5432 / 5433
    assert [k for k, a in annotations.items() if pip in a] == [("pg-a", "rw"), ("pg-a", "ro")]
    labels = {k: a.get(manifests.DNS_LABEL) for k, a in annotations.items()}
    assert labels == {("pg-a", "rw"): "pga", ("pg-a", "ro"): None, ("pg-b", "rw"): None, ("pg-b", "ro"): None,
                      ("pg-a-r1", "rw"): None, ("pg-a-r1", "ro"): None}
    own = parse_spec(body("pg-c", endpoints={"enabled": True, "sourceRanges": ["203.0.113.10/32"],
                                             "dnsLabel": "pgc"}))
    assert [manifests.load_balancer(own, r, aks)["metadata"]["annotations"][manifests.DNS_LABEL]
            for r in ("rw", "ro")] == ["pgc", "pgc-ro"]  # an IP each: a label each


# ---- 6. the workload identity's client id --------------------------------------------------------

def test_an_unset_client_id_is_refused_before_anything_is_applied(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(on_aks, "aks", settings(identity_client_id="", identity_name=""))
    done = run(api, "POST", "/api/clusters", json=body("pg-noid"))
    assert done.status_code == 422
    assert "PGHA_AKS_IDENTITY_CLIENT_ID" in done.json()["message"]
    assert step(done.json()["report"], "pre-flight")["outcome"] == "failed"
    assert kube_api.writes() == [], "nothing applied"
    with pytest.raises(ValueError, match="PGHA_AKS_IDENTITY_CLIENT_ID"):
        manifests.cluster(ClusterSpec.model_validate({**body("x"), "backup": {"method": "plugin"}}),
                          settings(identity_client_id=""))


# ---- 7. synchronous standbys as CNPG lists them ---------------------------------------------------

def healthy_cluster(spec: dict[str, Any], standbys: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    names = ["pg-1", *standbys]
    pods = [{"metadata": {"name": n, "labels": {"cnpg.io/instanceRole": "primary" if n == "pg-1" else "replica"}},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}} for n in names]
    return {"spec": {"instances": len(names), **spec}, "status": {
        "phase": st.HEALTHY, "currentPrimary": "pg-1", "readyInstances": len(names), "instanceNames": names}}, pods


@pytest.mark.parametrize(("stanza", "expected"), [
    ({"minSyncReplicas": 1, "maxSyncReplicas": 1}, {"pg-2": "quorum", "pg-10": "quorum"}),  # ANY 1 (…)
    ({"postgresql": {"synchronous": {"method": "any", "number": 1}}}, {"pg-2": "quorum", "pg-10": "quorum"}),
    # FIRST 1 ("pg-10", "pg-2"): names sorted as strings (pkg/postgres/replication/explicit.go)
    ({"postgresql": {"synchronous": {"method": "first", "number": 1}}}, {"pg-10": "sync", "pg-2": "potential"}),
    ({}, {"pg-2": "async", "pg-10": "async"}),
])
def test_sync_states_follow_the_method(stanza: dict[str, Any], expected: dict[str, str]) -> None:
    cluster, pods = healthy_cluster(stanza, ["pg-2", "pg-10"])
    status = cnpg.cluster_status(NS, "pg", cluster, pods)
    assert {i.name: i.sync_state for i in status.instances_status if i.role == "standby"} == expected


# ---- 8. walArchivingFailing, Backups and PodMonitors at teardown ----------------------------------

def test_a_backup_waits_behind_one_that_is_not_done(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    ScriptedOperator(kube_api)
    spec = settled(aks, body("pg1"))
    aks.apply_cluster(spec)
    first, second = aks.start_backup(spec, "b1"), aks.start_backup(spec, "b2")
    assert (first.phase, second.phase) == ("started", "pending")
    assert aks.get_backup(NS, "pg1", "b1").phase == "running"
    assert aks.get_backup(NS, "pg1", "b2").phase == "pending", "CNPG runs one Backup of a cluster at a time"
    assert aks.get_backup(NS, "pg1", "b1").phase == "completed"
    assert aks.get_backup(NS, "pg1", "b2").phase == "started"



def test_verification_releases_a_backup_stuck_in_wal_archiving_failing(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi, operator: ScriptedOperator
) -> None:
    """In-tree, a Backup whose instance manager gave up on WAL archiving stays `walArchivingFailing`, and CNPG
    counts it as running (backup_controller.go): the next Backup of the cluster would wait behind it for
    ever. The verification ends failed, saying why, and deletes that Backup record."""
    done = run(api, "POST", "/api/clusters", json=body("pg-stuck", backup={"method": "barmanObjectStore"}))
    assert done.json()["status"] == "succeeded", done.text
    operator.broken_archiving.add("pg-stuck")
    failed = run(api, "POST", "/api/clusters/pg-stuck/backups", params={"namespace": NS}, json={})
    report = report_of(failed)
    assert report["status"] == "failed", failed.text
    assert "walArchivingFailing" in step(report, "wait backup")["detail"]
    released = step(report, "release stuck backup")
    assert released["outcome"] == "done" and "deleted" in released["detail"]
    assert not [p for p in kube_api.objects if p.startswith(f"{CNPG}/backups/")]
    operator.broken_archiving.discard("pg-stuck")
    spec = on_aks.stored_spec(NS, "pg-stuck")
    assert spec is not None
    assert on_aks.start_backup(spec, "pg-stuck-next").phase == "started"  # nothing holds the next one back

# ---- 9. / 10. what the running operator reads --------------------------------------------------------

def test_enable_azure_pvc_updates_is_never_written(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    outcome = aks.configure_operator(parse_spec(body("pg1")))
    assert outcome.outcome == "skipped" and "1.26" in outcome.detail
    assert kube_api.writes() == []


@pytest.mark.parametrize(("image", "version"), [
    ("ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0", (1, 30, 0)),
    ("myacr.azurecr.io/mirror/cloudnative-pg:1.29.2", (1, 29, 2)),
    ("ghcr.io/cloudnative-pg/cloudnative-pg:1.31.0-rc1", (1, 31, 0)),
    ("ghcr.io/cloudnative-pg/cloudnative-pg@sha256:" + "a" * 64, None),
    ("myacr.azurecr.io/cnpg:stable", None),
    ("registry.local:5000/cnpg", None),
])
def test_the_operator_version_comes_from_its_image(image: str, version: tuple[int, int, int] | None) -> None:
    assert image_version(image) == version


def preflight_on(api: FakeKubeApi, aks: AksPlatform, method: str = "auto", **world: Any) -> Any:
    for path in [p for p in api.objects if p.startswith(CRD_PATH) or "/cnpg-system/" in p]:
        del api.objects[path]
    install(api, **world)
    return aks.preflight(parse_spec(body("pg1", backup={"method": method})))


def test_auto_resolves_once_to_what_the_operator_can_run(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    assert preflight_on(kube_api, aks).data["backupMethod"] == "plugin"
    no_plugin = preflight_on(kube_api, aks, plugin=False)
    assert no_plugin.data["backupMethod"] == "barmanObjectStore" and "not installed" in no_plugin.detail
    named = preflight_on(kube_api, aks, method="barmanObjectStore")
    assert "deprecated" in named.detail and "prefer backup.method plugin" in named.detail
    with pytest.raises(PreflightFailed, match="plugin is not installed"):
        preflight_on(kube_api, aks, method="plugin", plugin=False)
    unknown = preflight_on(kube_api, aks, image="ghcr.io/cloudnative-pg/cloudnative-pg@sha256:" + "b" * 64)
    assert "version unknown" in unknown.detail and "assuming 1.30" in unknown.detail


def test_in_tree_is_refused_for_cnpg_131(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with pytest.raises(PreflightFailed, match=r"gone in CNPG 1\.31"):
        preflight_on(kube_api, aks, version="1.31.0", plugin=False)
    assert preflight_on(kube_api, aks, version="1.31.0").data["backupMethod"] == "plugin"
    with pytest.raises(ValueError, match="auto is resolved"):
        manifests.cluster(parse_spec(body("pg1")), settings())


def test_an_operator_too_old_or_missing_is_refused(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    with pytest.raises(PreflightFailed, match=r"older than pgha supports \(1\.29 to 1\.30\)"):
        preflight_on(kube_api, aks, version="1.27.4")
    del kube_api.objects["/apis/apps/v1/namespaces/cnpg-system/deployments/cnpg-controller-manager"]
    with pytest.raises(PreflightFailed, match="cnpg-system/cnpg-controller-manager not found"):
        aks.preflight(parse_spec(body("pg1")))


def test_the_stored_spec_keeps_the_resolved_method(aks: AksPlatform, kube_api: FakeKubeApi) -> None:
    spec = settled(aks, body("pg1"))
    aks.apply_cluster(spec)
    cluster = kube_api.get(f"{CNPG}/clusters/pg1")
    assert cluster is not None
    assert json.loads(cluster["metadata"]["annotations"][SPEC_ANNOTATION])["backup"]["method"] == "plugin"
    assert aks.stored_spec(NS, "pg1") == spec


# ---- 11. smaller gaps --------------------------------------------------------------------------------

def test_wal_archiving_is_proven_by_a_switched_segment(
    api: httpx.Client, on_aks: AksPlatform, kube_api: FakeKubeApi, operator: ScriptedOperator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = run(api, "POST", "/api/clusters", json=body("pg-wal"))
    archived = step(done.json(), "WAL archiving")
    assert archived["outcome"] == "done" and archived["data"]["segment"] in operator.archive[-1]
    (exec_call,) = kube_api.calls("GET", "/exec")
    assert exec_call.path == f"/api/v1/namespaces/{NS}/pods/pg-wal-1/exec"
    assert exec_call.query["container"] == "postgres"
    operator.broken_archiving.add("pg-wal")
    on_aks_spec = on_aks.stored_spec(NS, "pg-wal")
    assert on_aks_spec is not None
    kube_api.objects[f"{CNPG}/clusters/pg-wal"]["status"]["conditions"][1]["status"] = "True"
    import shared.platforms.aks.platform as platform_module

    monkeypatch.setattr(platform_module, "ARCHIVE_WAIT_SECONDS", 0)
    with pytest.raises(RuntimeError, match="not found in backups/ within"):
        on_aks.switch_wal_and_find_segment(on_aks_spec)


def test_a_bad_backup_schedule_is_a_400_before_anything_is_made(api: httpx.Client, on_aks: AksPlatform,
                                                                 kube_api: FakeKubeApi) -> None:
    for schedule, why in (("0 61 * * * *", "minutes: 61 is outside 0-59"), ("a b c d e f", "not a number")):
        refused = api.post("/api/clusters", json=body("pg-cron", backup={"schedule": schedule}))
        assert refused.status_code == 400 and refused.json()["field"] == "backup.schedule", refused.text
        assert why in refused.json()["message"]
    refused = api.post("/api/clusters", json=body("pg-cron", schedules={"backupVerification": "0 0 * * * 9"}))
    assert refused.status_code == 400 and refused.json()["field"] == "schedules.backupVerification"
    assert kube_api.writes() == []


def test_a_restore_cluster_sets_no_resources_as_the_runbooks() -> None:
    source = ClusterSpec.model_validate({**body("pg1"), "backup": {"method": "plugin"}})
    assert "resources" in manifests.cluster(source, settings())["spec"]
    restored = manifests.cluster(restore_spec(source, "pg1-r1", 1, None, None), settings())
    assert "resources" not in restored["spec"]


def test_unknown_fields_are_refused_under_strict_and_pruned_otherwise(aks: AksPlatform,
                                                                       kube_api: FakeKubeApi) -> None:
    """pgha sends fieldValidation=Strict on every write, so a field the installed CRD does not know fails
    loudly instead of vanishing (kubectl's default, Warn, would prune it)."""
    spec = settled(aks, body("pg1"))
    cluster = manifests.cluster(spec, settings())
    cluster["spec"]["notAField"] = True
    with pytest.raises(Exception, match=r'unknown field "spec\.notAField"'):
        aks.kube.apply(cluster)
    assert all(r.query.get("fieldValidation") == "Strict" for r in kube_api.requests if r.method != "GET")
