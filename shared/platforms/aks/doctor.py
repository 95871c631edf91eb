"""The doctor on AKS: read-only checks of what a runbook will need, each one line with its fix.

Nothing here writes: reads of the operator's Deployment, CRDs and Services; SelfSubjectAccessReviews
(the API server stores none); ARM reads of the identity, its federated credentials, role assignments
and the public IP; the backups container's properties; a trivial query to Prometheus and Log Analytics.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core.exceptions import HttpResponseError

from shared import objectstore
from shared.doctor import Check, Purpose, fail, guarded, passed, warn
from shared.platform import PreflightFailed
from shared.platforms.aks import access
from shared.platforms.aks.alerting import RULE_GROUP, WORKSPACE_API
from shared.platforms.aks.azure import FEDERATED_CREDENTIALS_LIMIT, Azure, credential_name
from shared.platforms.aks.cnpg import deployment_available
from shared.platforms.aks.operator import OBJECT_STORE_CRD, SUPPORTED_RANGE, resolve_backup_method
from shared.spec import ClusterSpec

if TYPE_CHECKING:
    from shared.platforms.aks.platform import AksPlatform

CNPG_CRDS = ("clusters.postgresql.cnpg.io", "backups.postgresql.cnpg.io", "scheduledbackups.postgresql.cnpg.io")
POD_MONITOR_CRDS = {
    "podmonitors.monitoring.coreos.com": "kube-prometheus-stack's Prometheus (the runbook's)",
    "podmonitors.azmonitoring.coreos.com": "Azure Managed Prometheus (the ama-metrics add-on)",
}
BLOB_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
BLOB_DELETE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
IN_CLUSTER_NAME = "kubernetes.default.svc"  # a Service every cluster has, in its DNS


def resolves(host: str) -> bool:
    try:
        return bool(socket.getaddrinfo(host, 443))
    except OSError:
        return False


@dataclass
class Examination:
    """One look, for one spec and purpose: the checks, and the spec settled against what was found."""

    platform: AksPlatform
    spec: ClusterSpec
    purpose: Purpose
    delete_backups: bool = False
    checks: list[Check] = field(default_factory=list)

    @property
    def makes(self) -> bool:
        return self.purpose in ("doctor", "deploy", "restore", "plan")

    @cached_property
    def azure(self) -> Azure:
        """Azure, each call tried once with short timeouts (guarded() tries a look twice): a black-holed
        endpoint is a FAIL within seconds, not the SDK's minutes of retries."""
        return self.platform.azure.looking()

    def add(self, found: Check | list[Check] | None) -> None:
        self.checks += [found] if isinstance(found, Check) else found or []

    def guarded(self, name: str, look: Callable[[], Check | list[Check] | None], doing: str) -> None:
        self.add(guarded(name, look, doing))


def examine(platform: AksPlatform, spec: ClusterSpec, purpose: Purpose = "doctor",
            delete_backups: bool = False) -> tuple[list[Check], ClusterSpec]:
    """Every check that bears on `purpose`, and the spec with `backup.method` resolved (when it could be)."""
    exam = Examination(platform, spec, purpose, delete_backups)
    if exam.makes:
        exam.guarded("CNPG operator", lambda: operator_check(exam), "reading the operator's Deployment")
        exam.guarded("CRDs", lambda: crd_checks(exam), "reading the CRDs")
    if purpose == "plan":
        identity_checks(exam)
        return exam.checks, exam.spec
    exam.guarded("Kubernetes RBAC", lambda: rbac_check(exam), "asking SelfSubjectAccessReviews")
    if exam.makes:  # a teardown removes a credential that may be gone already: it needs no identity to read
        identity_checks(exam)
    if exam.makes or exam.delete_backups:
        exam.guarded("backups container", lambda: storage_check(exam), "reading the backups container")
    if exam.makes and exam.platform.aks.identity_name:
        exam.guarded("backups write permission", lambda: write_permission_check(exam),
                     "reading the workload identity's role assignments")
    if exam.purpose == "doctor" or exam.delete_backups:
        exam.guarded("backups delete permission", lambda: delete_permission_check(exam),
                     "reading pgha's role assignments")
    if exam.purpose == "doctor":
        exam.guarded("Prometheus", lambda: prometheus_check(exam), "querying Prometheus")
        exam.guarded("Log Analytics", lambda: log_analytics_check(exam), "querying Log Analytics")
    if exam.makes or exam.purpose == "doctor":
        exam.guarded("alert rules", lambda: alert_rules_check(exam), "reading the Azure Monitor workspace")
    if exam.makes:
        exam.guarded("public IP", lambda: public_ip_check(exam), "reading the public IP")
        exam.add(sql_access_check(exam))
    return exam.checks, exam.spec


# ---- the operator and what it serves -----------------------------------------------------------------

def operator_check(exam: Examination) -> list[Check]:
    """The operator, then the backup method it can run (`auto` resolved into exam.spec)."""
    aks = exam.platform.aks
    where = f"{aks.operator_namespace}/{aks.operator_deployment}"
    operator, deployment = exam.platform.operator()
    if deployment is None:
        return [fail("CNPG operator", f"Deployment {where} not found: install CloudNativePG {SUPPORTED_RANGE}, or "
                                      "set PGHA_CNPG_NAMESPACE / PGHA_CNPG_DEPLOYMENT to where it runs")]
    problem = operator.support_problem()
    if problem:
        return [fail("CNPG operator", problem)]
    if not deployment_available(deployment):
        found = fail("CNPG operator", f"Deployment {where} has no available replica: `kubectl -n "
                                      f"{aks.operator_namespace} describe deployment {aks.operator_deployment}`")
    elif operator.version is None:
        found = warn("CNPG operator", f"{operator.describe()}: tag the image with its version to have it checked")
    elif operator.support_note():
        found = warn("CNPG operator", f"{operator.describe()}{operator.support_note()}")
    else:
        found = passed("CNPG operator", f"{operator.describe()} available in {aks.operator_namespace}")
    try:
        method, why = resolve_backup_method(exam.spec.backup.method, operator)
    except PreflightFailed as refused:
        return [found, fail("backup method", str(refused))]
    exam.spec = ClusterSpec.model_validate({**exam.spec.dump(),
                                            "backup": {**exam.spec.backup.dump(), "method": method}})
    return [found, warn("backup method", why) if "deprecated" in why else passed("backup method", why)]


def crd_checks(exam: Examination) -> None:
    kube = exam.platform.kube
    missing = [name for name in CNPG_CRDS if not kube.crd_installed(name)]
    exam.add(fail("CRDs", f"{', '.join(missing)} not installed: install CloudNativePG {SUPPORTED_RANGE} "
                          "(its release manifest brings them)") if missing
             else passed("CRDs", "clusters, backups, scheduledbackups (postgresql.cnpg.io)"))
    if exam.spec.backup.method == "plugin":
        exam.add(passed("CRD objectstores", f"{OBJECT_STORE_CRD} (the Barman Cloud plugin)")
                 if kube.crd_installed(OBJECT_STORE_CRD) else
                 fail("CRD objectstores", f"{OBJECT_STORE_CRD} not installed: install plugin-barman-cloud"))
    if not exam.spec.monitoring.enable_pod_monitor:
        return
    for name, what in POD_MONITOR_CRDS.items():
        exam.add(passed(f"CRD {name.split('.', 1)[1]}", f"{name}: PodMonitor for {what}")
                 if kube.crd_installed(name) else
                 warn(f"CRD {name.split('.', 1)[1]}", f"{name} not installed: pgha skips the PodMonitor for {what}; "
                                                      "install it to have that Prometheus scrape CNPG"))


def rbac_check(exam: Examination) -> Check:
    """A SelfSubjectAccessReview per permission the purpose needs, in the namespace it will be used in."""
    aks = exam.platform.aks
    runbook = exam.purpose
    denied: dict[str, list[str]] = {}
    asked = access.needed_by(runbook)
    for permission in asked:
        namespace = {"namespace": exam.spec.namespace, "operator": aks.operator_namespace,
                     "cluster": None}[permission.scope]
        allowed, _ = exam.platform.kube.can(permission.verb, permission.group, permission.resource, namespace)
        if not allowed:
            group = f".{permission.group}" if permission.group else ""
            where = f" in {namespace}" if namespace else " cluster-wide"
            denied.setdefault(f"{permission.resource}{group}{where}", []).append(permission.verb)
    if denied:
        lacking = "; ".join(f"{', '.join(verbs)} {what}" for what, verbs in denied.items())
        return fail("Kubernetes RBAC", f"not allowed: {lacking}: grant them to pgha's identity (docs/azure.md, RBAC)")
    who = "pgha's runbooks use" if runbook == "doctor" else f"{runbook} uses"
    return passed("Kubernetes RBAC", f"the {len(asked)} permissions {who}, each allowed (SelfSubjectAccessReview)")


# ---- the workload identity -----------------------------------------------------------------------------

def identity_checks(exam: Examination) -> None:
    aks = exam.platform.aks
    if not aks.identity_client_id:
        exam.add(fail("identity settings", "PGHA_AKS_IDENTITY_CLIENT_ID is unset: the Cluster's service account "
                                           "needs the workload identity's client id, or barman-cloud cannot reach "
                                           "the storage"))
        return
    if not aks.identity_name:
        exam.add(warn("identity settings", "PGHA_AKS_IDENTITY_NAME is unset: pgha makes no federated credentials; "
                                           "create one per cluster by hand, or set it (and "
                                           "PGHA_AKS_IDENTITY_RESOURCE_GROUP)"))
        return
    unset = [n for n, v in (("PGHA_AKS_SUBSCRIPTION_ID", aks.subscription_id),
                            ("PGHA_AKS_IDENTITY_RESOURCE_GROUP", aks.identity_resource_group)) if not v]
    if unset:
        exam.add(fail("identity settings", f"{', '.join(unset)} unset: pgha cannot find identity "
                                           f"{aks.identity_name}"))
        return
    exam.add(passed("identity settings", f"identity {aks.identity_name} in {aks.identity_resource_group}"))
    if exam.purpose == "plan":
        return
    exam.guarded("identity", lambda: identity_check(exam), f"reading identity {aks.identity_name}")
    exam.guarded("federated credentials", lambda: federated_credentials_check(exam),
                 f"listing the federated credentials of {aks.identity_name}")


def identity_check(exam: Examination) -> Check:
    aks = exam.platform.aks
    found = exam.azure.identity()
    if aks.identity_client_id and found.client_id.lower() != aks.identity_client_id.lower():
        return fail("identity", f"{aks.identity_name}'s client id is {found.client_id}, PGHA_AKS_IDENTITY_CLIENT_ID "
                                f"says {aks.identity_client_id}: set it to the identity's")
    return passed("identity", f"{aks.identity_name} readable (client id {found.client_id})")


def federated_credentials_check(exam: Examination) -> Check:
    names = exam.azure.federated_credentials()
    mine = credential_name(exam.spec.namespace, exam.spec.name) in names
    left = FEDERATED_CREDENTIALS_LIMIT - len(names)
    used = f"{len(names)} of Entra's {FEDERATED_CREDENTIALS_LIMIT} federated credentials used"
    if left <= 0 and not mine:
        return fail("federated credentials", f"{used}: no cluster or restore can be added; tear down clusters or "
                                             "restores holding one, or use another identity")
    if left <= 2:
        return warn("federated credentials", f"{used}: {left} more cluster(s) or restore(s) possible (a restore "
                                             "test holds one while it runs)")
    return passed("federated credentials", f"{used}: {left} more cluster(s) or restore(s) possible")


# ---- the backups storage -----------------------------------------------------------------------------

def storage_check(exam: Examination) -> list[Check]:
    """The container the run will use: a restore reads its source's, and writes (and at clean-up deletes) its
    own, which for a restore is the same account and container."""
    spec = exam.spec
    paths = [spec.backup.destination_path]
    if exam.purpose == "restore" and spec.recovery and spec.recovery.destination_path not in paths:
        paths.insert(0, spec.recovery.destination_path)
    found = []
    for path in paths:
        container = exam.azure.container(path)
        found.append(passed("backups container", f"{path} readable")
                     if objectstore.container_exists(container, **objectstore.QUICK) else
                     fail("backups container", f"{path} does not exist: create the container (the runbook's storage "
                                               "account), or set backup.destinationPath"))
    return found


def blob_permission(exam: Examination, name: str, principal: str, who: str, action: str,
                    missing: Check) -> Check:
    """Whether `principal` holds a role granting `action` on the backups container, judged from its role
    assignments' data actions through ARM (read-only; no probe blob). What pgha may not read is a WARN: it
    cannot tell, and the run itself will find out."""
    account = urlsplit(exam.spec.backup.destination_path).netloc.split(".")[0]
    cannot_tell = (f"cannot tell: give pgha Reader on storage account {account} (it reads the account and its role "
                   "assignments)")
    try:
        account_id = exam.azure.storage_account_id(account)
        if account_id is None:
            return warn(name, f"storage account {account} is not visible to pgha: {cannot_tell}")
        grants = exam.azure.data_actions(principal, f"{account_id}/blobServices/default/containers/"
                                                    f"{exam.spec.backup.container}")
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        return warn(name, f"pgha may not read {who}'s role assignments: {cannot_tell}")
    granting = [g for g in grants if g.permits(action)]
    if not granting:
        return missing
    if all(g.condition for g in granting):
        return warn(name, f"{granting[0].role} grants {who} {action.rsplit('/', 2)[-2:][-1]} under a condition pgha "
                          "does not evaluate: check it allows this container")
    return passed(name, f"{granting[0].role} for {who} at {granting[0].scope.rsplit('/', 1)[-1]}")


def write_permission_check(exam: Examination) -> Check:
    """barman-cloud archives as the workload identity: without blob write the deploy stops at WAL archiving."""
    identity = exam.platform.aks.identity_name
    principal = exam.azure.identity().principal_id
    return blob_permission(exam, "backups write permission", principal, identity, BLOB_WRITE, fail(
        "backups write permission", f"no role of {identity}'s grants blobs/write on {exam.spec.backup.container}: "
                                    "barman-cloud cannot archive; assign it Storage Blob Data Contributor there"))


def delete_permission_check(exam: Examination) -> Check:
    """Teardown with deleteBackups deletes the blobs as pgha itself."""
    who = exam.azure.caller_object_id()
    if not who:
        return warn("backups delete permission", "pgha's token carries no object id: cannot tell whether teardown "
                                                 "with deleteBackups may delete blobs")
    verdict = fail if exam.delete_backups else warn
    return blob_permission(exam, "backups delete permission", who, "pgha", BLOB_DELETE, verdict(
        "backups delete permission", f"no role of pgha's grants blobs/delete on {exam.spec.backup.container}: "
                                     "teardown with deleteBackups fails; assign Storage Blob Data Contributor on the "
                                     "container"))


# ---- monitoring endpoints ----------------------------------------------------------------------------

def prometheus_check(exam: Examination) -> Check:
    if not exam.platform.aks.prometheus_endpoint:
        return warn("Prometheus", "PGHA_PROMETHEUS_ENDPOINT unset: deploy does not check the scrape, and alert "
                                  "responses read no metrics; set it to the Azure Monitor workspace's query endpoint")
    exam.azure.prometheus("vector(1)")
    return passed("Prometheus", "the Azure Monitor workspace answers a query (PGHA_PROMETHEUS_ENDPOINT)")


def alert_rules_check(exam: Examination) -> Check | None:
    """With PGHA_MONITORING_APPLY, deploy puts the alert rule group in the workspace's region, calling the
    action group: both must be named before anything is made."""
    aks = exam.platform.aks
    if not aks.monitoring_apply:
        return None
    unset = [name for name, value in (("PGHA_MONITOR_WORKSPACE_ID", aks.monitor_workspace_id),
                                      ("PGHA_ACTION_GROUP_ID", aks.action_group_id)) if not value]
    if unset:
        return fail("alert rules", f"PGHA_MONITORING_APPLY is true but {' and '.join(unset)} unset: the rule group "
                                   "needs the Azure Monitor workspace it reads and the action group it calls")
    region = exam.azure.location_of(aks.monitor_workspace_id, WORKSPACE_API)
    return passed("alert rules", f"deploy applies rule group {RULE_GROUP} in {region}, scoped to the workspace "
                                 "and the AKS cluster, calling the action group")


def log_analytics_check(exam: Examination) -> Check:
    if not exam.platform.aks.log_workspace_id:
        return warn("Log Analytics", "PGHA_LOG_ANALYTICS_WORKSPACE_ID unset: alert reports carry no archiver "
                                     "errors from container logs")
    exam.azure.logs("print pgha = 1")
    return passed("Log Analytics", f"workspace {exam.platform.aks.log_workspace_id} answers a query")


# ---- reaching the cluster's endpoints and SQL ----------------------------------------------------------

def public_ip_check(exam: Examination) -> Check | None:
    name = exam.spec.endpoints.public_ip_name
    if not exam.spec.endpoints.enabled or not name:
        return None
    aks = exam.platform.aks
    if not aks.node_resource_group:
        return fail("public IP", "PGHA_AKS_NODE_RESOURCE_GROUP unset: pgha cannot look up endpoints.publicIpName")
    try:
        found = exam.azure.public_ip(name)
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        return warn("public IP", f"pgha may not read {aks.node_resource_group}: cannot tell whether {name} exists; "
                                 "give pgha Reader on the node resource group")
    if found is None:
        return fail("public IP", f"{name} not found in {aks.node_resource_group}: create it there (Standard, "
                                 "static), or leave endpoints.publicIpName out for one per Service")
    if found["sku"] != "Standard" or found["allocation"] != "Static":
        return warn("public IP", f"{name} is {found['sku'] or '?'} / {found['allocation'] or '?'}: a LoadBalancer "
                                 "Service needs a Standard, static IP")
    return passed("public IP", f"{name} in {aks.node_resource_group} (Standard, static)")


def sql_access_check(exam: Examination) -> Check:
    """How pgha will reach PostgreSQL, checked before the cluster exists."""
    aks, endpoints = exam.platform.aks, exam.spec.endpoints
    if aks.sql_access == "serviceDns":
        if resolves(IN_CLUSTER_NAME):
            return passed("SQL access", f"serviceDns: {IN_CLUSTER_NAME} resolves from here")
        return fail("SQL access", f"serviceDns: {IN_CLUSTER_NAME} does not resolve from where pgha runs: run pgha in "
                                  "the cluster's network (VNet integration and the cluster's DNS), or set "
                                  "PGHA_SQL_ACCESS=loadBalancer with endpoints")
    if not endpoints.enabled:
        return fail("SQL access", "loadBalancer: the spec has endpoints.enabled false, so there is no address to "
                                  "reach: enable endpoints, or use PGHA_SQL_ACCESS=serviceDns")
    if not aks.outbound_addresses:
        return warn("SQL access", "loadBalancer: pgha's outbound address is not known: set PGHA_OUTBOUND_ADDRESSES "
                                  "(the Function App's outbound IPs) to have it checked against sourceRanges")
    ranges = [ipaddress.ip_network(r, strict=False) for r in endpoints.source_ranges]
    outside = [a for a in aks.outbound_addresses if not any(ipaddress.ip_address(a) in r for r in ranges)]
    if outside:
        return fail("SQL access", f"loadBalancer: pgha's outbound {', '.join(outside)} outside endpoints.sourceRanges "
                                  f"{', '.join(endpoints.source_ranges)}: add it, or pgha cannot run its checks")
    return passed("SQL access", "loadBalancer: pgha's outbound address(es) inside endpoints.sourceRanges")
