"""The `aks` adapter's manifests against the runbook's YAML, field by field, in both object-store modes.

The fixtures hold the runbook's objects (tests/contract/fixtures/*/values.yaml says where each value
comes from). Every runbook field must come out of pgha with the runbook's value; every field where
pgha departs from the runbook, and every field it adds, is listed below with its reason, and must
really occur (the lists cannot go stale).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.platforms.aks import manifests
from shared.platforms.aks.config import AksSettings
from shared.restore import restore_spec
from shared.spec import ClusterSpec, parse_spec

FIXTURES = Path(__file__).parent / "fixtures"
VALUES = yaml.safe_load((FIXTURES / "runbook" / "values.yaml").read_text())["variables"]
AKS = AksSettings(
    identity_client_id=VALUES["AKS_UAMI_WORKLOAD_CLIENTID"],
    node_resource_group=VALUES["AKS_PRIMARY_CLUSTER_NODERG_NAME"],
)
NAME = VALUES["PG_PRIMARY_CLUSTER_NAME"]
RESTORED = VALUES["PG_PRIMARY_CLUSTER_NAME_RECOVERED"]

SEVERAL_CLUSTERS = "several clusters share a namespace (a restore sits beside its source): names carry the cluster's"
SHORT_NAME = ("`<cluster>-lb-rw|ro`: a Service name is at most 63 characters, and `-load-balancer-rw` after a "
              "50-character cluster name is 67")
OWN_POD_MONITOR = ("CNPG deprecates monitoring.enablePodMonitor (docs/src/monitoring.md); pgha makes the "
                   "PodMonitor itself where its CRD is installed")
ONE_LABEL_PER_IP = ("cloud-provider-azure keeps one DNS label per public IP and refuses a second Service setting "
                    "one (reconcileDNSSettings): rw sets it, ro shares the name on 5433")
SOURCE_REACH_ONLY = ("a DNS label and a static IP are the source's: the restore's LoadBalancers get IPs of their own, "
                     "and two Services may not claim one IP's ports")
OPERATOR_BUILT = "written by the operator when it makes the PodMonitor; pgha's carries the cluster label only"
VOLUME_MODE = "volumeMode Filesystem (the default) on every volume: the runbook's restore says so, pgha always does"
RESTORE_LIKE_SOURCE = "a restore cluster keeps its source's settings, so checks run on the same configuration"
DEVIATIONS: dict[str, dict[str, str]] = {  # fixture -> path -> why pgha's value differs
    "cluster.yaml": {"spec.monitoring": OWN_POD_MONITOR},
    "cluster-restore.yaml": {
        "spec.inheritedMetadata.annotations.service.beta.kubernetes.io/azure-dns-label-name": SOURCE_REACH_ONLY},
    "podmonitor.yaml": {
        "metadata.annotations": OPERATOR_BUILT, "metadata.labels.azure.workload.identity/use": OPERATOR_BUILT,
        "spec.selector.matchLabels.azure.workload.identity/use": OPERATOR_BUILT},
    "podmonitor-azmonitoring.yaml": {"metadata.name": SEVERAL_CLUSTERS},
    "scheduledbackup.yaml": {"metadata.name": SEVERAL_CLUSTERS},
    "service-rw.yaml": {"metadata.name": SHORT_NAME},
    "service-ro.yaml": {"metadata.name": SHORT_NAME,
                        "metadata.annotations.service.beta.kubernetes.io/azure-dns-label-name": ONE_LABEL_PER_IP},
}
NOT_RENDERED = {  # the runbook's objects pgha does not write, and why
    "configmap-cnpg-controller-manager-config.yaml": (
        "ENABLE_AZURE_PVC_UPDATES was removed in CNPG 1.26 (docs/src/release_notes/old/v1.26.md): no operator "
        "pgha supports reads it"),
}
OWNER_SECRET = ("the Secret pgha connects with: unnamed, CNPG makes `<restore>-app` with a random password and "
                "sets it on the recovered owner (api/v1/cluster_defaults.go, internal/controller/cluster_create.go)")
EXTRAS: dict[str, dict[str, str]] = {  # fixture -> path -> why pgha adds it
    "cluster.yaml": {"spec.storage.pvcTemplate.volumeMode": VOLUME_MODE,
                     "spec.walStorage.pvcTemplate.volumeMode": VOLUME_MODE},
    "cluster-restore.yaml": {
        **{f"spec.{key}": RESTORE_LIKE_SOURCE for key in (
            "startDelay", "stopDelay", "replicationSlots", "topologySpreadConstraints", "postgresql")},
        "spec.backup": "the restore archives under its own server name, removed with it",
        "spec.plugins": "the restore archives under its own server name, removed with it",
        **{f"spec.bootstrap.recovery.{key}": OWNER_SECRET for key in ("database", "owner", "secret")},
    },
    "secret-db-user-pass.yaml": {"metadata.labels": "cnpg.io/reload: CNPG watches only the Secrets it owns or those "
                                 "labelled cnpg.io/reload: a rotated password reaches the owner's role"},
    **{fixture: {"spec.podTargetLabels": "each series labelled with its cluster (cnpg_io_cluster), so one set of "
                                         "alert rules, made once, serves every cluster (shared/platforms/aks/"
                                         "alert_rules.py)"}
       for fixture in ("podmonitor.yaml", "podmonitor-azmonitoring.yaml")},
    "service-rw.yaml": {"spec.selector.cnpg.io/cluster": SEVERAL_CLUSTERS},
    "service-ro.yaml": {"spec.selector.cnpg.io/cluster": SEVERAL_CLUSTERS},
}


def spec_of(mode: str) -> ClusterSpec:
    return parse_spec(json.loads((FIXTURES / mode / "spec.json").read_text()))


def rendered(mode: str, fixture: str) -> dict[str, Any]:
    spec = spec_of(mode)
    if fixture == "cluster.yaml":
        return manifests.cluster(spec, AKS)
    if fixture == "cluster-restore.yaml":
        return manifests.cluster(restore_spec(spec, RESTORED, 1, None, None), AKS)
    if fixture == "backup-ondemand.yaml":
        return manifests.backup(spec, VALUES["BACKUP_ONDEMAND_NAME"])
    if fixture == "objectstore.yaml":
        return manifests.object_store(spec)
    return {
        "scheduledbackup.yaml": manifests.scheduled_backup(spec),
        "secret-db-user-pass.yaml": manifests.app_secret(spec, "<generated>"),
        "podmonitor.yaml": manifests.pod_monitor(spec),
        "podmonitor-azmonitoring.yaml": manifests.managed_prometheus_pod_monitor(spec),
        "service-rw.yaml": manifests.load_balancer(spec, "rw", AKS),
        "service-ro.yaml": manifests.load_balancer(spec, "ro", AKS),
    }[fixture]


def runbook_object(mode: str, fixture: str) -> dict[str, Any]:
    """The fixture as the API server stores it: `kubectl apply -n cnpg-database` puts the namespace in."""
    body = yaml.safe_load((FIXTURES / mode / fixture).read_text())
    body["metadata"].setdefault("namespace", VALUES["PG_NAMESPACE"])
    return body


def scalar(value: Any) -> Any:
    """Kubernetes reads `cpu: 2` and `cpu: "2"` alike; booleans stay booleans."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def compare(want: Any, got: Any, path: str = "") -> tuple[dict[str, tuple[Any, Any]], set[str]]:
    """(paths whose values differ, paths pgha adds)."""
    if isinstance(want, dict) and isinstance(got, dict):
        differ: dict[str, tuple[Any, Any]] = {}
        extra = {f"{path}{key}" for key in got if key not in want}
        for key, value in want.items():
            if key not in got:
                differ[f"{path}{key}"] = (value, "<missing>")
                continue
            d, e = compare(value, got[key], f"{path}{key}.")
            differ.update(d)
            extra |= e
        return differ, extra
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        differ, extra = {}, set()
        for n, (w, g) in enumerate(zip(want, got, strict=True)):
            d, e = compare(w, g, f"{path}{n}.")
            differ.update(d)
            extra |= e
        return differ, extra
    return ({} if scalar(want) == scalar(got) else {path.rstrip("."): (want, got)}), set()


CASES = [("runbook", f.name) for f in sorted((FIXTURES / "runbook").glob("*.yaml")) if f.name not in (
    "values.yaml", *NOT_RENDERED)] + [("plugin", f.name) for f in sorted((FIXTURES / "plugin").glob("*.yaml"))]


@pytest.mark.parametrize(("mode", "fixture"), CASES, ids=[f"{m}/{f}" for m, f in CASES])
def test_manifest_matches_the_runbook(mode: str, fixture: str) -> None:
    want = runbook_object(mode, fixture)
    got = rendered(mode, fixture)
    if fixture.startswith("secret"):
        assert got["data"]["password"] != "<generated>"
        got = {**got, "data": {**got["data"], "password": "<generated>"}}
    differ, extra = compare(want, got)
    allowed = DEVIATIONS.get(fixture, {})
    assert set(differ) == set(allowed), f"{mode}/{fixture}: {differ}"
    assert extra <= set(EXTRAS.get(fixture, {})), f"{mode}/{fixture} adds {extra - set(EXTRAS.get(fixture, {}))}"


def test_every_listed_extra_is_real() -> None:
    seen: set[tuple[str, str]] = set()
    for mode, fixture in CASES:
        want = runbook_object(mode, fixture)
        _, extra = compare(want, rendered(mode, fixture))
        seen |= {(fixture, path) for path in extra}
    listed = {(fixture, path) for fixture, paths in EXTRAS.items() for path in paths}
    assert listed <= seen, f"listed but never added: {listed - seen}"


def test_the_newer_synchronous_stanza_when_asked() -> None:
    spec = spec_of("runbook").model_copy(update={"synchronous_method": "any"})
    body = manifests.cluster(spec, AKS)["spec"]
    assert body["postgresql"]["synchronous"] == {"method": "any", "number": 1}
    assert "minSyncReplicas" not in body and "maxSyncReplicas" not in body


def test_a_point_in_time_restore_names_its_target() -> None:
    spec = restore_spec(spec_of("runbook"), RESTORED, 1, "2026-11-26T03:00:00+00:00", None)
    recovery = manifests.cluster(spec, AKS)["spec"]["bootstrap"]["recovery"]
    assert recovery["source"] == "clusterBackup"
    assert recovery["recoveryTarget"] == {"targetTime": "2026-11-26T03:00:00+00:00"}
    lsn = restore_spec(spec_of("runbook"), RESTORED, 1, None, "0/5000060")
    assert manifests.cluster(lsn, AKS)["spec"]["bootstrap"]["recovery"]["recoveryTarget"] == {"targetLSN": "0/5000060"}


def test_a_restore_names_the_secret_its_owner_answers_to() -> None:
    """Unnamed, CNPG would make `<restore>-app` with a random password and set it on the recovered owner, so the
    source's Secret pgha connects with would stop working once the restore's primary reconciles."""
    shared = manifests.cluster(restore_spec(spec_of("plugin"), RESTORED, 1, None, None), AKS)
    assert shared["spec"]["bootstrap"]["recovery"]["secret"] == {"name": spec_of("plugin").bootstrap.secret_name}
    own = manifests.cluster(restore_spec(spec_of("plugin"), RESTORED, 1, None, None, own_secret=True), AKS)
    assert own["spec"]["bootstrap"]["recovery"]["secret"] == {"name": f"{RESTORED}-app"}
    assert own["spec"]["bootstrap"]["recovery"]["owner"] == "app"


def test_deploy_objects_in_order() -> None:
    kinds = [o["kind"] for o in manifests.deploy_objects(spec_of("plugin"), AKS)]
    assert kinds == ["Secret", "PodMonitor", "PodMonitor", "ObjectStore", "Cluster", "Service", "Service",
                     "ScheduledBackup"]


def test_what_the_runbook_applies_and_pgha_does_not_is_named() -> None:
    for fixture in NOT_RENDERED:
        assert (FIXTURES / "runbook" / fixture).exists()
    kinds = {(o["kind"], o["metadata"]["name"]) for o in manifests.deploy_objects(spec_of("runbook"), AKS)}
    assert ("ConfigMap", "cnpg-controller-manager-config") not in kinds


def test_a_restore_of_a_torn_down_cluster_brings_its_own_secret() -> None:
    spec = restore_spec(spec_of("runbook"), RESTORED, 1, None, None, own_secret=True)
    recovery = manifests.cluster(spec, AKS)["spec"]["bootstrap"]["recovery"]
    assert recovery == {"source": "clusterBackup", "database": "appdb", "owner": "app",
                        "secret": {"name": f"{RESTORED[:45]}-app"}}
