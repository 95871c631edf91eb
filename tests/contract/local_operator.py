"""LocalBackedOperator: a test double of CloudNativePG's controller whose data plane is real.

On FakeKubeApi's hooks it does what the operator does, with the local platform underneath: a Cluster
applied through the Kubernetes API becomes real Patroni members (PostgreSQL with TLS and a CA of its
own, WAL archived by barman-cloud into Azurite); the Cluster's status, its pods' roles and readiness,
the rw/ro LoadBalancers' addresses and the `<cluster>-ca` Secret are written back from them; a Backup
is a real barman-cloud backup; a deleted primary pod is a real failover; a status patch of
targetPrimary is a real switchover; a changed spec is reloaded by the real members and rolled through them as
CNPG rolls it (local_rollout.py); a deleted Cluster stops its members. So the `aks` adapter's SQL, backups,
restores, drills and updates run against PostgreSQL for real, through the Kubernetes API's shapes.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from typing import Any

import psycopg

from shared import status as st
from shared.changes import major_of
from shared.platforms.local.platform import LocalPlatform
from shared.platforms.local.stack import PG_BIN
from shared.secrets import scram_verifier
from shared.spec import ClusterSpec
from tests.contract.fake_kube import FakeKubeApi
from tests.contract.local_rollout import MajorUpgrades, Rollouts

SPEC_ANNOTATION = "pgha.io/spec"
SNAPSHOT_SECONDS = 0.5


def installed_image() -> str:
    """The image CNPG would report for the PostgreSQL installed here (status.image; its tag names the version)."""
    version = subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True,
                             check=True).stdout.split()[2]
    return f"ghcr.io/cloudnative-pg/postgresql:{version}-system-trixie"


def psql_text(value: Any) -> str:
    """A column as `psql -A` prints it: booleans t/f, NULL empty, json as its text."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else str(value)


class LocalBackedOperator:
    def __init__(self, api: FakeKubeApi, local: LocalPlatform) -> None:
        self.api = api
        self.local = local
        self.snapshots: dict[tuple[str, str], tuple[float, st.ClusterStatus]] = {}
        self.applied: dict[tuple[str, str], str] = {}  # (namespace, Secret) -> the resourceVersion applied
        self.rollouts = Rollouts(local)
        self.promoted: dict[tuple[str, str], tuple[str, str]] = {}  # the last (targetPrimary, timestamp) acted on
        self.majors = MajorUpgrades(api)
        self.image = installed_image()
        api.on_write.append(self.written)
        api.on_read.append(self.read)
        api.on_exec = self.exec
        for n in range(1, 10):  # one node per zone, as the runbook's node pools spread them
            api.put(f"/api/v1/nodes/aks-postgres-{n}", {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": f"aks-postgres-{n}", "labels": {"topology.kubernetes.io/zone": f"westus3-{(n - 1) % 3 + 1}"}}})

    # ---- writes ----------------------------------------------------------------------------------
    def written(self, api: FakeKubeApi, path: str, obj: dict[str, Any]) -> None:
        parts = path.strip("/").split("/")
        kind = parts[-2] if len(parts) >= 2 else ""
        if kind == "clusters" and len(parts) == 7:
            namespace, name = parts[4], parts[6]
            if obj.get("deleted"):
                self.local.delete_cluster(namespace, name, graceful=False)
                self._forget_pods(namespace, name)
            elif not obj.get("status"):
                self._create(namespace, name, obj)
            else:
                self._maybe_update(namespace, name, obj)
                self.rollouts.user_acted(self._spec(namespace, name), obj["status"].get("phase", ""),
                                         obj["status"].get("targetPrimary"), obj["status"].get("currentPrimary"))
                self._maybe_switchover(namespace, name, obj)
        elif kind == "pods" and obj.get("deleted") and obj.get("metadata", {}).get("labels", {}).get(
                "cnpg.io/instanceRole") == "primary":
            grace = (api.requests[-1].body or {}).get("gracePeriodSeconds")
            spec = self._spec(parts[3], obj["metadata"]["labels"]["cnpg.io/cluster"])
            self.local.delete_primary(spec, "crash" if grace == 0 else "graceful", 3.0 if grace else 25.0)
        elif kind == "deployments" and "restartedAt" in json.dumps(obj.get("spec", {})):
            # the operator restarted: the HA manager of every cluster it runs is back (locally: Patroni resumed)
            for spec in list(self.local.list_clusters()):
                self.local.restore_ha_manager(spec)
            obj["status"] = {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
        elif kind == "backups" and not obj.get("deleted") and not obj.get("status"):
            spec = self._spec(parts[4], obj["spec"]["cluster"]["name"])
            self.local.start_backup(spec, obj["metadata"]["name"])
            obj["status"] = {"phase": "running", "method": "barmanObjectStore"}

    def exec(self, api: FakeKubeApi, namespace: str, pod: str, container: str,
             command: list[str]) -> tuple[str, str, int]:
        """`kubectl cnpg psql` in the instance's postgres container: each `-c` statement on the real member,
        as the superuser over its local socket; psql -XAt prints one row per line, its columns joined by `|`."""
        cluster = pod.rsplit("-", 1)[0]
        spec = self._spec(namespace, cluster)
        statements = [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == "-c"]
        try:
            with psycopg.connect(self.local.members.superuser_dsn(spec, pod), autocommit=True) as conn:
                lines = []
                for sql in statements:  # psql -q prints rows only: BEGIN, SET and COMMIT print nothing
                    cursor = conn.execute(sql)
                    for row in cursor.fetchall() if cursor.description is not None else []:
                        lines.append("|".join(map(psql_text, row)))
        except psycopg.Error as err:
            return "", f"ERROR:  {err}\n", 1
        return "".join(f"{line}\n" for line in lines), "", 0

    def _spec(self, namespace: str, name: str) -> ClusterSpec:
        spec = self.local.stored_spec(namespace, name)
        assert spec is not None, f"no local cluster {namespace}/{name}"
        return spec

    def _create(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        spec = ClusterSpec.model_validate(json.loads(cluster["metadata"]["annotations"][SPEC_ANNOTATION]))
        secret = self.api.objects[f"/api/v1/namespaces/{namespace}/secrets/{spec.bootstrap.secret_name}"]
        password = base64.b64decode(secret["data"]["password"]).decode()
        path = self.local.records.secret_file(namespace, spec.bootstrap.secret_name)
        if not path.exists():  # the instance manager reads the app Secret; the local platform, its file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"username": spec.bootstrap.owner, "password": password}))
            path.chmod(0o600)
        self.local.preflight_backup_destination(spec)
        self.local.apply_cluster(spec)
        self._make_application_secret(namespace, cluster)
        self.api.objects[f"/api/v1/namespaces/{namespace}/secrets/{name}-ca"] = {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-ca", "namespace": namespace},
            "data": {"ca.crt": base64.b64encode(self.local.records.ca_certificate(namespace, name).encode()).decode()}}
        if spec.monitoring.enable_pod_monitor:  # the operator's own PodMonitor
            self.api.objects[f"/apis/monitoring.coreos.com/v1/namespaces/{namespace}/podmonitors/{name}"] = {
                "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
                "metadata": {"name": name, "namespace": namespace, "labels": {"cnpg.io/cluster": name}}}
        cluster["status"] = {"phase": st.SETTING_UP_PRIMARY, "instances": spec.instances, "readyInstances": 0,
                             "instanceNames": spec.instance_names, "conditions": []}

    def _maybe_update(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        """A new spec applied to a running Cluster reaches every instance manager, which reloads it: the real
        members' configuration patched; what needs a restart is the rolling update's (local_rollout.py)."""
        sent = ClusterSpec.model_validate(json.loads(cluster["metadata"]["annotations"][SPEC_ANNOTATION]))
        asked, running = major_of(sent.image_name), major_of(self.image)
        if asked and running and asked > running:
            self.majors.start(namespace, name, cluster["status"].get("currentPrimary") or f"{name}-1", asked,
                              sent.image_name or "")
            return
        self.majors.roll_back(namespace, name)  # the image set back while an upgrade stands
        if sent.dump() != self._spec(namespace, name).dump():
            self.local.apply_cluster(sent)

    def _maybe_switchover(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        """A targetPrimary asked through the status (`kubectl cnpg promote`): a real switchover, once a request
        (its target and timestamp), however often the status is written again meanwhile."""
        status = cluster["status"]
        asked = (status.get("targetPrimary"), status.get("targetPrimaryTimestamp"))
        if status.get("phase") == st.SWITCHOVER and asked[0] and self.promoted.get((namespace, name)) != asked:
            self.promoted[(namespace, name)] = asked  # one switchover a request, however often the status is written
            self.local.promote(self._spec(namespace, name), asked[0])  # unchanged when it is the primary already

    def _forget_pods(self, namespace: str, name: str) -> None:
        for key in [k for k, v in self.api.objects.items()
                    if (v.get("metadata") or {}).get("labels", {}).get("cnpg.io/cluster") == name
                    and f"/namespaces/{namespace}/" in k]:
            del self.api.objects[key]

    # ---- reads: the operator's status, from the real members ------------------------------------
    def read(self, api: FakeKubeApi, path: str) -> None:
        parts = path.strip("/").split("/")
        if len(parts) == 7 and parts[-2] == "clusters" and path in api.objects:
            self._reflect(parts[4], parts[6], api.objects[path])
        elif len(parts) == 7 and parts[-2] == "backups" and path in api.objects:
            backup = api.objects[path]
            if (backup.get("status") or {}).get("phase") not in ("completed", "failed"):
                found = self.local.get_backup(parts[4], backup["spec"]["cluster"]["name"], parts[6])
                backup["status"] = {"phase": found.phase, "method": "barmanObjectStore", "backupId": found.backup_id,
                                    "beginWal": found.begin_wal, "endWal": found.end_wal, "error": found.error,
                                    "instanceID": {"podName": found.instance}, "startedAt": found.started_at,
                                    "stoppedAt": found.stopped_at}
        elif (len(parts) >= 5 and parts[-1] == "pods") or (len(parts) == 6 and parts[-2] in ("pods", "services")):
            namespace = parts[3]
            for cluster_path, cluster in list(api.objects.items()):
                if f"/namespaces/{namespace}/clusters/" in cluster_path:
                    self._reflect(namespace, cluster["metadata"]["name"], cluster)

    @staticmethod
    def _application_secret(cluster: dict[str, Any]) -> tuple[str, str]:
        """The application Secret's name and owner as CNPG resolves them after its defaulting webhook: recovery's
        database and owner default to `app` (api/v1/cluster_defaults.go, defaultRecovery); the Secret is
        bootstrap.recovery.secret, else initdb's, else `<cluster>-app` (api/v1/cluster_funcs.go)."""
        bootstrap = cluster["spec"].get("bootstrap") or {}
        method = bootstrap.get("recovery") or bootstrap.get("initdb") or {}
        owner = method.get("owner") or method.get("database") or "app"
        return (method.get("secret") or {}).get("name") or f"{cluster['metadata']['name']}-app", owner

    def _make_application_secret(self, namespace: str, cluster: dict[str, Any]) -> None:
        """Given no Secret of the owner's, the operator makes `<cluster>-app` with a random password and owns it
        (internal/controller/cluster_create.go, reconcileAppUserSecret)."""
        name, owner = self._application_secret(cluster)
        path = f"/api/v1/namespaces/{namespace}/secrets/{name}"
        if path in self.api.objects:
            return
        cluster_name = cluster["metadata"]["name"]
        self.api.put(path, {
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"cnpg.io/cluster": cluster_name, "cnpg.io/userType": "app"}},
            "data": {"username": base64.b64encode(owner.encode()).decode(),
                     "password": base64.b64encode(secrets.token_urlsafe(48).encode()).decode()}})

    def _reconcile_owner_password(self, namespace: str, cluster: dict[str, Any], primary: str) -> None:
        """The instance manager on the primary sets the application owner's password from the application
        Secret, once per Secret resourceVersion (internal/management/controller/instance_controller.go,
        refreshCredentialsFromSecret → reconcileUser). The Secret is bootstrap.recovery.secret when set, else
        initdb's, else `<cluster>-app` (api/v1/cluster_funcs.go, GetApplicationSecretName): so a restore
        whose recovered roles carry its source's password answers to its own Secret once it is primary."""
        name, owner = self._application_secret(cluster)
        secret = self.api.objects.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None or self.applied.get((namespace, name)) == secret["metadata"].get("resourceVersion"):
            return  # CNPG: a missing Secret is no error, the next reconciliation tries again
        if base64.b64decode(secret["data"]["username"]).decode() != owner:
            return  # CNPG refuses the Secret ("wrong username ... in secret")
        password = base64.b64decode(secret["data"]["password"]).decode()
        spec = self._spec(namespace, cluster["metadata"]["name"])
        with psycopg.connect(self.local.members.superuser_dsn(spec, primary), autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{owner}" PASSWORD \'{scram_verifier(password)}\'')
        self.applied[(namespace, name)] = secret["metadata"].get("resourceVersion", "")

    def _snapshot(self, namespace: str, name: str) -> st.ClusterStatus:
        """One look at the members serves the reads of one moment (the Cluster, then its pods), as the
        operator's status and its pods' labels agree with each other."""
        taken, status = self.snapshots.get((namespace, name), (0.0, None))
        if status is None or time.monotonic() - taken > SNAPSHOT_SECONDS:
            status = self.local.cluster_status(namespace, name)
            self.snapshots[(namespace, name)] = (time.monotonic(), status)
        return status

    def _reflect(self, namespace: str, name: str, cluster: dict[str, Any]) -> None:
        if self.local.stored_spec(namespace, name) is None:
            return
        upgrading = self.majors.status(namespace, name, self.image, major_of(self.image) or 0)
        if upgrading is not None:
            cluster["status"] = {**cluster.get("status", {}), **upgrading}
            return
        real = self._snapshot(namespace, name)
        archiving = real.condition("ContinuousArchiving")
        ready = real.phase == st.HEALTHY
        rolling = self.rollouts.phase(self._spec(namespace, name), real)
        phase, reason = rolling or (real.phase, real.phase_reason)
        ready = ready and rolling is None
        cluster["status"] = {
            **cluster.get("status", {}), "phase": phase, "phaseReason": reason, "instances": real.instances,
            "image": self.image, "pgDataImageInfo": {"image": self.image, "majorVersion": major_of(self.image)},
            "readyInstances": real.ready_instances, "currentPrimary": real.current_primary,
            "targetPrimary": real.current_primary or "pending",
            "instanceNames": [i.name for i in real.instances_status],
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "ClusterIsReady" if ready else "ClusterIsNotReady"},
                *([{"type": "ContinuousArchiving", "status": archiving.status, "reason": archiving.reason,
                    "message": archiving.message}] if archiving else []),
            ],
        }
        if ready and real.current_primary:
            self._reconcile_owner_password(namespace, cluster, real.current_primary)
        members = {m.name: m for m in self.local.records.members(namespace, name)}  # the pods' addresses
        standby_port = None
        for instance in real.instances_status:
            role = "primary" if instance.role == "primary" and instance.ready else "replica"
            self.api.objects[f"/api/v1/namespaces/{namespace}/pods/{instance.name}"] = {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": instance.name, "namespace": namespace,
                "labels": {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role}},
                "spec": {"nodeName": f"aks-postgres-{instance.name[-1]}",
                         # CNPG's postgres container: status.image, and spec.resources as they are
                         "containers": [{"name": "postgres", "image": self.image,
                                         "resources": cluster["spec"].get("resources") or {}}]},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": "True" if instance.ready else "False"}]}}
            if role == "replica" and instance.ready and instance.name in members:
                standby_port = members[instance.name].pg_port
        primary = members.get(real.current_primary or "")
        for role, port in (("rw", primary.pg_port if primary else None), ("ro", standby_port)):
            service = self.api.objects.get(f"/api/v1/namespaces/{namespace}/services/{name}-lb-{role}")
            if service is not None and port is not None:  # the cloud's load balancer, answering on the pod's port
                service["status"] = {"loadBalancer": {"ingress": [
                    {"ip": "127.0.0.1", "ports": [{"port": port, "protocol": "TCP"}]}]}}
