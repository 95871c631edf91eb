"""AksPlatform: the Platform port on AKS, where CloudNativePG runs PostgreSQL.

Every step is a call to the Kubernetes API (the real kubernetes client) or to Azure (the real SDKs),
idempotent as the runbooks need: objects are applied server-side, the app Secret is created only
when absent, deletes of what is gone answer "unchanged". pgha's own record of a cluster is its spec,
kept in an annotation of the Cluster it made (and, for a cluster torn down with its backups kept, in
a ConfigMap, so a later `deleteBackups` can still find them).
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from shared import backups as bk
from shared import credentials, sql
from shared import status as st
from shared.alert_rules import STANDARD
from shared.backups import Backup
from shared.changes import ChangePlan, Verdict, major_of
from shared.connection import Connection, Endpoint
from shared.doctor import Check, Purpose
from shared.logs import redact
from shared.objectstore import Container
from shared.outcome import Outcome, done, skipped, unchanged
from shared.platform import PreflightFailed, Role, preflight_outcome, unreadable
from shared.platforms.aks import alerting, cnpg, doctor, manifests, updates
from shared.platforms.aks import credentials as credentials_aks
from shared.platforms.aks.azure import Azure
from shared.platforms.aks.config import AksSettings
from shared.platforms.aks.kube import Kube, KubeError, connect
from shared.platforms.aks.operator import OBJECT_STORE_CRD, PLUGIN, PLUGIN_LABEL, Operator, operator_from
from shared.secrets import generate_password
from shared.settings import Settings
from shared.spec import ClusterSpec
from shared.walarchive import MARKER_COMMIT, MARKER_SETTINGS, SWITCH_WAL, segment_blob

JOB = ("batch/v1", "Job")
SPEC_ANNOTATION = "pgha.io/spec"
CREATED_BY = "pgha.io/created-by"
RETAINED_LABEL = "pgha.io/retained-backups"
CNPG_API = manifests.CNPG
POD_MONITOR_CRD = "podmonitors.monitoring.coreos.com"
MANAGED_POD_MONITOR_CRD = "podmonitors.azmonitoring.coreos.com"
PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"
ARCHIVE_WAIT_SECONDS = 60
# `kubectl cnpg psql` runs psql in the instance's `postgres` container, which reaches PostgreSQL as the
# postgres superuser over the local socket (internal/cmd/plugin/psql): no superuser secret needed
MARK_AND_SWITCH = ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN",
                   *(arg for setting in MARKER_SETTINGS for arg in ("-c", setting)),
                   "-c", MARKER_COMMIT, "-c", "COMMIT", "-c", SWITCH_WAL]


class AksPlatform:
    name = "aks"

    def __init__(self, aks: AksSettings, kube: Kube, azure: Azure) -> None:
        self.aks = aks
        self.kube = kube
        self.azure = azure

    @classmethod
    def from_env(cls) -> AksPlatform:
        aks = AksSettings.from_env()
        azure = Azure(aks)
        return cls(aks, connect(aks, azure.credential), azure)

    # ---- reading ---------------------------------------------------------------------------------
    def _cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get(CNPG_API, "Cluster", namespace, name)

    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None:
        return spec_of(self._cluster(namespace, name))

    def list_clusters(self) -> Iterator[ClusterSpec]:
        """The Clusters pgha made (its spec annotation); one whose annotation does not read is reported and
        left out."""
        for item in self.kube.list_all(CNPG_API, "Cluster"):
            meta = item.get("metadata") or {}
            raw = (meta.get("annotations") or {}).get(SPEC_ANNOTATION)
            if raw:
                try:
                    yield ClusterSpec.model_validate(json.loads(raw))
                except ValueError as err:  # bad JSON, or a spec this pgha no longer accepts
                    unreadable(f"Cluster {meta.get('namespace')}/{meta.get('name')}", err)

    def cluster_status(self, namespace: str, name: str) -> st.ClusterStatus:
        found = self._cluster(namespace, name)
        if found is None:
            return cnpg.cluster_status(namespace, name, None)
        pods = self.kube.list("v1", "Pod", namespace, f"cnpg.io/cluster={name},cnpg.io/podRole=instance")
        status = cnpg.cluster_status(namespace, name, found, pods, self._jobs(namespace, name),
                                     Settings.from_env().crashloop_restarts)
        spec = spec_of(found)  # no second GET
        if spec is not None and spec.backup.method == "plugin":
            store = self.kube.get(manifests.OBJECT_STORE_API, "ObjectStore", namespace,
                                  manifests.object_store_name(spec))
            status = cnpg.with_recovery_window(status, store, spec.server_name)
        return status

    def _jobs(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Jobs CNPG made for the cluster's instances (labelled cnpg.io/cluster, pkg/specs/jobs.go at v1.30.0;
        cnpg.cluster_status keeps those with a cnpg.io/jobRole). A Role made before pgha read Jobs answers
        403: then there is no Job signal, and the doctor names the missing verb."""
        try:
            return self.kube.list(*JOB, namespace, f"{cnpg.CLUSTER_LABEL}={name}")
        except KubeError as err:
            if err.status != 403:
                raise
            return []

    def operator(self) -> tuple[Operator, dict[str, Any] | None]:
        """The running CNPG operator (version from its image, the Barman Cloud plugin beside it), and its
        Deployment (None when there is none)."""
        deployment = self.kube.get("apps/v1", "Deployment", self.aks.operator_namespace, self.aks.operator_deployment)
        services = self.kube.list("v1", "Service", self.aks.operator_namespace, f"{PLUGIN_LABEL}={PLUGIN}")
        return operator_from(deployment, services, self.kube.crd_installed(OBJECT_STORE_CRD)), deployment

    # ---- deploy ----------------------------------------------------------------------------------
    def diagnose(self, spec: ClusterSpec, purpose: Purpose = "doctor", delete_backups: bool = False) -> list[Check]:
        return doctor.examine(self, spec, purpose, delete_backups)[0]

    def preflight(self, spec: ClusterSpec, purpose: Purpose = "deploy", delete_backups: bool = False) -> Outcome:
        """The doctor's checks that bear on this run, before anything is made: a FAIL refuses with the checks'
        own lines. `backup.method: auto` is resolved here, once; the spec the run goes on with (and stores with
        the Cluster) is the answer's data["spec"]."""
        checks, settled = doctor.examine(self, spec, purpose, delete_backups)
        return preflight_outcome(checks, settled, headline=("CNPG operator", "backup method"))

    def ensure_namespace(self, spec: ClusterSpec) -> Outcome:
        made = self.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}})
        return done(f"namespace {spec.namespace} created") if made else unchanged(f"namespace {spec.namespace} exists")

    def preflight_backup_destination(self, spec: ClusterSpec) -> Outcome:
        """Refuse a server name whose archive is not empty (CNPG's own check), before anything is made."""
        if self._cluster(spec.namespace, spec.name) is not None:
            return unchanged("cluster already exists and archives under this server name")
        container = self.backup_container(spec)
        if not container.exists():
            raise PreflightFailed(f"container {spec.backup.container!r} does not exist in "
                                  f"{spec.backup.destination_path}: create it (the runbook's storage account)")
        if container.names(f"{spec.server_name}/wals/"):
            raise PreflightFailed(bk.archive_in_use(spec))
        return done(f"container {spec.backup.container} reachable; archive for {spec.server_name!r} is empty")

    def ensure_app_secret(self, spec: ClusterSpec, created_by: str | None = None) -> Outcome:
        """`kubectl create secret generic`: created once with a password made here, never overwritten."""
        name = spec.bootstrap.secret_name
        secret = manifests.app_secret(spec, generate_password())
        if created_by:
            secret["metadata"]["annotations"] = {CREATED_BY: created_by}
        if self.kube.create(secret) is not None:
            return done(f"secret {name} created", secretName=name, createdBy=created_by)
        existing = self.kube.get("v1", "Secret", spec.namespace, name) or {}
        owner = ((existing.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY)
        return unchanged(f"secret {name} exists", secretName=name, createdBy=owner)

    def configure_operator(self, spec: ClusterSpec) -> Outcome:
        """The runbook's ConfigMap sets ENABLE_AZURE_PVC_UPDATES, which no operator pgha supports reads."""
        return skipped("ENABLE_AZURE_PVC_UPDATES is read by no CNPG since 1.26 (Azure volumes resize without it): "
                       f"cnpg-controller-manager-config in {self.aks.operator_namespace} left as it is")

    def pod_monitors(self, spec: ClusterSpec) -> tuple[list[dict[str, Any]], list[str]]:
        """The PodMonitors whose CRDs are installed, and what is skipped for want of one."""
        wanted, missing = [], []
        for crd, monitor in ((POD_MONITOR_CRD, manifests.pod_monitor(spec)),
                             (MANAGED_POD_MONITOR_CRD, manifests.managed_prometheus_pod_monitor(spec))):
            if self.kube.crd_installed(crd):
                wanted.append(monitor)
            else:
                missing.append(f"no {crd} CRD: {monitor['apiVersion'].split('/')[0]} PodMonitor skipped")
        return wanted, missing

    def configure_monitoring(self, spec: ClusterSpec) -> Outcome:
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        monitors, missing = self.pod_monitors(spec)
        if not monitors:
            return skipped("; ".join(missing) + " (install kube-prometheus-stack or enable Azure Managed Prometheus)")
        for monitor in monitors:
            self.kube.apply(monitor)
        made = ", ".join(f"{m['metadata']['name']} ({m['apiVersion'].split('/')[0]})" for m in monitors)
        rules = ([alerting.apply_alert_rules(self.aks, self.azure, self.kube,
                                             self.kube.crd_installed(PROMETHEUS_RULE_CRD), STANDARD)]
                 if self.aks.monitoring_apply else [])
        return done(f"PodMonitor {made} applied" + "".join(f"; {m}" for m in [*missing, *rules]))

    def verify_monitoring(self, spec: ClusterSpec) -> Outcome:
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        monitors, missing = self.pod_monitors(spec)
        absent = [f"{m['apiVersion'].split('/')[0]}/{m['metadata']['name']}" for m in monitors
                  if self.kube.get(m["apiVersion"], "PodMonitor", spec.namespace, m["metadata"]["name"]) is None]
        if absent:
            raise RuntimeError(f"PodMonitor missing: {', '.join(absent)}")
        if not monitors:
            return skipped("; ".join(missing))
        found = f"{len(monitors)} PodMonitor(s) exist" + "".join(f"; {m}" for m in missing)
        if not self.aks.prometheus_endpoint:
            return done(f"{found} (PGHA_PROMETHEUS_ENDPOINT unset: scrape not checked)")
        series = self.azure.prometheus(f'cnpg_collector_up{{namespace="{spec.namespace}",pod=~"{spec.name}-[0-9]+"}}')
        up = sorted(s["metric"].get("pod", "?") for s in series if s["value"][1] == "1")
        if not up:
            raise RuntimeError("Azure Managed Prometheus has no cnpg_collector_up = 1 for this cluster yet")
        return done(f"{found}; Managed Prometheus scrapes {', '.join(up)}", pods=up)

    def ensure_backup_identity(self, spec: ClusterSpec) -> Outcome:
        if not self.aks.identity_name:
            return skipped("PGHA_AKS_IDENTITY_NAME unset: no federated credential made")
        made = self.azure.ensure_federated_credential(spec.namespace, spec.name)
        return done(f"federated credential {made['name']} for {made['subject']}", **made)

    def apply_cluster(self, spec: ClusterSpec) -> Outcome:
        if spec.backup.method == "plugin":
            self.kube.apply(manifests.object_store(spec))
            if spec.recovery is not None:  # the plugin finds the recovery source's store by name: make sure
                # it is there (a source torn down by an older pgha lost it), never changing one that is
                self.kube.create(manifests.recovery_object_store(spec))
        cluster = manifests.cluster(spec, self.aks)
        cluster["metadata"]["annotations"] = {SPEC_ANNOTATION: json.dumps(spec.dump(), sort_keys=True)}
        existed = self._cluster(spec.namespace, spec.name) is not None
        self.kube.apply(cluster)
        return done(f"Cluster {spec.name} {'updated' if existed else 'created'} ({spec.instances} instances)")

    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome:
        if spec.recovery is None or not spec.recovery.owner_secret:
            return skipped("the restore shares its source's app secret")
        return skipped(f"CNPG sets {spec.bootstrap.owner}'s password from bootstrap.recovery.secret "
                       f"{spec.recovery.owner_secret}")

    def check_zone_spread(self, spec: ClusterSpec) -> Outcome:
        pods = self.kube.list("v1", "Pod", spec.namespace, f"cnpg.io/cluster={spec.name},cnpg.io/podRole=instance")
        zones: dict[str, str] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            found = self.kube.get("v1", "Node", None, node) if node else None
            zone = ((found or {}).get("metadata") or {}).get("labels", {}).get("topology.kubernetes.io/zone", "?")
            zones[pod["metadata"]["name"]] = zone
        distinct = len(set(zones.values()) - {"?"})
        if spec.zone_spread and len(pods) > 1 and distinct < min(len(pods), 3):
            raise RuntimeError(f"instances share zones: {zones}")
        return done(f"{len(pods)} instances over {distinct} zones", zones=zones)

    @contextmanager
    def connect(
        self, namespace: str, name: str, role: Role, database: str | None = None
    ) -> Iterator[sql.Sql]:
        spec = self.stored_spec(namespace, name)
        if spec is None:
            raise RuntimeError(f"cluster {namespace}/{name} does not exist")
        keys = credentials_aks.read_keys(self.kube, spec)
        if "password" not in keys:
            raise RuntimeError(f"secret {namespace}/{spec.bootstrap.secret_name} has no password")
        with self._session(spec, role, keys["password"], database) as session:
            yield session

    @contextmanager
    def _session(self, spec: ClusterSpec, role: Role, password: str, database: str | None = None) -> Iterator[sql.Sql]:
        """The owner's session through the rw/ro endpoint with this password, the server checked against the
        cluster's CA."""
        namespace, name = spec.namespace, spec.name
        host, port = self.endpoint(spec, role)
        ca = ((self.kube.get("v1", "Secret", namespace, f"{name}-ca") or {}).get("data") or {}).get("ca.crt")
        if not ca:
            raise RuntimeError(f"secret {namespace}/{name}-ca has no ca.crt: cannot verify the server")
        with tempfile.NamedTemporaryFile("wb", suffix=".crt") as root:
            root.write(base64.b64decode(ca))
            root.flush()
            # verify-ca: the server's certificate is checked against the cluster's CA (its names are the
            # services', not a LoadBalancer's IP), so the password goes to this cluster and nowhere else
            with sql.connect(host=host, port=port, user=spec.bootstrap.owner,
                             dbname=database or spec.bootstrap.database, connect_timeout=5,
                             sslmode="verify-ca", sslrootcert=root.name, password=password) as session:
                yield session

    def connection(self, spec: ClusterSpec) -> Connection:
        """CNPG's in-cluster Services, and the LoadBalancers' addresses where the spec exposes them; verify-ca
        takes the cluster's CA (the `<cluster>-ca` Secret's `ca.crt`)."""
        found = Connection(database=spec.bootstrap.database, user=spec.bootstrap.owner,
                           secret_name=spec.bootstrap.secret_name,
                           in_cluster={role: f"{spec.name}-{role}.{spec.namespace}.svc:5432" for role in ("rw", "ro")},
                           note=f"TLS: verify-ca with ca.crt of Secret {spec.name}-ca")
        if not spec.endpoints.enabled:
            return found.model_copy(update={"note": f"{found.note}; not exposed outside the cluster "
                                                    "(endpoints.enabled false)"})
        exposed: dict[str, Endpoint] = {}
        for role in ("rw", "ro"):
            address = self.load_balancer_address(spec, role)
            if address:
                host, port = address
                exposed[role] = Endpoint(address=f"{host}:{port}", libpq=(
                    f"host={host} port={port} dbname={spec.bootstrap.database} user={spec.bootstrap.owner} "
                    "sslmode=verify-ca sslrootcert=<ca.crt>"))
        pending = [role for role in ("rw", "ro") if role not in exposed]
        return found.model_copy(update={**exposed, "note": found.note + (
            f"; LoadBalancer {', '.join(pending)} has no address yet" if pending else "")})

    def endpoint(self, spec: ClusterSpec, role: Role) -> tuple[str, int]:
        """In-cluster service DNS (`<cluster>-rw.<ns>.svc`), or the LoadBalancer's public IP."""
        if self.aks.sql_access == "serviceDns":
            return f"{spec.name}-{role}.{spec.namespace}.svc", 5432
        if not spec.endpoints.enabled:
            raise RuntimeError(f"PGHA_SQL_ACCESS=loadBalancer reaches PostgreSQL through the rw/ro LoadBalancers: "
                               f"{spec.name} has endpoints.enabled false")
        address = self.load_balancer_address(spec, role)
        if address is None:
            raise RuntimeError(f"the {role} LoadBalancer of {spec.name} has no address yet")
        return address

    def load_balancer_address(self, spec: ClusterSpec, role: Role) -> tuple[str, int] | None:
        """The role's LoadBalancer as cloud-provider-azure reports it in the Service's status, None until then."""
        service = self.kube.get("v1", "Service", spec.namespace, manifests.service_name(spec, role)) or {}
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if not ingress:
            return None
        # the port the load balancer reports answering on (status.loadBalancer.ingress[].ports), else the Service's
        reported = ingress[0].get("ports") or (service.get("spec") or {}).get("ports") or [{"port": 5432}]
        return ingress[0].get("ip") or ingress[0]["hostname"], int(reported[0]["port"])

    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome:
        """The operator's word first (`kubectl cnpg status`: "Working WAL archiving"), then the proof: a marker
        commit and a WAL switch on the primary (psql in its pod, as `kubectl cnpg psql`), and the segment in the
        object store."""
        status = self.cluster_status(spec.namespace, spec.name)
        condition = status.condition("ContinuousArchiving")
        if condition is None or condition.status != "True":
            raise RuntimeError(f"WAL archiving is not working: {condition.message if condition else 'not reported'}")
        if not status.current_primary:
            raise RuntimeError("no primary to switch WAL on")
        try:
            answer = self.kube.exec(spec.namespace, status.current_primary, "postgres", MARK_AND_SWITCH)
        except KubeError as err:
            raise RuntimeError(f"switching WAL on {status.current_primary}: {err}") from None
        rows = [line.split("|") for line in answer.strip().splitlines()]  # psql -At: one row a line, `|` between
        if len(rows) != 2 or len(rows[0]) != 2 or len(rows[1]) != 2 or len(rows[1][0]) != 24:
            raise RuntimeError(f"switching WAL on {status.current_primary}: unexpected answer {answer[:100]!r}")
        (xid, at), (segment, switched) = rows
        prefix = segment_blob(spec.server_name, segment)
        if not self.backup_container(spec).wait_for(prefix, ARCHIVE_WAIT_SECONDS):
            raise RuntimeError(f"WAL segment {segment} not found in {spec.backup.container}/ within "
                               f"{ARCHIVE_WAIT_SECONDS}s (the operator reports: {condition.message})")
        return done(f"marker commit xid {xid} at {at}; WAL segment {segment} archived to "
                    f"{spec.backup.container}/{prefix}", segment=segment, markerXid=int(xid), markerAt=at,
                    switchedAt=switched)

    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome:
        if not spec.backup.schedule:
            return skipped("no backup.schedule in spec")
        self.kube.apply(manifests.scheduled_backup(spec))
        return done(f"ScheduledBackup {manifests.scheduled_backup_name(spec)} ({spec.backup.schedule}), "
                    "backupOwnerReference self")

    def expose_endpoints(self, spec: ClusterSpec) -> Outcome:
        if not spec.endpoints.enabled:
            return skipped("endpoints not enabled in spec")
        addresses = {}
        for role in ("rw", "ro"):
            service = self.kube.apply(manifests.load_balancer(spec, role, self.aks))
            ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            addresses[role] = (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else "pending"
        return done(f"LoadBalancers rw:5432 ro:5433 open to {', '.join(spec.endpoints.source_ranges)}",
                    **addresses)

    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]:
        kept = self.kube.get("v1", "ConfigMap", namespace, f"pgha-retained-{name}")
        return [ClusterSpec.model_validate(json.loads(v)) for _, v in sorted(((kept or {}).get("data") or {}).items())]

    # ---- backups ---------------------------------------------------------------------------------
    def start_backup(self, spec: ClusterSpec, name: str) -> Backup:
        backup = manifests.backup(spec, name)
        backup["metadata"]["labels"] = {"cnpg.io/cluster": spec.name}  # CNPG labels only scheduled ones
        self.kube.create(backup)
        return self.get_backup(spec.namespace, spec.name, name)

    def get_backup(self, namespace: str, cluster: str, name: str) -> Backup:
        found = self.kube.get(CNPG_API, "Backup", namespace, name)
        if found is None:
            raise RuntimeError(f"Backup {namespace}/{name} does not exist")
        return cnpg.backup_record(found)

    def delete_backup(self, namespace: str, cluster: str, name: str) -> Outcome:
        """The Backup object only: CNPG deletes no backup data with it."""
        if self.kube.delete(CNPG_API, "Backup", namespace, name):
            return done(f"Backup {namespace}/{name} deleted (its files, if any, stay in the object store)")
        return unchanged(f"Backup {namespace}/{name} was gone")

    def backup_container(self, spec: ClusterSpec, source: bool = False) -> Container:
        path = spec.recovery.destination_path if source and spec.recovery else spec.backup.destination_path
        return Container(self.azure.container(path))

    # ---- failover drills -------------------------------------------------------------------------
    def delete_primary(self, spec: ClusterSpec, mode: str, recreate_after: float = 3.0) -> Outcome:
        """`kubectl delete pod <primary> --grace-period=1` (graceful), or a forced delete with grace 0 — the
        closest Kubernetes gets to losing the node. The operator recreates the pod; `recreate_after` is
        the local platform's stand-in for that and means nothing here."""
        if mode not in ("graceful", "crash"):
            raise ValueError(f"unknown mode {mode!r}")
        primary = self.kube.list("v1", "Pod", spec.namespace,
                                 f"cnpg.io/cluster={spec.name},cnpg.io/instanceRole=primary")
        if not primary:
            raise RuntimeError("there is no primary pod to delete")
        pod = primary[0]["metadata"]["name"]
        self.kube.delete("v1", "Pod", spec.namespace, pod, grace_seconds=1 if mode == "graceful" else 0)
        return done(f"primary pod {pod} deleted ({mode}, grace {1 if mode == 'graceful' else 0}s); the operator "
                    "recreates it", instance=pod)

    def promote(self, spec: ClusterSpec, instance: str) -> Outcome:
        """`kubectl cnpg promote`: the status subresource's targetPrimary (internal/cmd/plugin/promote)."""
        def switchover(status: dict[str, Any]) -> dict[str, Any] | None:
            if status.get("targetPrimary") == instance:
                return None
            if self.kube.get("v1", "Pod", spec.namespace, instance) is None:
                raise RuntimeError(f"new primary node {instance} not found")
            now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            return {"targetPrimary": instance, "targetPrimaryTimestamp": now, "phase": st.SWITCHOVER,
                    "phaseReason": f"Switching over to {instance}"}

        if not self._patch_status(spec, switchover):
            return unchanged(f"{instance} is already the (target) primary")
        return done(f"switchover to {instance} requested (status.targetPrimary)")

    def _patch_status(self, spec: ClusterSpec, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
        """A patch of the Cluster's status as the plugin makes it (PatchWithOptimisticLock: resourceVersion as
        the lock, again on a conflict; SetClusterReadyCondition: Ready False for any phase but healthy);
        `change` returns None when there is nothing to do."""
        for _ in range(5):
            found = self._cluster(spec.namespace, spec.name)
            if found is None:
                raise RuntimeError(f"cluster {spec.name} does not exist")
            current = found.get("status") or {}
            status = change(current)
            if status is None:
                return False
            status["conditions"] = cnpg.not_ready(current.get("conditions") or [], status["phase"])
            patch = {"metadata": {"resourceVersion": found["metadata"]["resourceVersion"]}, "status": status}
            try:
                self.kube.patch_status(CNPG_API, "Cluster", spec.namespace, spec.name, patch)
                return True
            except KubeError as err:
                if err.status != 409:
                    raise
        raise RuntimeError(f"patching the status of cluster {spec.name}: it kept changing (5 conflicts)")

    # ---- day-2 updates (shared/platforms/aks/updates.py: what is refused, and why) ----------------------
    def running_major(self, namespace: str, name: str) -> int | None:
        """From the image CNPG's pods run (Cluster status.image, api/v1/cluster_types.go ClusterStatus.Image)."""
        return major_of(((self._cluster(namespace, name) or {}).get("status") or {}).get("image"))

    def weigh_changes(self, spec: ClusterSpec, plan: ChangePlan) -> Verdict:
        """CNPG rolls every change; the operator's version decides a major upgrade, each volume's StorageClass
        whether it can grow."""
        deployment = self.kube.get("apps/v1", "Deployment", self.aks.operator_namespace,
                                   self.aks.operator_deployment) if plan.of("major") else None
        verdict = updates.weigh_changes(plan, operator_from(deployment, [], False))
        if plan.remakes_pods and spec.instances == 1 and spec.primary_update_strategy == "supervised":
            verdict.refused.append("primaryUpdateStrategy: a single supervised instance cannot be switched over, "
                                   "and an in-place restart does not make its pod again: set unsupervised for this "
                                   "change")
        if any(c.field == "backup.serverName" for c in plan.changes) and not verdict.refused and \
                self.backup_container(spec).names(f"{spec.server_name}/wals/"):  # CNPG's own check, as at deploy
            verdict.refused.append(f"backup.serverName: {bk.archive_in_use(spec)}")
        for change in plan.of("storage"):
            volume = spec.wal_storage if change.field.startswith("walStorage") else spec.storage
            if volume is None:
                continue
            found = self.kube.get("storage.k8s.io/v1", "StorageClass", None, volume.storage_class)
            refusal = updates.expansion_refusal(change.field, volume.storage_class, found)
            if refusal:
                verdict.refused.append(refusal)
        return verdict

    def restart_instance(self, spec: ClusterSpec, instance: str) -> Outcome:
        """`kubectl cnpg restart <cluster> <instance>` (internal/cmd/plugin/restart): the primary restarted in
        place by its instance manager (the phase CNPG acts on), a standby's pod deleted and recreated."""
        found = self._cluster(spec.namespace, spec.name) or {}
        if (found.get("status") or {}).get("currentPrimary") != instance:
            self.kube.delete("v1", "Pod", spec.namespace, instance)
            return done(f"standby pod {instance} deleted: CNPG recreates it", instance=instance)

        def in_place(status: dict[str, Any]) -> dict[str, Any] | None:
            if status.get("phase") == st.INPLACE_PRIMARY_RESTART:
                return None
            return {"phase": st.INPLACE_PRIMARY_RESTART, "phaseReason": "Requested by the user"}

        if not self._patch_status(spec, in_place):
            return unchanged(f"the primary {instance} is already being restarted in place")
        return done(f"the primary {instance} restarted in place by its instance manager", instance=instance)

    def instance_settings(self, spec: ClusterSpec, names: list[str]) -> list[st.InstanceSettings]:
        """pg_settings in each instance's pod (psql over pods/exec, as `kubectl cnpg psql`); a pod that does not
        answer (rolled, starting) says why."""
        found = []
        for pod in self._pods(spec):
            name = pod["metadata"]["name"]
            try:
                answer = self.kube.exec(spec.namespace, name, "postgres", updates.settings_query(names))
            except KubeError as err:
                found.append(st.InstanceSettings(name=name, error=str(err)[:200]))
                continue
            found.append(updates.read_settings(name, names, answer))
        return found

    def rollout(self, spec: ClusterSpec) -> st.Rollout:
        """How far CNPG has rolled the spec out: the Cluster, its pods and volumes, each instance's settings."""
        found = self._cluster(spec.namespace, spec.name)
        if found is None:
            return st.Rollout(phase=st.NOT_FOUND, failure=f"cluster {spec.name} does not exist")
        pods = self._pods(spec)
        pvcs = self.kube.list("v1", "PersistentVolumeClaim", spec.namespace, f"{cnpg.CLUSTER_LABEL}={spec.name}")
        jobs = self._jobs(spec.namespace, spec.name)
        settings = self.instance_settings(spec, sorted(spec.postgresql.parameters)) if pods else []
        return updates.rollout(spec, found, pods, pvcs, settings,
                               cnpg.failure(found, pods, jobs, Settings.from_env().crashloop_restarts), jobs)

    def _pods(self, spec: ClusterSpec) -> list[dict[str, Any]]:
        return self.kube.list("v1", "Pod", spec.namespace, f"cnpg.io/cluster={spec.name},cnpg.io/podRole=instance")

    def drift(self, spec: ClusterSpec) -> list[st.Drift]:
        live = self._cluster(spec.namespace, spec.name)
        if live is None:
            return [st.Drift(field="Cluster", held=spec.name, running=None)]
        try:
            rendered = manifests.cluster(spec, self.aks)
        except ValueError as err:  # a setting missing here: said where the drift would be, not a failed GET
            return [st.Drift(field="spec", held=None, running=f"not compared: {err}")]
        return updates.drift(rendered, live)

    # ---- credential rotation (shared/platforms/aks/credentials.py) -----------------------------------
    def stage_app_password(self, spec: ClusterSpec) -> Outcome:
        return credentials_aks.move(self.kube, spec, credentials.staged, "a new password staged")

    def commit_app_password(self, spec: ClusterSpec) -> Outcome:
        return credentials_aks.move(self.kube, spec, credentials.committed, "the new password in use, the old one "
                                    "kept")

    def revert_app_password(self, spec: ClusterSpec, committed: bool) -> Outcome:
        return credentials_aks.move(self.kube, spec, lambda keys: credentials.reverted(keys, committed),
                                    "the password from before the rotation in use")

    def forget_previous_password(self, spec: ClusterSpec) -> Outcome:
        return credentials_aks.move(self.kube, spec, credentials.forgotten, "the old password forgotten")

    def set_owner_password(self, spec: ClusterSpec, which: credentials.Which) -> Outcome:
        return skipped(f"CNPG's instance manager sets {spec.bootstrap.owner}'s password from secret "
                       f"{spec.bootstrap.secret_name} when it changes")

    def app_login(self, spec: ClusterSpec, which: credentials.Which) -> str | None:
        return credentials.login(credentials_aks.read_keys(self.kube, spec), which, spec.bootstrap.secret_name,
                                 lambda password: self._session(spec, "rw", password))

    # ---- alert response --------------------------------------------------------------------------
    def ha_manager_status(self, spec: ClusterSpec) -> Outcome:
        """The HA manager here is CNPG's operator: its deployment available, the cluster not fenced or
        hibernated (on purpose, by a person: pgha reports it and leaves it)."""
        problems, remedy = [], ""
        deployment = self.kube.get("apps/v1", "Deployment", self.aks.operator_namespace, self.aks.operator_deployment)
        if deployment is None:
            problems.append(f"operator deployment {self.aks.operator_namespace}/{self.aks.operator_deployment} "
                            "not found")
        elif not cnpg.deployment_available(deployment):
            problems.append(f"operator deployment {self.aks.operator_deployment} is not available")
            remedy = f"restart the CNPG operator deployment {self.aks.operator_deployment}"
        annotations = ((self._cluster(spec.namespace, spec.name) or {}).get("metadata") or {}).get(
            "annotations") or {}
        if annotations.get("cnpg.io/fencedInstances"):
            problems.append(f"fenced: {annotations['cnpg.io/fencedInstances']} (lifted by a person, not by pgha)")
        if annotations.get("cnpg.io/hibernation") == "on":
            problems.append("hibernated (cnpg.io/hibernation=on; woken by a person, not by pgha)")
        if problems:
            return done("; ".join(problems), healthy=False, problems=problems, actionable=bool(remedy),
                        remedy=remedy or "none pgha may take: " + problems[0])
        return done(f"operator {self.aks.operator_deployment} available; cluster neither fenced nor hibernated",
                    healthy=True, problems=[])

    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]:
        """The newest archiver failures in the instances' container logs, from Log Analytics (when set)."""
        if not self.aks.log_workspace_id:
            return []
        rows = self.azure.logs(
            f"ContainerLogV2 | where PodNamespace == '{spec.namespace}' and PodName startswith '{spec.name}-'"
            " | extend Message = tostring(LogMessage)"
            " | where Message has 'archive' and (Message has 'fail' or Message has 'error')"
            f" | project TimeGenerated, PodName, Message | order by TimeGenerated desc | take {int(limit)}"
        )
        return [redact(f"{row['PodName']}: {row['Message']}")[:500] for row in reversed(rows)]

    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome:
        """`kubectl rollout restart deployment/cnpg-controller-manager` — only that."""
        state = self.ha_manager_status(spec)
        if state.data["healthy"]:
            return unchanged("the operator is available")
        if not state.data["actionable"]:
            raise RuntimeError(f"not pgha's to fix: {state.detail}")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.kube.strategic_patch("apps/v1", "Deployment", self.aks.operator_namespace, self.aks.operator_deployment,
                                  {"spec": {"template": {"metadata": {"annotations": {
                                      "kubectl.kubernetes.io/restartedAt": now}}}}})
        return done(f"operator deployment {self.aks.operator_deployment} restarted (rollout at {now})")

    # ---- teardown --------------------------------------------------------------------------------
    def remove_endpoints(self, namespace: str, name: str) -> Outcome:
        spec = ClusterSpec(name=name, namespace=namespace)
        gone = [service for role in ("rw", "ro")
                for service in (manifests.service_name(spec, role), manifests.legacy_service_name(spec, role))
                if self.kube.delete("v1", "Service", namespace, service)]
        return done(f"LoadBalancers {', '.join(gone)} deleted") if gone else unchanged("no LoadBalancers")

    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome:
        spec = ClusterSpec(name=name, namespace=namespace)
        if self.kube.delete(CNPG_API, "ScheduledBackup", namespace, manifests.scheduled_backup_name(spec)):
            return done("ScheduledBackup deleted")
        return unchanged("no ScheduledBackup")

    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome:
        """Delete the Cluster with what pgha made beside it (PodMonitors, on-demand Backup records); keep its
        spec beside the backups it leaves, and its ObjectStore, which a restore from them names."""
        spec = self.stored_spec(namespace, name)
        if spec is not None:  # one key per server name: every generation whose backups are kept stays findable
            self.kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": f"pgha-retained-{name}", "namespace": namespace, "labels": {RETAINED_LABEL: "true"}}})
            self.kube.merge_patch("v1", "ConfigMap", namespace, f"pgha-retained-{name}",
                                  {"data": {spec.server_name: json.dumps(spec.dump(), sort_keys=True)}})
        deleted = self.kube.delete(CNPG_API, "Cluster", namespace, name)
        backups = self.kube.list(CNPG_API, "Backup", namespace, f"cnpg.io/cluster={name}")
        records = [b["metadata"]["name"] for b in backups
                   if self.kube.delete(CNPG_API, "Backup", namespace, b["metadata"]["name"])]
        probe = ClusterSpec(name=name, namespace=namespace)
        monitors = [m["apiVersion"].split("/")[0] for m in (manifests.pod_monitor(probe),
                                                            manifests.managed_prometheus_pod_monitor(probe))
                    if self.kube.delete(m["apiVersion"], "PodMonitor", namespace, m["metadata"]["name"])]
        extra = (f"; {len(records)} Backup record(s)" if records else "") + (
            f"; PodMonitors {', '.join(monitors)}" if monitors else "")
        if not deleted:
            return unchanged(f"Cluster {name} was gone{extra}")
        return done(f"Cluster {name} deleted; its PVCs go with it{extra}")

    def remaining_volumes(self, namespace: str, name: str) -> int:
        """The cluster's PVCs not yet gone (the runbook waits on a durable timer, not in an activity)."""
        return len(self.kube.list("v1", "PersistentVolumeClaim", namespace, f"cnpg.io/cluster={name}"))

    def delete_app_secret(self, spec: ClusterSpec) -> Outcome:
        if self.kube.delete("v1", "Secret", spec.namespace, spec.bootstrap.secret_name):
            return done(f"secret {spec.bootstrap.secret_name} deleted")
        return unchanged(f"secret {spec.bootstrap.secret_name} does not exist")

    def remove_backup_identity(self, spec: ClusterSpec) -> Outcome:
        if not self.aks.identity_name:
            return skipped("PGHA_AKS_IDENTITY_NAME unset: no federated credential was made")
        if self.azure.delete_federated_credential(spec.namespace, spec.name):
            return done(f"federated credential for {spec.namespace}/{spec.name} deleted")
        return unchanged("federated credential already gone")

    def delete_backups(self, spec: ClusterSpec) -> Outcome:
        """The backups under the server name, then the ObjectStore that described them (plugin mode)."""
        deleted = self.backup_container(spec).delete_prefix(f"{spec.server_name}/")
        if spec.backup.method == "plugin":
            self.kube.delete(manifests.OBJECT_STORE_API, "ObjectStore", spec.namespace,
                             manifests.object_store_name(spec))
        kept = self.kube.get("v1", "ConfigMap", spec.namespace, f"pgha-retained-{spec.name}")
        if kept is not None and spec.server_name in (kept.get("data") or {}):
            left = self.kube.merge_patch("v1", "ConfigMap", spec.namespace, f"pgha-retained-{spec.name}",
                                         {"data": {spec.server_name: None}})
            if not left.get("data"):
                self.kube.delete("v1", "ConfigMap", spec.namespace, f"pgha-retained-{spec.name}")
        return done(f"deleted {deleted} blobs under {spec.backup.container}/{spec.server_name}/", deleted=deleted)


def spec_of(cluster: dict[str, Any] | None) -> ClusterSpec | None:
    """The spec pgha stored on the Cluster it made (its annotation), or None."""
    raw = (((cluster or {}).get("metadata") or {}).get("annotations") or {}).get(SPEC_ANNOTATION)
    return ClusterSpec.model_validate(json.loads(raw)) if raw else None
