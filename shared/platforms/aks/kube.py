"""Kubernetes access for the `aks` adapter: the real kubernetes client, pointed at AKS.

Credentials, in order: `PGHA_KUBECONFIG=in-cluster` (the pod's service account), a kubeconfig file,
or the AKS cluster's user kubeconfig from ARM (`listClusterUserCredential`) whose user is replaced by
an Azure AD token for the AKS AAD server app — no kubelogin binary — refreshed before it expires.

One generic verb set for every kind (core and CRDs alike), on the client's ApiClient: server-side
apply, create-if-absent, get, list by label, delete, merge patch, the status subresource, and exec
in a pod (what `kubectl cnpg psql` does). Every write asks for `fieldValidation=Strict`, so a field
the installed CRD does not know is refused instead of silently pruned.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import urllib3
import yaml
from kubernetes.client.rest import ApiException

from shared.platforms.aks.config import AksSettings

AKS_AAD_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
FIELD_MANAGER = "pgha"
REFRESH_MARGIN_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 30
STRICT = ("fieldValidation", "Strict")


@dataclass(frozen=True)
class Kind:
    prefix: str  # /api/v1 or /apis/<group>/<version>
    plural: str
    namespaced: bool = True


KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "Namespace"): Kind("/api/v1", "namespaces", namespaced=False),
    ("v1", "Secret"): Kind("/api/v1", "secrets"),
    ("v1", "ConfigMap"): Kind("/api/v1", "configmaps"),
    ("v1", "Service"): Kind("/api/v1", "services"),
    ("v1", "Pod"): Kind("/api/v1", "pods"),
    ("v1", "Node"): Kind("/api/v1", "nodes", namespaced=False),
    ("v1", "PersistentVolumeClaim"): Kind("/api/v1", "persistentvolumeclaims"),
    ("apps/v1", "Deployment"): Kind("/apis/apps/v1", "deployments"),
    ("batch/v1", "Job"): Kind("/apis/batch/v1", "jobs"),  # read only: a bootstrap Job that failed
    ("storage.k8s.io/v1", "StorageClass"): Kind("/apis/storage.k8s.io/v1", "storageclasses", namespaced=False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): Kind(
        "/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", namespaced=False),
    ("postgresql.cnpg.io/v1", "Cluster"): Kind("/apis/postgresql.cnpg.io/v1", "clusters"),
    ("postgresql.cnpg.io/v1", "Backup"): Kind("/apis/postgresql.cnpg.io/v1", "backups"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): Kind("/apis/postgresql.cnpg.io/v1", "scheduledbackups"),
    ("barmancloud.cnpg.io/v1", "ObjectStore"): Kind("/apis/barmancloud.cnpg.io/v1", "objectstores"),
    ("monitoring.coreos.com/v1", "PodMonitor"): Kind("/apis/monitoring.coreos.com/v1", "podmonitors"),
    ("azmonitoring.coreos.com/v1", "PodMonitor"): Kind("/apis/azmonitoring.coreos.com/v1", "podmonitors"),
    ("monitoring.coreos.com/v1", "PrometheusRule"): Kind("/apis/monitoring.coreos.com/v1", "prometheusrules"),
    # rendered by `pgha plan monitoring` only: its Secret holds the key, which pgha never holds
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): Kind("/apis/monitoring.coreos.com/v1alpha1",
                                                                   "alertmanagerconfigs"),
}


class KubeError(RuntimeError):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API {status} {reason}: {message}")
        self.status = status
        self.reason = reason


def kind_of(api_version: str, kind: str) -> Kind:
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"pgha does not manage {kind} ({api_version})") from None


def path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    spec = kind_of(api_version, kind)
    base = f"{spec.prefix}/namespaces/{namespace}/{spec.plural}" if spec.namespaced else f"{spec.prefix}/{spec.plural}"
    return f"{base}/{name}" if name else base


class Kube:
    """The verbs the runbooks need; each is one HTTP call to the API server."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client

    def _call(self, method: str, url: str, body: Any = None, query: list[tuple[str, Any]] | None = None,
              content_type: str = "application/json") -> Any:
        request = self.client.param_serialize(
            method=method, resource_path=url, query_params=query or [], body=body,
            header_params={"Accept": "application/json", "Content-Type": content_type}, auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*request, _request_timeout=REQUEST_TIMEOUT_SECONDS)
            response.read()
            return self.client.response_deserialize(response, {"2XX": "object"}).data
        except ApiException as err:
            raise _error(err) from None
        except urllib3.exceptions.HTTPError as err:  # no answer in time (after urllib3's own retries), or none
            raise KubeError(0, "Unreachable", f"{method} {url}: {type(err).__name__}: {err}"[:500]) from None

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (create or update, pgha owning the fields it sets)."""
        meta = obj["metadata"]
        url = path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._call("PATCH", url, json.dumps(obj), [("fieldManager", FIELD_MANAGER), ("force", "true"), STRICT],
                          "application/apply-patch+yaml")

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create if absent: None when it exists (a Secret's password is never overwritten)."""
        meta = obj["metadata"]
        try:
            return self._call("POST", path(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj,
                              [("fieldManager", FIELD_MANAGER), STRICT])
        except KubeError as err:
            if err.status == 409:
                return None
            raise

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", path(api_version, kind, namespace, name))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = self._call("GET", path(api_version, kind, namespace), query=[("labelSelector", selector)])
        return list(answer.get("items") or [])

    def list_all(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        """Across namespaces (`/apis/<group>/<version>/<plural>`)."""
        spec = kind_of(api_version, kind)
        return list(self._call("GET", f"{spec.prefix}/{spec.plural}").get("items") or [])

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str,
               grace_seconds: int | None = None) -> bool:
        """False when it was already gone. Never a collection: an empty name would delete every object there."""
        if not name:
            raise ValueError(f"deleting a {kind}: no name given")
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            self._call("DELETE", path(api_version, kind, namespace, name), body)
            return True
        except KubeError as err:
            if err.status == 404:
                return False
            raise

    def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str,
                    patch: dict[str, Any]) -> dict[str, Any]:
        return self._call("PATCH", path(api_version, kind, namespace, name), patch, [STRICT],
                          "application/merge-patch+json")

    def strategic_patch(self, api_version: str, kind: str, namespace: str | None, name: str,
                        patch: dict[str, Any]) -> dict[str, Any]:
        """What `kubectl rollout restart` sends (built-in kinds only)."""
        return self._call("PATCH", path(api_version, kind, namespace, name), patch, [STRICT],
                          "application/strategic-merge-patch+json")

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str,
                     patch: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the status subresource; with metadata.resourceVersion it is an optimistic lock
        (409 Conflict when the object changed since it was read)."""
        return self._call("PATCH", path(api_version, kind, namespace, name) + "/status", patch, [STRICT],
                          "application/merge-patch+json")

    def can(self, verb: str, group: str, resource: str, namespace: str | None = None) -> tuple[bool, str]:
        """`kubectl auth can-i`: a SelfSubjectAccessReview (read-only: the API server stores nothing), answering
        whether the caller may, and the authorizer's reason when it may not. `resource` may carry its
        subresource (`pods/exec`)."""
        plural, _, subresource = resource.partition("/")
        asked: dict[str, str] = {"verb": verb, "group": group, "resource": plural}
        if subresource:
            asked["subresource"] = subresource
        if namespace:
            asked["namespace"] = namespace
        answer = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", query=[STRICT], body={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": asked}})
        status = answer.get("status") or {}
        return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")

    def crd_installed(self, name: str) -> bool:
        """`kubectl get crd <plural>.<group>`: whether the API server serves a kind at all."""
        return self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name) is not None

    def exec(self, namespace: str, pod: str, container: str, command: list[str],
             timeout: float = REQUEST_TIMEOUT_SECONDS) -> str:
        """`kubectl exec <pod> -c <container> -- <command>` (pods/exec over a websocket): its stdout, or a
        KubeError quoting stderr when the command exits non-zero."""
        from kubernetes.stream import stream

        core = kubernetes.client.CoreV1Api(self.client)
        try:
            session = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
                             container=container, stderr=True, stdin=False, stdout=True, tty=False,
                             _preload_content=False)
        except ApiException as err:  # the websocket handshake refused ("Handshake status 404 … -+-+- <Status>")
            raise _exec_error(namespace, pod, str(err.reason or "")) from None
        except Exception as err:
            raise _exec_error(namespace, pod, f"{type(err).__name__}: {err}") from None
        try:
            session.run_forever(timeout=timeout)
            out, err = session.read_stdout(), session.read_stderr()
            code = session.returncode
        except Exception as cut:  # the websocket closed under it (the pod deleted while CNPG rolls it)
            raise _exec_error(namespace, pod, f"{type(cut).__name__}: {cut}") from None
        finally:
            session.close()
        if code is None:
            raise KubeError(0, "Timeout", f"exec in {namespace}/{pod} did not end within {timeout:g}s")
        if code != 0:
            raise KubeError(500, "ExecFailed", f"{' '.join(command[:2])}… in {pod} exited {code}: {err.strip()[:300]}")
        return out


def _error(err: ApiException) -> KubeError:
    message = err.reason or ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(err.body or "{}").get("message", message)
    return KubeError(int(err.status or 0), str(err.reason or ""), str(message)[:500])


def _exec_error(namespace: str, pod: str, reason: str) -> KubeError:
    found = re.search(r"Handshake status (\d+)", reason)
    message = reason
    with contextlib.suppress(ValueError, IndexError):
        message = json.loads(reason.rsplit("-+-+-", 1)[1].split(": Handshake status")[0])["message"]
    code = int(found[1]) if found else 0
    return KubeError(code, "ExecRefused" if code else "Unreachable", f"exec in {namespace}/{pod}: {message}"[:500])


# ---- credentials ---------------------------------------------------------------------------------

class AadToken:
    """An Azure AD token for the AKS AAD server app, fetched again when it is about to expire."""

    def __init__(self, credential: Any) -> None:
        self.credential = credential
        self.token = ""
        self.expires_on = 0.0

    def current(self) -> str:
        if time.time() > self.expires_on - REFRESH_MARGIN_SECONDS:
            fresh = self.credential.get_token(AKS_AAD_SCOPE)
            self.token, self.expires_on = fresh.token, float(fresh.expires_on)
        return self.token

    def refresh(self, configuration: kubernetes.client.Configuration) -> None:
        """kubernetes' refresh_api_key_hook: called before every request."""
        configuration.api_key["authorization"] = self.current()
        configuration.api_key_prefix["authorization"] = "Bearer"


def aks_kubeconfig(aks: AksSettings, credential: Any) -> dict[str, Any]:
    """The cluster's user kubeconfig from ARM, its user swapped for a bearer token (set per request)."""
    from azure.mgmt.containerservice import ContainerServiceClient

    unset = [n for n, v in (("PGHA_AKS_SUBSCRIPTION_ID", aks.subscription_id), ("PGHA_AKS_RESOURCE_GROUP",
                                                                                aks.resource_group),
                            ("PGHA_AKS_CLUSTER", aks.cluster)) if not v]
    if unset:
        raise RuntimeError(f"{', '.join(unset)} unset: pgha finds the AKS cluster by them (or set PGHA_KUBECONFIG)")
    arm = ContainerServiceClient(credential, aks.subscription_id, base_url=aks.arm_endpoint,
                                 **({"connection_verify": aks.ca_bundle} if aks.ca_bundle else {}))
    result = arm.managed_clusters.list_cluster_user_credentials(aks.resource_group, aks.cluster)
    if not result.kubeconfigs:
        raise RuntimeError(f"AKS returned no kubeconfig for {aks.resource_group}/{aks.cluster}")
    value = result.kubeconfigs[0].value  # bytes from azure-mgmt-containerservice 41, bytearray before
    config = yaml.safe_load(bytes(value).decode() if isinstance(value, bytes | bytearray) else value)
    for user in config.get("users", []):
        user["user"] = {"token": "set-per-request"}  # no exec plugin (kubelogin): pgha brings the token
    return config


def connect(aks: AksSettings, credential: Any | None = None) -> Kube:
    from kubernetes import config as kubeconfig

    configuration = kubernetes.client.Configuration()
    if aks.kubeconfig == "in-cluster":
        kubeconfig.load_incluster_config(client_configuration=configuration)
    elif aks.kubeconfig:
        kubeconfig.load_kube_config(config_file=aks.kubeconfig, client_configuration=configuration)
    else:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        kubeconfig.load_kube_config_from_dict(aks_kubeconfig(aks, credential), client_configuration=configuration)
        token = AadToken(credential)
        configuration.api_key = {}
        configuration.api_key_prefix = {}
        configuration.refresh_api_key_hook = token.refresh
        token.refresh(configuration)
    return Kube(kubernetes.client.ApiClient(configuration))
