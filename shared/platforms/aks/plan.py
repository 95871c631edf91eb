"""Plan before acting: every Kubernetes object and every Azure call a runbook's first run would make,
found by running the adapter's own steps against recorders that touch nothing.

The recorders answer as an empty cluster set up as docs/azure.md says would (the newest CNPG pgha
supports with the Barman Cloud plugin, both PodMonitor CRDs, nothing of pgha's yet), so the plan is the
full first run; the deploy's pre-flight reads the real ones. A password is shown as `<generated in the
activity>`, never made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from shared.platforms.aks import kube as kube_paths
from shared.platforms.aks.azure import AUDIENCE, credential_name, service_account_subject
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.operator import PLUGIN, PLUGIN_LABEL, SUPPORTED
from shared.platforms.aks.platform import AksPlatform
from shared.restore import restore_name, restore_spec
from shared.spec import ClusterSpec

GENERATED = "<generated in the activity>"
RUNBOOKS = ("deploy", "teardown", "restore", "verify", "drill")


class RecordingKube:
    """The Kube verbs, recorded instead of sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _record(self, method: str, path: str, note: str, obj: dict[str, Any] | None = None) -> None:
        entry: dict[str, Any] = {"call": f"{method} {path}", "note": note}
        if obj is not None:
            entry["object"] = obj
        self.calls.append(entry)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self._record("PATCH", kube_paths.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
                     "server-side apply (fieldManager pgha)", obj)
        return obj

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        if obj["kind"] == "Secret":
            obj = {**obj, "data": {**obj.get("data", {}), "password": GENERATED}}
        self._record("POST", kube_paths.path(obj["apiVersion"], obj["kind"], meta.get("namespace")),
                     "create if absent", obj)
        return obj

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if kind == "Deployment":  # the operator, as its release manifest installs it
            newest = ".".join(map(str, SUPPORTED[-1]))
            return {"spec": {"template": {"spec": {"containers": [
                {"name": "manager", "image": f"ghcr.io/cloudnative-pg/cloudnative-pg:{newest}.0"}]}}},
                "status": {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}}
        return None  # nothing of pgha's exists yet

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
        return True

    def merge_patch(self, *args: Any) -> dict[str, Any]:
        raise NotImplementedError

    strategic_patch = patch_status = merge_patch


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

    def container(self, destination_path: str) -> Any:
        raise NotImplementedError


def steps(runbook: str, spec: ClusterSpec) -> list[tuple[str, Callable[[AksPlatform], Any]]]:
    """The runbook's platform steps, in its order (reads and SQL steps leave nothing to review)."""
    if runbook == "deploy":
        return [
            ("namespace", lambda p: p.ensure_namespace(spec)),
            ("app-user secret", lambda p: p.ensure_app_secret(spec, "<operation id>")),
            ("operator config", lambda p: p.configure_operator(spec)),
            ("monitoring", lambda p: p.configure_monitoring(spec)),
            ("backup identity", lambda p: p.ensure_backup_identity(spec)),
            ("apply cluster", lambda p: p.apply_cluster(spec)),
            ("endpoints", lambda p: p.expose_endpoints(spec)),
            ("scheduled backup", lambda p: p.ensure_scheduled_backup(spec)),
        ]
    if runbook == "teardown":
        return [
            ("remove endpoints", lambda p: p.remove_endpoints(spec.namespace, spec.name)),
            ("remove scheduled backups", lambda p: p.remove_scheduled_backups(spec.namespace, spec.name)),
            ("delete cluster", lambda p: p.delete_cluster(spec.namespace, spec.name)),
            ("delete app-user secret", lambda p: p.delete_app_secret(spec)),
            ("remove backup identity", lambda p: p.remove_backup_identity(spec)),
        ]
    if runbook == "restore":
        target = restore_spec(spec, restore_name(spec.name, "<operation id>"), 1, None, None)
        return [
            ("backup identity", lambda p: p.ensure_backup_identity(target)),
            ("apply recovery cluster", lambda p: p.apply_cluster(target)),
            ("delete cluster (clean-up)", lambda p: p.delete_cluster(target.namespace, target.name)),
            ("remove backup identity", lambda p: p.remove_backup_identity(target)),
        ]
    if runbook == "verify":
        return [("take backup", lambda p: p.kube.create(_backup(spec)))]
    if runbook == "drill":
        return [
            ("delete primary (graceful)", lambda p: p.kube.delete("v1", "Pod", spec.namespace, f"{spec.name}-1", 1)),
            ("switch back", lambda p: p.kube.calls.append({
                "call": f"PATCH {kube_paths.path('postgresql.cnpg.io/v1', 'Cluster', spec.namespace, spec.name)}"
                        "/status",
                "note": "merge patch with metadata.resourceVersion (as kubectl cnpg promote)",
                "body": {"status": {"targetPrimary": f"{spec.name}-1", "phase": "Switchover in progress"}}})),
        ]
    raise ValueError(f"runbook must be one of {', '.join(RUNBOOKS)}")


def _backup(spec: ClusterSpec) -> dict[str, Any]:
    from shared.platforms.aks import manifests

    body = manifests.backup(spec, f"{spec.name}-<operation id>")
    body["metadata"]["labels"] = {"cnpg.io/cluster": spec.name}
    return body


def plan(runbook: str, spec: ClusterSpec, aks: AksSettings) -> list[dict[str, Any]]:
    """The calls, after the deploy's own pre-flight (PreflightFailed when it refuses, as the run would)."""
    recorder = RecordingKube()
    platform = AksPlatform(aks, recorder, RecordingAzure(aks, recorder))  # type: ignore[arg-type]
    settled = platform.preflight(spec, "plan")
    spec = ClusterSpec.model_validate(settled.data["spec"])
    entries: list[dict[str, Any]] = [{"step": "pre-flight", "call": None, "note": settled.detail}]
    for name, step in steps(runbook, spec):
        before = len(recorder.calls)
        outcome = step(platform)
        made = recorder.calls[before:]
        if not made:
            detail = getattr(outcome, "detail", "")
            entries.append({"step": name, "call": None, "note": detail or "nothing to send"})
        entries += [{"step": name, **call} for call in made]
    return entries


def render(entries: list[dict[str, Any]]) -> str:
    """One YAML document per call: its step, verb and path as comments, the object (or body) as YAML."""
    documents = []
    for entry in entries:
        head = [f"# step: {entry['step']}"]
        if entry.get("call"):
            head.append(f"# {entry['call']}  ({entry['note']})")
        else:
            head.append(f"# no call: {entry['note']}")
        body = entry.get("object") or entry.get("body") or {"noCall": entry["note"]}
        documents.append("\n".join(head) + "\n" + yaml.safe_dump(json.loads(json.dumps(body)), sort_keys=False))
    return "---\n".join(documents)
