"""Every Kubernetes permission the `aks` adapter uses, and which runbooks use it.

One table serves the doctor (a SelfSubjectAccessReview per row), the pre-flight of deploy, restore and
teardown (the rows of that runbook), docs/azure.md's RBAC paragraph, and the contract tests' fake API
server, which grants exactly these rows and answers 403 Forbidden to anything else, as RBAC would: so a
call the adapter makes and this table misses fails a test.

Verbs are RBAC's (k8s.io/apiserver RequestInfoFactory): GET of one object `get`, of a collection `list`;
POST `create`; PATCH `patch` (a server-side apply that makes the object needs `create` as well: the
apiserver authorizes the create in patch.go); DELETE `delete`. `pods/exec` over a websocket is a GET,
authorized as `get` and, from Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission), also as
`create`: pgha asks for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["namespace", "operator", "cluster"]  # the cluster's namespace, the operator's, cluster-wide
RUNBOOKS = ("deploy", "restore", "verify", "drill", "switchover", "update", "rotate", "alert", "teardown")



def used_by(*runbooks: str) -> frozenset[str]:
    return frozenset(runbooks)


EVERY = used_by(*RUNBOOKS)
# those that read a running cluster
RUNNING = used_by("deploy", "restore", "verify", "drill", "switchover", "update", "rotate", "alert")
# the runbooks that read a cluster's status: those above, and teardown before it archives the last WAL
STATUS = RUNNING | used_by("teardown")
MAKE = used_by("deploy", "restore")
# what applies a Cluster that exists (an update's server-side apply: a patch, no create)
APPLY = MAKE | used_by("update")
# what removes: teardown, a restore's clean-up and a failed deploy's compensation (remove_cluster)
REMOVE = used_by("deploy", "restore", "teardown")


@dataclass(frozen=True)
class Permission:
    group: str
    resource: str  # with its subresource: `pods/exec`, `clusters/status`
    verb: str
    scope: Scope
    runbooks: frozenset[str]

    @property
    def name(self) -> str:
        where = {"namespace": "in the cluster's namespace", "operator": "in the operator's namespace",
                 "cluster": "cluster-wide"}[self.scope]
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {self.resource}{group} {where}"


def _rows(group: str, resource: str, scope: Scope, verbs: dict[str, frozenset[str]]) -> list[Permission]:
    return [Permission(group, resource, verb, scope, runbooks) for verb, runbooks in verbs.items()]


CNPG = "postgresql.cnpg.io"
PLUGIN = "barmancloud.cnpg.io"
MONITORING = ("monitoring.coreos.com", "azmonitoring.coreos.com")

PERMISSIONS: tuple[Permission, ...] = (
    # the cluster's own objects
    *_rows(CNPG, "clusters", "namespace", {"get": EVERY, "create": MAKE, "patch": APPLY, "delete": REMOVE}),
    # the scheduled runs' clusters; the clusters that share an app secret
    *_rows(CNPG, "clusters", "cluster", {"list": used_by("verify", "drill", "rotate")}),
    # `kubectl cnpg promote`; `kubectl cnpg restart` of a primary (an update's supervised primary, approved)
    *_rows(CNPG, "clusters/status", "namespace", {"patch": used_by("drill", "switchover", "update")}),
    # an update takes a backup before it restarts instances
    *_rows(CNPG, "backups", "namespace", {
        "get": used_by("verify", "update", "alert"), "create": used_by("verify", "update", "alert"), "list": REMOVE,
        "delete": used_by("verify", "update", "deploy", "restore", "teardown")}),
    # an update re-applies the ScheduledBackup, the PodMonitor and the LoadBalancers when their settings change
    *_rows(CNPG, "scheduledbackups", "namespace", {"create": used_by("deploy", "update"),
                                                   "patch": used_by("deploy", "update"), "delete": REMOVE}),
    # the Cluster's apply re-applies its ObjectStore (an update's too: what it holds may have changed), and for a
    # kept restore makes sure its source's is there
    *_rows(PLUGIN, "objectstores", "namespace", {"get": STATUS, "create": APPLY, "patch": APPLY, "delete": REMOVE}),
    *(row for group in MONITORING for row in _rows(group, "podmonitors", "namespace", {
        "get": used_by("deploy", "update"), "create": used_by("deploy", "update"), "patch": used_by("deploy", "update"),
        "delete": REMOVE})),
    # a rotation moves the app secret's keys with a merge patch (CNPG sets the owner's password from it)
    *_rows("", "secrets", "namespace", {"get": RUNNING, "create": MAKE, "patch": used_by("rotate"),
                                        "delete": REMOVE}),
    *_rows("", "configmaps", "namespace", {  # pgha-retained-<cluster>: the spec of backups kept
        "get": REMOVE, "create": REMOVE, "patch": REMOVE, "delete": REMOVE}),
    *_rows("", "services", "namespace", {"get": RUNNING, "create": APPLY, "patch": APPLY, "delete": REMOVE}),
    *_rows("", "pods", "namespace", {"get": RUNNING, "list": STATUS, "delete": used_by("drill")}),
    # `kubectl cnpg psql`: a marker commit and a WAL switch on the primary (deploy's archive check, a recent
    # restore target, the last WAL before a teardown keeping backups); each instance's pg_settings (an update)
    *_rows("", "pods/exec", "namespace", {
        "get": used_by("deploy", "restore", "verify", "update", "teardown"),
        "create": used_by("deploy", "restore", "verify", "update", "teardown")}),
    # an update waits for a grown volume's capacity
    *_rows("", "persistentvolumeclaims", "namespace", {"list": REMOVE | used_by("update")}),
    # CNPG's instance-creation Jobs (initdb, full-recovery, join, …): cluster_status reads one that failed
    *_rows("batch", "jobs", "namespace", {"list": STATUS}),
    # around the cluster
    *_rows("", "namespaces", "cluster", {"create": used_by("deploy")}),
    *_rows("", "nodes", "cluster", {"get": MAKE}),  # the zones instances landed in
    *_rows("storage.k8s.io", "storageclasses", "cluster", {"get": used_by("update")}),  # can a volume grow
    *_rows("apiextensions.k8s.io", "customresourcedefinitions", "cluster", {"get": MAKE}),
    # the operator's version: what it can run (deploy, restore), whether it upgrades a major in place (update)
    *_rows("apps", "deployments", "operator", {"get": used_by("deploy", "restore", "update", "alert"),
                                               "patch": used_by("alert")}),
    *_rows("", "services", "operator", {"list": MAKE}),  # the Barman Cloud plugin's Service
    # PGHA_MONITORING_APPLY where kube-prometheus-stack is: the alert rules, one PrometheusRule for every cluster
    *_rows("monitoring.coreos.com", "prometheusrules", "operator", {"create": used_by("deploy"),
                                                                    "patch": used_by("deploy")}),
)


def needed_by(runbook: str) -> list[Permission]:
    return [p for p in PERMISSIONS if runbook == "doctor" or runbook in p.runbooks]


def allows(permission: Permission, group: str, resource: str, verb: str, namespace: str | None,
           operator_namespace: str) -> bool:
    """Whether `permission` grants this request (the fake API server's RBAC, from the same table)."""
    if (permission.group, permission.resource, permission.verb) != (group, resource, verb):
        return False
    if permission.scope == "cluster":
        return True  # a ClusterRoleBinding: every namespace, and cluster-scoped kinds
    if permission.scope == "operator":
        return namespace == operator_namespace
    return namespace is not None


def table() -> str:
    """The permissions as a Markdown table, one row per resource and scope (docs/azure.md shows it)."""
    rows: dict[tuple[str, str, str], list[Permission]] = {}
    for permission in PERMISSIONS:
        rows.setdefault((permission.resource, permission.group, permission.scope), []).append(permission)
    where = {"namespace": "each cluster's namespace", "operator": "the operator's namespace", "cluster": "cluster-wide"}
    lines = ["| resource | API group | where | verbs | used by |", "|---|---|---|---|---|"]
    for (resource, group, scope), found in rows.items():
        used = sorted({r for p in found for r in p.runbooks}, key=RUNBOOKS.index)
        lines.append(f"| `{resource}` | {group or 'core'} | {where[scope]} | {', '.join(p.verb for p in found)} | "
                     f"{', '.join(used)} |")
    return "\n".join(lines) + "\n"
