"""ScriptedPlatform: a test double of the Platform port for orchestration tests.

It holds clusters in memory and follows a script (how many status polls until ready, which
methods fail), so branches, deadlines and compensation can be driven without PostgreSQL. It is
never used by integration tests, which run the real local stack.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from shared import credentials
from shared import status as st
from shared.changes import ChangePlan, Verdict
from shared.connection import Connection, Endpoint
from shared.doctor import Check, Purpose, passed
from shared.outcome import Outcome, done, skipped, unchanged
from shared.platform import PreflightFailed, preflight_outcome
from shared.spec import ClusterSpec


class ScriptedFailure(RuntimeError):
    pass


class ScriptedPlatform:
    name = "scripted"

    def __init__(self, polls_until_ready: int | None = 1, failing: dict[str, int] | None = None) -> None:
        self.polls_until_ready = polls_until_ready
        self.failing = dict(failing or {})  # method -> failures left (-1: always)
        self.lose_result: dict[str, int] = {}  # method -> times it does its work, then fails (a lost answer)
        self.calls: Counter[str] = Counter()
        self.clusters: dict[tuple[str, str], ClusterSpec] = {}
        self.secrets: set[tuple[str, str]] = set()
        self.secret_owners: dict[tuple[str, str], str | None] = {}
        self.archives: set[str] = set()
        self.polls = 0
        self.delays: dict[str, float] = {}
        self.primary_up = True  # False: no primary, as after losing it with failover off
        self.failure: str | None = None  # the platform's sign that the cluster cannot become ready
        self.ha_paused = False  # the HA manager cannot fail over (Patroni paused, CNPG operator down)
        self.recover_on_resume = True  # the HA manager brings a primary back once it runs again
        self.ha_fixable = True  # False: fenced or hibernated on purpose, a person's to undo
        self.findings: list[Check] = [passed("scripted", "every check passes")]  # what the doctor finds
        self.diagnosed: list[tuple[str, bool]] = []  # (purpose, deleteBackups) of each look
        self.major: int | None = 16  # the PostgreSQL major the cluster runs
        self.refuse: dict[str, str] = {}  # change kind -> the reason weigh_changes refuses it
        self.pending_restart: list[str] = []  # instances a setting waits on for a restart (`rollout` says)
        self.restarted: list[str] = []
        self.drifted: list[st.Drift] = []  # what GET /api/clusters/{name} reports as drift
        self.app_keys: dict[tuple[str, str], dict[str, str]] = {}  # an app secret's keys
        self.role_passwords: dict[tuple[str, str], str] = {}  # the owner's password on each cluster

    def _called(self, method: str) -> None:
        self.calls[method] += 1
        time.sleep(self.delays.get(method, 0))  # a step that takes long: what a cancel cannot interrupt
        left = self.failing.get(method, 0)
        if left:
            self.failing[method] = left - 1 if left > 0 else -1
            raise ScriptedFailure(f"scripted failure of {method}")

    def diagnose(self, spec: ClusterSpec, purpose: Purpose = "doctor", delete_backups: bool = False) -> list[Check]:
        self._called("diagnose")
        self.diagnosed.append((purpose, delete_backups))
        return list(self.findings)

    def preflight(self, spec: ClusterSpec, purpose: Purpose = "deploy", delete_backups: bool = False) -> Outcome:
        self._called("preflight")
        return preflight_outcome(self.diagnose(spec, purpose, delete_backups), spec)

    def preflight_backup_destination(self, spec: ClusterSpec) -> Outcome:
        self._called("preflight_backup_destination")
        if (spec.namespace, spec.name) in self.clusters:
            return unchanged("cluster exists")
        if spec.server_name in self.archives:
            raise PreflightFailed(f"archive {spec.server_name} not empty")
        return done("archive empty")

    def ensure_namespace(self, spec: ClusterSpec) -> Outcome:
        self._called("ensure_namespace")
        return unchanged("namespace exists")

    def ensure_app_secret(self, spec: ClusterSpec, created_by: str | None = None) -> Outcome:
        self._called("ensure_app_secret")
        key = (spec.namespace, spec.bootstrap.secret_name)
        if key in self.secrets:
            return unchanged("secret exists", createdBy=self.secret_owners.get(key))
        self.secrets.add(key)
        self.secret_owners[key] = created_by
        if self.lose_result.get("ensure_app_secret", 0):
            self.lose_result["ensure_app_secret"] -= 1
            raise ScriptedFailure("scripted: the secret was made but the answer was lost")
        return done("secret created", createdBy=created_by)

    def configure_operator(self, spec: ClusterSpec) -> Outcome:
        self._called("configure_operator")
        return skipped("scripted")

    def configure_monitoring(self, spec: ClusterSpec) -> Outcome:
        self._called("configure_monitoring")
        return skipped("scripted")

    def verify_monitoring(self, spec: ClusterSpec) -> Outcome:
        self._called("verify_monitoring")
        return done("metrics scraped")

    def ensure_backup_identity(self, spec: ClusterSpec) -> Outcome:
        self._called("ensure_backup_identity")
        return skipped("scripted")

    def apply_cluster(self, spec: ClusterSpec) -> Outcome:
        self._called("apply_cluster")
        self.clusters[(spec.namespace, spec.name)] = spec
        self.archives.add(spec.server_name)
        return done("applied")

    def cluster_status(self, namespace: str, name: str) -> st.ClusterStatus:
        self._called("cluster_status")
        spec = self.clusters.get((namespace, name))
        if spec is None:
            return st.ClusterStatus(name=name, namespace=namespace, phase=st.NOT_FOUND)
        self.polls += 1
        ready = self.polls_until_ready is not None and self.polls >= self.polls_until_ready
        count = spec.instances if ready else 1
        return st.ClusterStatus(
            name=name, namespace=namespace, phase=st.HEALTHY if ready else st.CREATING_REPLICA,
            instances=spec.instances, ready_instances=count,
            current_primary=f"{name}-1" if self.primary_up else None, failure=self.failure,
            instances_status=[st.InstanceStatus(name=n, role="primary" if i == 0 else "standby", ready=i < count,
                                                sync_state="primary" if i == 0 else "quorum")
                              for i, n in enumerate(spec.instance_names)],
        )

    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome:
        return skipped("scripted")

    # day-2 updates: the scripted running major, refusals as scripted, restarts recorded
    def running_major(self, namespace: str, name: str) -> int | None:
        return self.major

    def weigh_changes(self, spec: ClusterSpec, plan: ChangePlan) -> Verdict:
        self._called("weigh_changes")
        return Verdict(refused=[f"{c.field}: {self.refuse[c.kind]}" for c in plan.changes if c.kind in self.refuse])

    def rollout(self, spec: ClusterSpec) -> st.Rollout:
        """The scripted status, and the instances scripted as waiting for a restart."""
        self._called("rollout")
        status = self.cluster_status(spec.namespace, spec.name)
        return st.Rollout(phase=status.phase, current_primary=status.current_primary,
                          waiting=[f"{n}: pending_restart" for n in self.pending_restart],
                          pending_restart=list(self.pending_restart))

    def restart_instance(self, spec: ClusterSpec, instance: str) -> Outcome:
        self._called("restart_instance")
        self.restarted.append(instance)
        return done(f"{instance} restarted")

    # credential rotation: the secret's keys moved as the adapters move them, each role's password remembered
    def _move(self, spec: ClusterSpec, step: Any, method: str) -> Outcome:
        self._called(method)
        keys = self.app_keys.setdefault((spec.namespace, spec.bootstrap.secret_name), {"password": "first"})
        changed = step(keys)
        if changed is None:
            return unchanged(method)
        self.app_keys[(spec.namespace, spec.bootstrap.secret_name)] = changed
        return done(method)

    def stage_app_password(self, spec: ClusterSpec) -> Outcome:
        return self._move(spec, credentials.staged, "stage_app_password")

    def commit_app_password(self, spec: ClusterSpec) -> Outcome:
        return self._move(spec, credentials.committed, "commit_app_password")

    def revert_app_password(self, spec: ClusterSpec, committed: bool) -> Outcome:
        return self._move(spec, lambda keys: credentials.reverted(keys, committed), "revert_app_password")

    def forget_previous_password(self, spec: ClusterSpec) -> Outcome:
        return self._move(spec, credentials.forgotten, "forget_previous_password")

    def set_owner_password(self, spec: ClusterSpec, which: str) -> Outcome:
        self._called("set_owner_password")
        keys = self.app_keys[(spec.namespace, spec.bootstrap.secret_name)]
        self.role_passwords[(spec.namespace, spec.name)] = keys[which]
        return done(f"{spec.name}: {which}")

    def app_login(self, spec: ClusterSpec, which: str) -> str | None:
        self._called("app_login")
        keys = self.app_keys.get((spec.namespace, spec.bootstrap.secret_name), {"password": "first"})
        if self.role_passwords.get((spec.namespace, spec.name), "first") == keys[which]:
            return None
        return 'FATAL:  password authentication failed for user "app"'

    def drift(self, spec: ClusterSpec) -> list[st.Drift]:
        return list(self.drifted)

    def instance_settings(self, spec: ClusterSpec, names: list[str]) -> list[st.InstanceSettings]:
        self._called("instance_settings")
        return [st.InstanceSettings(name=n, values={k: spec.postgresql.parameters.get(k) for k in names})
                for n in spec.instance_names]

    def check_zone_spread(self, spec: ClusterSpec) -> Outcome:
        self._called("check_zone_spread")
        return skipped("scripted")

    def connect(self, namespace: str, name: str, role: str, database: str | None = None) -> Any:
        """A fake connection that answers only the write check (`SELECT txid_current()`) of a live primary."""
        if role != "rw" or not self.primary_up:
            raise NotImplementedError("the scripted platform runs no SQL; use sampleData false and 1 instance")
        return _WriteCheckConnection()

    def ha_manager_status(self, spec: ClusterSpec) -> Outcome:
        self._called("ha_manager_status")
        if self.ha_paused:
            return done("paused", healthy=False, problems=["paused"], remedy="resume", actionable=self.ha_fixable)
        return done("running", healthy=True, problems=[])

    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]:
        return []

    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome:
        self._called("restore_ha_manager")
        if not self.ha_paused:
            return unchanged("already running")
        self.ha_paused = False
        self.primary_up = self.primary_up or self.recover_on_resume
        return done("resumed", actions=["resumed"])

    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome:
        self._called("switch_wal_and_find_segment")
        return done("segment found")

    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome:
        self._called("ensure_scheduled_backup")
        return skipped("no schedule")

    def expose_endpoints(self, spec: ClusterSpec) -> Outcome:
        self._called("expose_endpoints")
        return skipped("not enabled")

    def connection(self, spec: ClusterSpec) -> Connection:
        self._called("connection")
        address = "127.0.0.1:5432"
        return Connection(database=spec.bootstrap.database, user=spec.bootstrap.owner,
                          secret_name=spec.bootstrap.secret_name,
                          rw=Endpoint(address=address, libpq=f"host=127.0.0.1 port=5432 user={spec.bootstrap.owner}"))

    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None:
        return self.clusters.get((namespace, name))

    def list_clusters(self) -> Iterator[ClusterSpec]:
        return iter(list(self.clusters.values()))

    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]:
        return []

    def remove_endpoints(self, namespace: str, name: str) -> Outcome:
        self._called("remove_endpoints")
        return unchanged("none")

    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome:
        self._called("remove_scheduled_backups")
        return unchanged("none")

    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome:
        self._called("delete_cluster")
        return done("deleted") if self.clusters.pop((namespace, name), None) else unchanged("absent")

    def remaining_volumes(self, namespace: str, name: str) -> int:
        return 0

    def delete_app_secret(self, spec: ClusterSpec) -> Outcome:
        self._called("delete_app_secret")
        key = (spec.namespace, spec.bootstrap.secret_name)
        if key not in self.secrets:
            return unchanged("absent")
        self.secrets.discard(key)
        return done("deleted")

    def remove_backup_identity(self, spec: ClusterSpec) -> Outcome:
        self._called("remove_backup_identity")
        return skipped("scripted")

    def delete_backups(self, spec: ClusterSpec) -> Outcome:
        self._called("delete_backups")
        self.archives.discard(spec.server_name)
        return done("deleted")


class _WriteCheckConnection:
    """Just enough of a SQL session (shared.sql.Sql) for the alert response's write check."""

    def __enter__(self) -> _WriteCheckConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, query: str, params: Any = None) -> _WriteCheckConnection:
        if "txid_current" not in query and not query.upper().startswith("SET"):
            raise NotImplementedError(f"the scripted platform runs no SQL: {query}")
        return self

    def fetchone(self) -> tuple[int]:
        return (1,)

    def commit(self) -> None:
        return None

    def cancel(self) -> None:
        return None
