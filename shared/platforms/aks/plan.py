"""Plan before acting: every Kubernetes object and every Azure call a runbook's first run would make.

The runbook itself is walked (orchestrations/planning.py); each step's activity runs the adapter's own
code against recorders that touch nothing, and what needs SQL or the object store is answered as a
run that goes through would find it, with a note. The recorders answer as an AKS cluster set up as
docs/azure.md says would (the newest CNPG pgha supports with the Barman Cloud plugin, both PodMonitor
CRDs, nothing of pgha's yet, or the one cluster the runbook acts on), so the plan is the full first run;
the run's own pre-flight reads the real ones. A password is shown as `<generated in the activity>`,
never made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.alert_rules import STANDARD
from shared.backups import Backup
from shared.outcome import done
from shared.platforms.aks import alerting
from shared.platforms.aks import kube as kube_paths
from shared.platforms.aks.azure import AUDIENCE, credential_name, service_account_subject
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.operator import PLUGIN, PLUGIN_LABEL, SUPPORTED
from shared.platforms.aks.platform import AksPlatform
from shared.spec import ClusterSpec
from shared.status import HEALTHY, NOT_FOUND, ClusterStatus, Condition, InstanceStatus

GENERATED = "<generated in the activity>"


class RecordingKube:
    """The Kube verbs, recorded instead of sent; what a run made (or the cluster it acts on) reads back."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.made: dict[tuple[str, str | None, str], dict[str, Any]] = {}

    def keep(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self.made[(obj["kind"], meta.get("namespace"), meta["name"])] = obj
        return obj

    def _record(self, method: str, path: str, note: str, obj: dict[str, Any] | None = None) -> None:
        entry: dict[str, Any] = {"call": f"{method} {path}", "note": note}
        if obj is not None:
            entry["object"] = obj
        self.calls.append(entry)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self._record("PATCH", kube_paths.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
                     "server-side apply (fieldManager pgha)", obj)
        return self.keep(obj)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        if obj["kind"] == "Secret":
            obj = {**obj, "data": {**obj.get("data", {}), "password": GENERATED}}
        self._record("POST", kube_paths.path(obj["apiVersion"], obj["kind"], meta.get("namespace")),
                     "create if absent", obj)
        return self.keep(obj)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if kind == "Deployment":  # the operator, as its release manifest installs it
            newest = ".".join(map(str, SUPPORTED[-1]))
            return {"spec": {"template": {"spec": {"containers": [
                {"name": "manager", "image": f"ghcr.io/cloudnative-pg/cloudnative-pg:{newest}.0"}]}}},
                "status": {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}
        return self.made.get((kind, namespace, name))  # what the run made, or the cluster it acts on

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        if kind == "Service" and selector.startswith(PLUGIN_LABEL):
            return [{"metadata": {"name": "barman-cloud", "labels": {PLUGIN_LABEL: PLUGIN}}}]
        return []

    def crd_installed(self, name: str) -> bool:
        return True

    def list_all(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        return []

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str,
               grace_seconds: int | None = None) -> bool:
        note = "delete" + (f" (grace {grace_seconds}s)" if grace_seconds is not None else "")
        self._record("DELETE", kube_paths.path(api_version, kind, namespace, name), note)
        self.made.pop((kind, namespace, name), None)
        return True

    def _patch(self, note: str, api_version: str, kind: str, namespace: str | None, name: str,
               body: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        self.calls.append({"call": f"PATCH {kube_paths.path(api_version, kind, namespace, name)}{subresource}",
                           "note": note, "body": body})
        return body

    def merge_patch(self, *args: Any) -> dict[str, Any]:
        return self._patch("merge patch", *args)

    def strategic_patch(self, *args: Any) -> dict[str, Any]:
        return self._patch("strategic merge patch", *args)

    def patch_status(self, *args: Any) -> dict[str, Any]:
        return self._patch("merge patch of the status subresource", *args, subresource="/status")


class RecordingAzure:
    """The Azure calls, recorded with their ARM paths and bodies."""

    def __init__(self, aks: AksSettings, kube: RecordingKube) -> None:
        self.aks = aks
        self.calls = kube.calls

    def _identity_path(self, namespace: str, cluster: str) -> str:
        return (f"/subscriptions/{self.aks.subscription_id}/resourceGroups/{self.aks.identity_resource_group}/"
                f"providers/Microsoft.ManagedIdentity/userAssignedIdentities/{self.aks.identity_name}/"
                f"federatedIdentityCredentials/{credential_name(namespace, cluster)}")

    def ensure_federated_credential(self, namespace: str, cluster: str) -> dict[str, str]:
        aks_path = (f"/subscriptions/{self.aks.subscription_id}/resourceGroups/{self.aks.resource_group}/providers/"
                    f"Microsoft.ContainerService/managedClusters/{self.aks.cluster}")
        self.calls.append({"call": f"GET {aks_path}", "note": "Azure: the AKS OIDC issuer (oidcIssuerProfile)"})
        subject = service_account_subject(namespace, cluster)
        self.calls.append({"call": f"PUT {self._identity_path(namespace, cluster)}", "note": "Azure: federated "
                           "credential", "body": {"properties": {"issuer": "<the AKS OIDC issuer>",
                                                                 "subject": subject, "audiences": [AUDIENCE]}}})
        return {"name": credential_name(namespace, cluster), "subject": subject, "issuer": "<the AKS OIDC issuer>"}

    def delete_federated_credential(self, namespace: str, cluster: str) -> bool:
        self.calls.append({"call": f"DELETE {self._identity_path(namespace, cluster)}",
                           "note": "Azure: federated credential removed"})
        return True

    def location_of(self, resource_id: str, api_version: str) -> str:
        self.calls.append({"call": f"GET {resource_id}", "note": "Azure: the workspace's region"})
        return "<the workspace's region>"

    def put_resource(self, resource: dict[str, Any], resource_id: str) -> None:
        self.calls.append({"call": f"PUT {resource_id}?api-version={resource['apiVersion']}",
                           "note": "Azure: create or update", "object": resource})

    def container(self, destination_path: str) -> Any:
        raise NotImplementedError



# What needs SQL, the object store or a metrics query is not sent: the plan says what the run checks there.
AT_RUN_TIME = {
    "preflight_backup_destination": "the object store must hold no WAL for the server name (read at run time)",
    "verify_monitoring": "the instances' metrics must be scraped (read at run time)",
    "check_zone_spread": "the instances' nodes must spread over zones when zoneSpread asks (read at run time)",
    "check_wal_archiving": "a WAL switch on the primary, its segment found in the object store (at run time)",
    "archive_last_wal": "a WAL switch on the primary, so the archive holds the last commits (at run time)",
    "load_sample_dataset": "the sample table written through the rw service (at run time)",
    "check_replicas": "rw answers as primary, ro as standby, with the same rows (at run time)",
    "check_archiving": "the ContinuousArchiving condition and pg_stat_archiver (read at run time)",
    "inventory_backups": "backup.info, the base backup and WAL continuity in the object store (read at run time)",
    "check_recovery_target": "the target against the newest archived commit (read at run time)",
    "run_checks": "the read-only SQL checks on the restored cluster (at run time)",
    "apply_owner_secret": "the owner's password set from the restore's own secret (SQL, at run time)",
    "drill_preflight": "healthy, an in-sync standby under the lag limit, drills opted in (read at run time)",
    "prepare_probe": "the probe's tables made on the primary (SQL, at run time)",
    "write_probe": "numbered synchronous writes through the rw service for the whole drill (at run time)",
    "verify_writes": "a write through the rw service (at run time)",
    "stop_probe": "the probe told to stop (SQL, at run time)",
    "count_lost_writes": "acknowledged writes looked up on the primary (at run time)",
    "drop_probe": "the probe's tables dropped (SQL, at run time)",
    "delete_backups": "every blob under the server name deleted from the object store (at run time)",
    "get_backup": "the Backup polled until completed (at run time)",
}
BOOKKEEPING = {"store_report", "release_lock", "post_report", "report_status"}


class PlanWorld:
    """The recorders, the cluster a runbook acts on (as its Cluster object with CNPG's healthy status), and
    each activity's answer: its own code on the recording adapter, or what a run that goes through finds."""

    def __init__(self, aks: AksSettings, existing: ClusterSpec | None = None) -> None:
        self.aks = aks
        self.kube = RecordingKube()
        self.platform = AksPlatform(aks, self.kube, RecordingAzure(aks, self.kube))  # type: ignore[arg-type]
        self.entries: list[dict[str, Any]] = []
        self.primaries: dict[tuple[str, str], str] = {}
        if existing is not None:  # the cluster as the adapter's own deploy made it; its calls are not this plan's
            settled = self.platform.preflight(existing, "plan").data["spec"]
            self.platform.apply_cluster(ClusterSpec.model_validate(settled))
            self.kube.calls.clear()

    def answer(self, step: str, activity: str, payload: Any, run: Callable[[str, Any], Any]) -> Any:
        if activity in BOOKKEEPING:
            return _bookkeeping(activity, payload)
        before = len(self.kube.calls)
        if activity == "preflight":
            settled = self.platform.preflight(ClusterSpec.model_validate(payload.get("spec", payload)), "plan")
            answer, note = settled.dump(), settled.detail
        elif activity == "get_cluster_status":
            answer, note = self._status(payload["namespace"], payload["name"]), "polled until ready (at run time)"
        elif activity in ("delete_primary", "promote_instance"):
            answer, note = self._failover(activity, payload), ""
        elif activity in AT_RUN_TIME:
            answer, note = _found(activity, payload), AT_RUN_TIME[activity]
        else:  # the adapter's own code, on the recorders
            answer = run(activity, payload)
            note = (answer.get("detail") if isinstance(answer, dict) else "") or "nothing to send"
        made = self.kube.calls[before:]
        self.entries += [{"step": step, **call} for call in made] or [{"step": step, "call": None, "note": note}]
        return answer

    def _status(self, namespace: str, name: str) -> dict[str, Any]:
        """CNPG's healthy Cluster status for the cluster the run made or acts on."""
        spec = self.platform.stored_spec(namespace, name)
        instances = spec.instance_names if spec else []
        primary = self.primaries.get((namespace, name), instances[0] if instances else None)
        standbys = [i for i in instances if i != primary]
        sync = spec.synchronous_replicas if spec else 0
        status = ClusterStatus(
            name=name, namespace=namespace, phase=HEALTHY if spec else NOT_FOUND, instances=len(instances),
            ready_instances=len(instances), current_primary=primary, target_primary=primary,
            instances_status=[InstanceStatus(name=i, role="primary" if i == primary else "standby", ready=True,
                                             sync_state="quorum" if sync and i != primary else None)
                              for i in instances],
            conditions=[Condition(type="ContinuousArchiving", status="True", message="planned")],
            synchronous_standby_names=f"ANY {sync} ({', '.join(standbys)})" if sync else None,
        )
        return {**status.dump(), "healthy": status.healthy}

    def _failover(self, activity: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The drill's two acts, as the adapter sends them (the primary pod's delete, `kubectl cnpg promote`'s
        status patch); the planned cluster's primary moves as CNPG would move it."""
        spec = ClusterSpec.model_validate(payload["spec"])
        key = (spec.namespace, spec.name)
        current = self.primaries.get(key, spec.instance_names[0])
        if activity == "delete_primary":
            grace = 1 if payload["mode"] == "graceful" else 0
            self.kube.delete("v1", "Pod", spec.namespace, current, grace)
            self.primaries[key] = next(i for i in spec.instance_names if i != current)
            return done(f"primary pod {current} deleted; the operator recreates it", instance=current).dump()
        target = payload["instance"]
        self.kube.calls.append({
            "call": f"PATCH {kube_paths.path('postgresql.cnpg.io/v1', 'Cluster', spec.namespace, spec.name)}/status",
            "note": "merge patch with metadata.resourceVersion (as kubectl cnpg promote)",
            "body": {"status": {"targetPrimary": target, "phase": "Switchover in progress"}}})
        self.primaries[key] = target
        return done(f"switchover to {target} requested (status.targetPrimary)").dump()


def _found(activity: str, payload: Any) -> Any:
    """What a run that goes through finds, in the shape the runbook reads."""
    data: dict[str, Any] = {
        "count_lost_writes": {"lost": 0, "lostIds": []},
        "run_checks": {"checks": []},
    }.get(activity, {})
    if activity == "drill_preflight":
        spec = ClusterSpec.model_validate(payload)
        data = {"primary": spec.instance_names[0], "roles": {i: "standby" for i in spec.instance_names[1:]}}
    if activity == "write_probe":
        return {"acknowledged": [], "windows": [], "attempted": 0}
    if activity == "get_backup":
        return Backup(name=payload["backupName"], cluster=payload["name"], namespace=payload["namespace"],
                      phase="completed").dump()
    return done(AT_RUN_TIME[activity], **data).dump()


def _bookkeeping(activity: str, payload: Any) -> Any:
    return {"store_report": {}, "release_lock": True, "post_report": {"outcome": "skipped", "detail": ""},
            "report_status": None}[activity]


def monitoring_plan(aks: AksSettings, namespaces: list[str]) -> list[dict[str, Any]]:
    """`pgha plan monitoring`: what calls pgha when a cluster goes wrong, as entries of `render`. A setting
    left unset is shown by its name, and the function key never: the template writes it into the action
    group itself, and an operator into the webhook Secret."""
    aks = replace(aks, monitor_workspace_id=aks.monitor_workspace_id or "<PGHA_MONITOR_WORKSPACE_ID>",
                  alerts_url=aks.alerts_url or "<PGHA_ALERTS_URL>")
    step = "alert rules"
    arm = [(alerting.action_group(aks.alerts_url, None), alerting.action_group_id(aks),
            "Azure: pgha's action group (infra/azuredeploy.json makes it with the key; PGHA_ACTION_GROUP_ID)"),
           (alerting.aks_rule_group(aks, "<the workspace's region>", STANDARD), alerting.rule_group_id(aks),
            "Azure: the rule group deploy applies with PGHA_MONITORING_APPLY")]
    entries = [{"step": step, "call": f"PUT {where}?api-version={resource['apiVersion']}", "note": note,
                "object": resource} for resource, where, note in arm]
    kube = [(alerting.prometheus_rule(aks.operator_namespace, STANDARD),
             "kube-prometheus-stack: the same rules (deploy applies it where the CRD is)")]
    for namespace in namespaces:
        kube += [(alerting.webhook_secret(namespace, aks.alerts_url, None), "the webhook's URL, key and all"),
                 (alerting.alertmanager_config(namespace, STANDARD), "kube-prometheus-stack: Alertmanager's route "
                                                                     f"to pgha for {namespace}'s alerts")]
    for obj, note in kube:
        meta = obj["metadata"]
        path = kube_paths.path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        entries.append({"step": step, "call": f"PATCH {path}", "note": f"server-side apply: {note}", "object": obj})
    return entries
