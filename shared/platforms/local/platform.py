"""The local adapter of the Platform port: a cluster is N Patroni members on this machine.

A facade: each step is delegated to the module of its concern — state (records and secrets under
PGHA_HOME), archive (barman-cloud into Azurite), members (Patroni processes), status, sql, backups, drills
— and the stack (etcd and Azurite) they share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager

from shared import credentials
from shared.backups import Backup
from shared.changes import ChangePlan, Verdict, in_force
from shared.connection import Connection
from shared.doctor import Check, Purpose
from shared.objectstore import Container
from shared.outcome import Outcome, skipped
from shared.platform import Role, preflight_outcome
from shared.platforms.local import doctor, processes
from shared.platforms.local.archive import Archive
from shared.platforms.local.backups import Backups
from shared.platforms.local.credentials import Credentials
from shared.platforms.local.drills import Drills
from shared.platforms.local.members import Members
from shared.platforms.local.monitoring import AlertRoute
from shared.platforms.local.sql import Sessions
from shared.platforms.local.stack import PG_BIN, Stack
from shared.platforms.local.state import Records
from shared.platforms.local.status import Status
from shared.platforms.local.updates import Updates
from shared.settings import Settings
from shared.spec import ClusterSpec
from shared.sql import Sql
from shared.status import ClusterStatus, Drift, InstanceSettings, Rollout

AZURE_ONLY = "Azure-only step, skipped on the local platform"


class LocalPlatform:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self.stack = Stack(self.home)
        self.account = processes.service_account(settings.service_user)
        self.records = Records(self.home)
        self.archive = Archive(self.stack, self.records, self.account)
        self.members = Members(self.records, self.stack, self.archive, self.account)
        self.status = Status(self.records, self.stack, self.members)
        self.sessions = Sessions(self.records, self.members, self.status, self.archive)
        self.backups = Backups(self.records, self.archive, self.members, self.status, self.account)
        self.drills = Drills(self.records, self.members, self.status)
        self.updates = Updates(self.records, self.members)
        self.credentials = Credentials(self.records, self.members, self.status, self.sessions)

    # ---- the doctor ------------------------------------------------------------------------------
    def diagnose(self, spec: ClusterSpec, purpose: Purpose = "doctor", delete_backups: bool = False) -> list[Check]:
        return doctor.examine(self, spec, purpose)

    def preflight(self, spec: ClusterSpec, purpose: Purpose = "deploy", delete_backups: bool = False) -> Outcome:
        """barman-cloud archives into Azurite whatever backup.method says (`auto` included): the spec goes on
        as it came."""
        return preflight_outcome(doctor.examine(self, spec, purpose), spec)

    # ---- deploy ----------------------------------------------------------------------------------
    def ensure_namespace(self, spec: ClusterSpec) -> Outcome:
        return self.records.ensure_namespace(spec)

    def preflight_backup_destination(self, spec: ClusterSpec) -> Outcome:
        return self.archive.preflight(spec)

    def ensure_app_secret(self, spec: ClusterSpec, created_by: str | None = None) -> Outcome:
        return self.records.ensure_app_secret(spec, created_by)

    def configure_operator(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: there is no CNPG operator to configure (ConfigMap "
                       "cnpg-controller-manager-config, ENABLE_AZURE_PVC_UPDATES)")

    def configure_monitoring(self, spec: ClusterSpec) -> Outcome:
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        return skipped(f"{AZURE_ONLY}: no PodMonitor CRDs here; each member's Patroni serves /metrics, "
                       "checked once the cluster is ready")

    def verify_monitoring(self, spec: ClusterSpec) -> Outcome:
        return self.status.verify_monitoring(spec)

    def ensure_backup_identity(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: no workload identity or federated credential here; barman-cloud "
                       "reaches Azurite with its connection string")

    def apply_cluster(self, spec: ClusterSpec) -> Outcome:
        return self.members.apply(spec)

    def cluster_status(self, namespace: str, name: str) -> ClusterStatus:
        return self.status.cluster_status(namespace, name)

    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome:
        return self.sessions.apply_owner_secret(spec)

    def check_zone_spread(self, spec: ClusterSpec) -> Outcome:
        return skipped("n/a: every local instance runs on this one machine (no zones)")

    def connect(
        self, namespace: str, name: str, role: Role, database: str | None = None
    ) -> AbstractContextManager[Sql]:
        return self.sessions.connect(namespace, name, role, database)

    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome:
        return self.sessions.switch_wal_and_find_segment(spec)

    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome:
        return self.records.ensure_scheduled_backup(spec)

    def expose_endpoints(self, spec: ClusterSpec) -> Outcome:
        return self.sessions.expose_endpoints(spec)

    def connection(self, spec: ClusterSpec) -> Connection:
        return self.sessions.connection(spec)

    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None:
        return self.records.stored_spec(namespace, name)

    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]:
        return self.records.retained_specs(namespace, name)

    def list_clusters(self) -> Iterator[ClusterSpec]:
        """A record that does not read is reported and left out, never the end of the listing."""
        return self.records.specs(strict=False)

    # ---- backups ---------------------------------------------------------------------------------
    def start_backup(self, spec: ClusterSpec, name: str) -> Backup:
        return self.backups.start(spec, name)

    def get_backup(self, namespace: str, cluster: str, name: str) -> Backup:
        return self.backups.get(namespace, cluster, name)

    def delete_backup(self, namespace: str, cluster: str, name: str) -> Outcome:
        return self.backups.delete(namespace, cluster, name)

    def backup_container(self, spec: ClusterSpec, source: bool = False) -> Container:
        return self.archive.container(spec, source)

    # ---- failover drills and the alert response --------------------------------------------------
    def delete_primary(self, spec: ClusterSpec, mode: str, recreate_after: float = 3.0) -> Outcome:
        return self.drills.delete_primary(spec, mode, recreate_after)

    def promote(self, spec: ClusterSpec, instance: str) -> Outcome:
        return self.drills.promote(spec, instance)

    def ha_manager_status(self, spec: ClusterSpec) -> Outcome:
        return self.drills.ha_manager_status(spec)

    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]:
        return self.drills.archiving_errors(spec, limit)

    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome:
        return self.drills.restore_ha_manager(spec)

    # ---- day-2 updates -----------------------------------------------------------------------------
    def running_major(self, namespace: str, name: str) -> int | None:
        version = PG_BIN.parent.name  # /usr/lib/postgresql/<major>/bin: the one PostgreSQL here
        return int(version) if version.isdigit() else None

    def weigh_changes(self, spec: ClusterSpec, plan: ChangePlan) -> Verdict:
        return self.updates.weigh_changes(plan)

    def restart_instance(self, spec: ClusterSpec, instance: str) -> Outcome:
        return self.updates.restart_instance(spec, instance)

    def instance_settings(self, spec: ClusterSpec, names: list[str]) -> list[InstanceSettings]:
        return self.updates.instance_settings(spec, names)

    def drift(self, spec: ClusterSpec) -> list[Drift]:
        return self.updates.drift(spec)

    def rollout(self, spec: ClusterSpec) -> Rollout:
        """No operator rolls a change here (pgha restarts each member): what is not yet as the spec says."""
        status = self.cluster_status(spec.namespace, spec.name)
        settings = self.instance_settings(spec, sorted(spec.postgresql.parameters))
        waiting = [f"{i.name} not ready" for i in status.instances_status if not i.ready] + in_force(spec, settings)
        return Rollout(phase=status.phase, phase_reason=status.phase_reason, failure=status.failure,
                       current_primary=status.current_primary, waiting=waiting,
                       # and Patroni's own flag, which needs no answer from PostgreSQL
                       pending_restart=sorted({i.name for i in settings if i.pending_restart}
                                              | {i.name for i in status.instances_status if i.pending_restart}))

    # ---- credential rotation -------------------------------------------------------------------------
    def stage_app_password(self, spec: ClusterSpec) -> Outcome:
        return self.credentials.move(spec, credentials.staged, "a new password staged")

    def commit_app_password(self, spec: ClusterSpec) -> Outcome:
        return self.credentials.move(spec, credentials.committed, "the new password in use, the old one kept")

    def revert_app_password(self, spec: ClusterSpec, committed: bool) -> Outcome:
        return self.credentials.move(spec, lambda keys: credentials.reverted(keys, committed),
                                     "the password from before the rotation in use")

    def forget_previous_password(self, spec: ClusterSpec) -> Outcome:
        return self.credentials.move(spec, credentials.forgotten, "the old password forgotten")

    def set_owner_password(self, spec: ClusterSpec, which: credentials.Which) -> Outcome:
        return self.credentials.set_owner_password(spec, which)

    def app_login(self, spec: ClusterSpec, which: credentials.Which) -> str | None:
        return self.credentials.app_login(spec, which)

    # ---- teardown --------------------------------------------------------------------------------
    def remove_endpoints(self, namespace: str, name: str) -> Outcome:
        return skipped("local endpoints are the members themselves; removed with the cluster")

    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome:
        return self.records.remove_scheduled_backups(namespace, name)

    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome:
        return self.members.delete_cluster(namespace, name, graceful)

    def remaining_volumes(self, namespace: str, name: str) -> int:
        return self.records.remaining_volumes(namespace, name)

    def delete_app_secret(self, spec: ClusterSpec) -> Outcome:
        return self.records.delete_app_secret(spec)

    def remove_backup_identity(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: no federated credential was made")

    def delete_backups(self, spec: ClusterSpec) -> Outcome:
        return self.archive.delete_backups(spec)

    # ---- the stack -------------------------------------------------------------------------------
    def route_alerts(self, url: str, namespaces: list[str]) -> None:
        """Alertmanager's alerts (of these namespaces, all when empty) to the pgha webhook at `url` too."""
        self.stack.monitoring.route_alerts(AlertRoute(url=url, namespaces=namespaces))

    def unroute_alerts(self, url: str) -> None:
        """No more alerts to the pgha webhook at `url`; other routes stay."""
        self.stack.monitoring.unroute(url)

    def stop_all(self) -> list[str]:
        """`pgha down`: every member of every cluster, then the WAL service, etcd and Azurite."""
        return self.members.stop_all()

    def start_all(self) -> list[str]:
        """`pgha up`: the stack, then every member whose cluster exists but is not running."""
        return self.members.start_all()
