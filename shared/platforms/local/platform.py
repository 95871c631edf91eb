"""The local adapter of the Platform port: a cluster is N Patroni members on this machine.

State lives under PGHA_HOME: `clusters/<namespace>/<name>/` (cluster.json with the spec and the ports
chosen at creation, one directory per member) and `secrets/<namespace>/<secret>` (0600).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from shared import backups, objectstore, sql
from shared import status as st
from shared.backups import Backup
from shared.doctor import Check, Purpose
from shared.logs import redact, said
from shared.objectstore import Container
from shared.platform import (
    Outcome,
    PreflightFailed,
    Role,
    done,
    preflight_outcome,
    skipped,
    unchanged,
    unreadable,
)
from shared.platforms.local import doctor, patroni, processes, tls
from shared.platforms.local.patroni import Member
from shared.platforms.local.stack import PG_BIN, TOOLS_BIN, Stack
from shared.secrets import generate_password, scram_verifier
from shared.settings import Settings
from shared.spec import ClusterSpec
from shared.walarchive import MARKER_COMMIT, MARKER_SETTINGS, SWITCH_WAL, segment_blob


def utcnow() -> str:
    return datetime.now(UTC).isoformat()


ARCHIVE_WAIT_SECONDS = 60
AZURE_ONLY = "Azure-only step, skipped on the local platform"


class LocalPlatform:
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home
        self.stack = Stack(self.home)
        self.account = processes.service_account(settings.service_user)

    # ---- paths and state -------------------------------------------------------------------------
    def cluster_dir(self, namespace: str, name: str) -> Path:
        return self.home / "clusters" / namespace / name

    def secret_file(self, namespace: str, secret_name: str) -> Path:
        return self.home / "secrets" / namespace / secret_name

    def _state(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.cluster_dir(namespace, name) / "cluster.json").read_text())
        except FileNotFoundError:
            return None

    def _save_state(self, namespace: str, name: str, state: dict[str, Any]) -> None:
        path = self.cluster_dir(namespace, name) / "cluster.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(path)

    def _members(self, namespace: str, name: str, state: dict[str, Any] | None = None) -> list[Member]:
        state = state or self._state(namespace, name)
        if state is None:
            return []
        base = self.cluster_dir(namespace, name) / "members"
        return [
            Member(member, ports["pgPort"], ports["restPort"], base / member)
            for member, ports in sorted(state["members"].items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1]))
        ]

    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None:
        state = self._state(namespace, name)
        return ClusterSpec.model_validate(state["spec"]) if state else None

    def list_clusters(self) -> Iterator[ClusterSpec]:
        """Every cluster whose record reads; one that does not is reported and left out, never the end of
        the listing (the schedules of the others still run)."""
        return self._specs(strict=False)

    def _specs(self, strict: bool) -> Iterator[ClusterSpec]:
        """`strict`: a record that does not read is an error, for a decision it could change."""
        for path in sorted((self.home / "clusters").glob("*/*/cluster.json")):
            try:
                yield ClusterSpec.model_validate(json.loads(path.read_text())["spec"])
            except (OSError, ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
                if strict:
                    raise RuntimeError(f"cluster record {path} does not read ({type(err).__name__})") from None
                unreadable(str(path), err)

    def _scope(self, spec: ClusterSpec) -> str:
        return f"{spec.namespace}--{spec.name}"

    def _destination(self, spec: ClusterSpec) -> str:
        return f"{self.stack.require().blob_endpoint}/{spec.backup.container}"

    def _barman_env(self) -> dict[str, str]:
        return {
            "PATH": f"{TOOLS_BIN}:{PG_BIN}:/usr/local/bin:/usr/bin:/bin",
            "AZURE_STORAGE_CONNECTION_STRING": self.stack.require().connection_string,
            "HOME": self.account.pw_dir if self.account else os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
        }

    def _archive_command(self, spec: ClusterSpec) -> str:
        return (
            f"{TOOLS_BIN}/barman-cloud-wal-archive --cloud-provider azure-blob-storage "
            f"{self._destination(spec)} {spec.server_name} %p"
        )

    def _passwords(self, namespace: str, name: str, create: bool = False) -> dict[str, str]:
        """The superuser's and replication's passwords, made once when the cluster is first applied. A file
        lost later is an error: a new random password would not be the one the cluster has."""
        path = self.cluster_dir(namespace, name) / "internal-passwords.json"
        if create and not path.exists():
            processes.write_private(path, json.dumps({
                "superuser": generate_password(), "replication": generate_password(),
            }))
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise RuntimeError(f"the internal passwords of cluster {namespace}/{name} are missing ({path})") from None

    def _read_secret(self, namespace: str, secret_name: str) -> dict[str, str]:
        try:
            return json.loads(self.secret_file(namespace, secret_name).read_text())
        except FileNotFoundError:
            raise RuntimeError(f"secret {namespace}/{secret_name} does not exist") from None

    # ---- deploy ----------------------------------------------------------------------------------
    def preflight_backup_destination(self, spec: ClusterSpec) -> Outcome:
        """Create the container, then refuse a server name that already has an archive (as CNPG does)."""
        state = self.stack.require()
        objectstore.container(state.connection_string, spec.backup.container, create=True)
        if self._state(spec.namespace, spec.name) is not None:
            return unchanged("cluster already exists and archives under this server name")
        result = subprocess.run(
            [f"{TOOLS_BIN}/barman-cloud-check-wal-archive", "--cloud-provider", "azure-blob-storage",
             self._destination(spec), spec.server_name],
            env=self._barman_env(), capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            if "Expected empty archive" in result.stderr + result.stdout:
                raise PreflightFailed(backups.archive_in_use(spec))
            raise RuntimeError(f"barman-cloud-check-wal-archive failed: {result.stderr.strip()[-500:]}")
        return done(f"container {spec.backup.container} ready; archive for {spec.server_name!r} is empty")

    def ensure_namespace(self, spec: ClusterSpec) -> Outcome:
        path = self.home / "clusters" / spec.namespace
        if path.is_dir():
            return unchanged(f"namespace {spec.namespace} exists")
        path.mkdir(parents=True)
        os.chmod(path, 0o755)
        return done(f"namespace {spec.namespace} created")

    def ensure_app_secret(self, spec: ClusterSpec, created_by: str | None = None) -> Outcome:
        """The secret records the operation that made it (a label on AKS), so only that run removes it."""
        name = spec.bootstrap.secret_name
        path = self.secret_file(spec.namespace, name)
        if path.exists():
            owner = json.loads(path.read_text()).get("createdBy")
            return unchanged(f"secret {name} exists", secretName=name, createdBy=owner)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        processes.write_private(path, json.dumps({
            "username": spec.bootstrap.owner, "password": generate_password(), "createdBy": created_by,
        }))
        return done(f"secret {name} created (0600)", secretName=name, createdBy=created_by)

    def diagnose(self, spec: ClusterSpec, purpose: Purpose = "doctor", delete_backups: bool = False) -> list[Check]:
        return doctor.examine(self, spec, purpose)

    def preflight(self, spec: ClusterSpec, purpose: Purpose = "deploy", delete_backups: bool = False) -> Outcome:
        """The doctor's checks a runbook needs here; barman-cloud archives into Azurite whatever backup.method
        says (`auto` included), so the spec goes on as it came."""
        return preflight_outcome(doctor.examine(self, spec, purpose), spec)

    def configure_operator(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: there is no CNPG operator to configure (ConfigMap "
                       "cnpg-controller-manager-config, ENABLE_AZURE_PVC_UPDATES)")

    def configure_monitoring(self, spec: ClusterSpec) -> Outcome:
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        return skipped(f"{AZURE_ONLY}: no PodMonitor CRDs here; each member's Patroni serves /metrics, "
                       "checked once the cluster is ready")

    def verify_monitoring(self, spec: ClusterSpec) -> Outcome:
        """Scrape every member's /metrics; Patroni's loop may trail PostgreSQL by a second, so wait a little."""
        if not spec.monitoring.enable_pod_monitor:
            return skipped("monitoring disabled in spec")
        members = self._members(spec.namespace, spec.name)
        deadline = time.monotonic() + 15
        while True:
            scraped, failing = {}, []
            for member in members:
                text = patroni.get(member, "/metrics") or ""
                samples = [line for line in text.splitlines() if line and not line.startswith("#")]
                if any(re.match(r"patroni_postgres_running\{.*\} 1(\.0)?$", line) for line in samples):
                    scraped[member.name] = len(samples)
                else:
                    failing.append(member.name)
            if not failing:
                return done(f"scraped /metrics of {len(scraped)} instances", samples=scraped)
            if time.monotonic() > deadline:
                raise RuntimeError(f"/metrics of {', '.join(failing)} does not report patroni_postgres_running 1")
            time.sleep(0.2)

    def ensure_backup_identity(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: no workload identity or federated credential here; barman-cloud "
                       "reaches Azurite with its connection string")

    def apply_cluster(self, spec: ClusterSpec) -> Outcome:
        stack = self.stack.require()
        base = self.cluster_dir(spec.namespace, spec.name)
        state = self._state(spec.namespace, spec.name)
        created = state is None
        if state is None:
            base.mkdir(parents=True, exist_ok=True)
            os.chmod(base, 0o755)
            state = {"spec": spec.dump(), "members": {}, "scope": self._scope(spec), "createdAt": time.time()}
        previous = ClusterSpec.model_validate(state["spec"])
        state["spec"] = spec.dump()
        used = {p for ports in state["members"].values() for p in ports.values()}
        for member_name in spec.instance_names:
            if member_name not in state["members"]:
                pg_port, rest_port = processes.free_ports(2, avoid=used)
                used |= {pg_port, rest_port}
                state["members"][member_name] = {"pgPort": pg_port, "restPort": rest_port}
        removed = [m for m in state["members"] if m not in spec.instance_names]
        for member in self._members(spec.namespace, spec.name, state):
            if member.name in removed:
                self._stop_members([member])
                shutil.rmtree(member.dir, ignore_errors=True)
        for member_name in removed:
            del state["members"][member_name]
        self._save_state(spec.namespace, spec.name, state)

        post_bootstrap, recovery = None, None
        if spec.recovery is None:
            post_bootstrap = self._write_bootstrap(spec)
        else:
            recovery = patroni.recovery_bootstrap(spec, self._write_restore_script(spec), self._restore_command(spec))
        passwords = self._passwords(spec.namespace, spec.name, create=True)
        archive = self._archive_command(spec)
        _, cert, key = tls.ensure_certificates(base, spec.namespace, spec.name, self.account)
        started = []
        for member in self._members(spec.namespace, spec.name, state):
            processes.chown_to(member.dir, self.account)
            processes.chown_to(member.socket_dir, self.account)
            config = patroni.member_config(
                spec, state["scope"], member, stack.etcd_hosts, archive, passwords, post_bootstrap, PG_BIN, recovery,
                (cert, key),
            )
            processes.write_private(member.dir / "patroni.yml", yaml.safe_dump(config), self.account)
            if not member.patroni.running:
                self._start_member(member)
                started.append(member.name)
        if not created and previous.dump() != spec.dump():
            self._patch_dynamic_config(spec)
        verb = "created" if created else "applied"
        detail = f"cluster {spec.namespace}/{spec.name} {verb}; started {', '.join(started) or 'nothing'}"
        return (done if created or started or removed else unchanged)(detail, started=started, removed=removed)

    def _write_bootstrap(self, spec: ClusterSpec) -> Path:
        """CNPG's initdb bootstrap: the app owner and database, created from a SCRAM verifier, not the password."""
        base = self.cluster_dir(spec.namespace, spec.name)
        script, sql = base / "post_bootstrap.sh", base / "bootstrap.sql"
        if not sql.exists():
            secret = self._read_secret(spec.namespace, spec.bootstrap.secret_name)
            owner, database = spec.bootstrap.owner, spec.bootstrap.database
            processes.write_private(sql, (
                f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{scram_verifier(secret['password'])}';\n"
                f"CREATE DATABASE \"{database}\" OWNER \"{owner}\";\n"
            ), self.account)
            processes.write_private(
                script, f'#!/bin/sh\nexec {PG_BIN}/psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f {sql}\n',
                self.account, mode=0o700,
            )
        return script

    def _source_destination(self, spec: ClusterSpec) -> str:
        assert spec.recovery is not None
        return f"{self.stack.require().blob_endpoint}/{spec.recovery.container}"

    def _restore_command(self, spec: ClusterSpec) -> str:
        assert spec.recovery is not None
        return (
            f"{TOOLS_BIN}/barman-cloud-wal-restore --cloud-provider azure-blob-storage "
            f"{self._source_destination(spec)} {spec.recovery.server_name} %f %p"
        )

    def _write_restore_script(self, spec: ClusterSpec) -> Path:
        """Patroni calls it with --scope= and --datadir=; barman-cloud-restore picks the backup for the target."""
        assert spec.recovery is not None
        target = ""
        if spec.recovery.target_time is not None:
            target = f"--target-time '{spec.recovery.target_time.isoformat()}' "
        elif spec.recovery.target_lsn is not None:
            target = f"--target-lsn '{spec.recovery.target_lsn}' "
        script = self.cluster_dir(spec.namespace, spec.name) / "restore.sh"
        processes.write_private(script, (
            "#!/bin/sh\n"
            'for arg; do case "$arg" in --datadir=*) datadir="${arg#--datadir=}";; esac; done\n'
            f"exec {TOOLS_BIN}/barman-cloud-restore --cloud-provider azure-blob-storage {target}"
            f'{self._source_destination(spec)} {spec.recovery.server_name} auto "$datadir"\n'
        ), self.account, mode=0o700)
        return script

    def _start_member(self, member: Member, delay: float = 0) -> int:
        """Start a member's Patroni; with `delay`, after it (the shell execs Patroni, keeping the PID)."""
        command = [f"{TOOLS_BIN}/patroni", str(member.dir / "patroni.yml")]
        with open(member.log, "a") as log:  # where failure_reason starts reading
            log.write(f"{utcnow()} {patroni.START_MARK}\n")
        if delay:
            command = ["/bin/sh", "-c", f"sleep {delay}; exec {command[0]} {command[1]}"]
        return processes.spawn(
            command, member.dir / "patroni.log", member.patroni,
            env=self._barman_env(), account=self.account, cwd=member.dir,
        )

    def _stop_members(self, members: list[Member], graceful: bool = True) -> list[str]:
        """Stop members together (Patroni stops its PostgreSQL), then any postmaster a killed Patroni left.

        Not graceful is for clusters whose data and archive are deleted right after: Patroni killed,
        PostgreSQL's immediate shutdown (SIGQUIT) — nothing left to flush for anyone.
        """
        if graceful:
            stopped = processes.stop_all([m.patroni for m in members], timeout=40)
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave)
            processes.stop_all([m.postmaster for m in members], timeout=20, sig=signal.SIGINT)
        else:
            stopped = processes.stop_all([m.patroni for m in members], timeout=5, sig=signal.SIGKILL)
            processes.stop_all([m.postmaster for m in members], timeout=10, sig=signal.SIGQUIT)
        for member in members:  # what a killed Patroni left running in its session: initdb, a restore, a clone
            processes.stop_session(member.patroni, str(member.dir))
        return [m.name for m in members if m.patroni in stopped]

    def _patch_dynamic_config(self, spec: ClusterSpec) -> None:
        config = patroni.dynamic_config(spec, self._archive_command(spec))
        for member in self._members(spec.namespace, spec.name):
            try:
                response = httpx.patch(f"{member.api}/config", json=config, timeout=5)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                continue
        raise RuntimeError("no member answered the configuration change")

    def cluster_status(self, namespace: str, name: str) -> st.ClusterStatus:
        spec = self.stored_spec(namespace, name)
        if spec is None:
            return st.ClusterStatus(name=name, namespace=namespace, phase=st.NOT_FOUND)
        members = self._members(namespace, name)
        topology = next((t for m in members if (t := patroni.get(m, "/cluster"))), None)
        # /patroni asks PostgreSQL itself and can stall on a member that is starting: ask all at once, briefly
        with ThreadPoolExecutor(max_workers=len(members) or 1) as pool:
            answers = pool.map(lambda m: patroni.get(m, "/patroni", timeout=0.5) or {}, members)
        positions = {m.name: answer for m, answer in zip(members, answers, strict=True)}
        leader = next((m["name"] for m in (topology or {}).get("members", []) if m.get("role") == "leader"), None)
        replication, archiver, standby_names, slots = (
            self._primary_view(spec, leader) if leader else ({}, None, None, [])
        )
        status = patroni.cluster_status(
            namespace, name, spec.instance_names, topology, positions, spec.synchronous_replicas, replication
        )
        failure = self._failure(members, topology, status)
        if failure:
            status = status.model_copy(update={"phase": st.UNRECOVERABLE, "phase_reason": failure, "failure": failure})
        elif (stack := self.stack.state()) and not processes.port_open(stack.etcd_port):
            # not final (etcd may come back), but the reason no leader is elected or kept
            status = status.model_copy(update={"phase_reason": f"etcd, Patroni's DCS, does not answer on "
                                                               f"127.0.0.1:{stack.etcd_port}"})
        return status.model_copy(update={
            "conditions": [archiving_condition(archiver, status.current_primary)],
            "synchronous_standby_names": standby_names,
            "replication_slots": slots,
        })

    @staticmethod
    def _failure(members: list[Member], topology: dict[str, Any] | None, status: st.ClusterStatus) -> str | None:
        """The first member that cannot come back by itself (CNPG's unrecoverable phase stands for it)."""
        paused = bool((topology or {}).get("pause"))
        states = {i.name: i.state for i in status.instances_status}
        reasons = [patroni.member_failure(m, m.patroni.running, states.get(m.name), paused) for m in members]
        return next((r for r in reasons if r), None)

    def _primary_view(
        self, spec: ClusterSpec, primary: str
    ) -> tuple[dict[str, dict[str, Any]], Any, str | None, list[st.ReplicationSlot]]:
        """pg_stat_replication, pg_stat_archiver, synchronous_standby_names and the replication slots,
        as the primary sees them."""
        try:
            with psycopg.connect(self._superuser_dsn(spec, primary), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT application_name, state, sync_state, replay_lsn::text FROM pg_stat_replication"
                ).fetchall()
                archiver = conn.execute(
                    "SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time "
                    "FROM pg_stat_archiver"
                ).fetchone()
                names = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
                slots = [st.ReplicationSlot(name=r[0], active=r[1], wal_status=r[2], retained_bytes=r[3])
                         for r in conn.execute(
                             "SELECT slot_name, active, wal_status, "
                             "pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                             "FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name")]
        except psycopg.Error:
            return {}, None, None, []
        replication = {r[0]: {"state": r[1], "sync_state": r[2], "replay_lsn": r[3]} for r in rows}
        return replication, archiver, names[0] if names else None, slots

    def _superuser_dsn(self, spec: ClusterSpec, member_name: str, database: str = "postgres") -> str:
        state = self._state(spec.namespace, spec.name) or {"members": {}}
        port = state["members"][member_name]["pgPort"]
        password = self._passwords(spec.namespace, spec.name)["superuser"]
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=port, user=patroni.SUPERUSER, password=password, dbname=database, connect_timeout=3
        )

    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome:
        """CNPG's bootstrap.recovery.secret: the recovered owner's password set from the restore's own
        secret, as a SCRAM verifier (the password never reaches the server)."""
        if spec.recovery is None or not spec.recovery.owner_secret:
            return skipped("the restore shares its source's app secret")
        status = self.cluster_status(spec.namespace, spec.name)
        if status.current_primary is None:
            raise RuntimeError("no primary to set the owner's password on")
        secret = self._read_secret(spec.namespace, spec.recovery.owner_secret)
        with psycopg.connect(self._superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{spec.bootstrap.owner}" PASSWORD \'{scram_verifier(secret["password"])}\'')
        return done(f"{spec.bootstrap.owner}'s password set from secret {spec.recovery.owner_secret}")

    def check_zone_spread(self, spec: ClusterSpec) -> Outcome:
        return skipped("n/a: every local instance runs on this one machine (no zones)")

    @contextmanager
    def connect(
        self, namespace: str, name: str, role: Role, database: str | None = None
    ) -> Iterator[sql.Sql]:
        spec = self.stored_spec(namespace, name)
        if spec is None:
            raise RuntimeError(f"cluster {namespace}/{name} does not exist")
        secret = self._read_secret(namespace, spec.bootstrap.secret_name)
        dsn = self.endpoint(spec, role)
        with sql.connect(dsn, password=secret["password"], dbname=database or spec.bootstrap.database,
                         connect_timeout=5, sslmode="verify-ca",
                         sslrootcert=str(self.cluster_dir(namespace, name) / "ca.crt")) as session:
            yield session

    def ca_certificate(self, namespace: str, name: str) -> str:
        """The cluster's CA (PEM), as CNPG keeps it in the `<cluster>-ca` Secret."""
        return (self.cluster_dir(namespace, name) / "ca.crt").read_text()

    def endpoint(self, spec: ClusterSpec, role: Role) -> str:
        """The rw / ro service as a libpq multi-host string (no password: that stays in the secret)."""
        members = self._members(spec.namespace, spec.name)
        hosts = ",".join("127.0.0.1" for _ in members)
        ports = ",".join(str(m.pg_port) for m in members)
        attrs = "read-write" if role == "rw" else "standby"
        return (
            f"host={hosts} port={ports} dbname={spec.bootstrap.database} user={spec.bootstrap.owner} "
            f"target_session_attrs={attrs}"
        )

    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome:
        """A marker commit on the primary, a WAL switch, and that segment found in the object store: the proof
        archiving works, and a commit stamped now in the archive (a time-targeted recovery ends only at one)."""
        status = self.cluster_status(spec.namespace, spec.name)
        if not status.current_primary:
            raise RuntimeError("no primary to switch WAL on")
        with psycopg.connect(self._superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
            with conn.transaction():
                for setting in MARKER_SETTINGS:
                    conn.execute(setting)  # type: ignore[arg-type]
                marker = conn.execute(MARKER_COMMIT).fetchone()
            switched = conn.execute(SWITCH_WAL).fetchone()
        assert marker is not None and switched is not None
        return self._archived(spec, switched[0], f"marker commit xid {marker[0]} at {marker[1].isoformat()}",
                              markerXid=int(marker[0]), markerAt=marker[1].isoformat(), switchedAt=switched[1])

    def _archived(self, spec: ClusterSpec, segment: str, what: str, **data: Any) -> Outcome:
        client = objectstore.container(self.stack.require().connection_string, spec.backup.container)
        prefix = segment_blob(spec.server_name, segment)
        if not objectstore.wait_for(client, prefix, ARCHIVE_WAIT_SECONDS, every=0.1):
            raise RuntimeError(f"WAL segment {segment} ({what}) not found in {spec.backup.container}/ within "
                               f"{ARCHIVE_WAIT_SECONDS}s")
        return done(f"{what}; WAL segment {segment} archived to {spec.backup.container}/{prefix}",
                    segment=segment, **data)

    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome:
        if not spec.backup.schedule:
            return skipped("no backup.schedule in spec")
        path = self.cluster_dir(spec.namespace, spec.name) / "scheduled-backup.json"
        record = {"name": f"{spec.name}-backup", "schedule": spec.backup.schedule, "backupOwnerReference": "self"}
        if path.exists() and json.loads(path.read_text()) == record:
            return unchanged(f"ScheduledBackup {record['name']} ({spec.backup.schedule}) exists")
        path.write_text(json.dumps(record))
        return done(f"ScheduledBackup {record['name']} ({spec.backup.schedule}); fired by the host's timer")

    def expose_endpoints(self, spec: ClusterSpec) -> Outcome:
        if not spec.endpoints.enabled:
            return skipped("endpoints not enabled in spec")
        rules = [r for r in patroni.hba_rules(spec) if any(c in r for c in spec.endpoints.source_ranges)]
        return done(
            f"rw/ro endpoints limited to {', '.join(spec.endpoints.source_ranges) or 'no range'} by pg_hba",
            rw=self.endpoint(spec, "rw"), ro=self.endpoint(spec, "ro"), pgHba=rules,
        )

    # ---- backups ---------------------------------------------------------------------------------
    def backup_container(self, spec: ClusterSpec, source: bool = False) -> Container:
        """The object store of the cluster (or, for a recovery cluster with `source`, of its source)."""
        container = spec.recovery.container if source and spec.recovery else spec.backup.container
        return Container(objectstore.container(self.stack.require().connection_string, container))

    def _backup_path(self, namespace: str, cluster: str, name: str) -> Path:
        return self.cluster_dir(namespace, cluster) / "backups" / f"{name}.json"

    def _save_backup(self, record: Backup) -> Backup:
        path = self._backup_path(record.namespace, record.cluster, record.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record.dump(), indent=2))
        return record

    def start_backup(self, spec: ClusterSpec, name: str) -> Backup:
        """CNPG's on-demand Backup, target prefer-standby: barman-cloud-backup of a streaming standby."""
        path = self._backup_path(spec.namespace, spec.name, name)
        if path.exists():
            return self.get_backup(spec.namespace, spec.name, name)
        return self._begin_backup(spec, Backup(name=name, cluster=spec.name, namespace=spec.namespace,
                                               phase=backups.PENDING, target="prefer-standby", started_at=utcnow()))

    def _begin_backup(self, spec: ClusterSpec, record: Backup) -> Backup:
        """Refused while WAL archiving fails (walArchivingFailing, asked again at each look, as CNPG's instance
        manager retries), else barman-cloud-backup started in the background."""
        status = self.cluster_status(spec.namespace, spec.name)
        archiving = status.condition("ContinuousArchiving")
        if archiving is None or archiving.status != "True":
            reason = archiving.message if archiving else "no primary"
            return self._save_backup(record.model_copy(update={
                "phase": backups.WAL_ARCHIVING_FAILING,
                "error": f"WAL archiving is not working ({reason}); CNPG refuses a backup then",
            }))
        name = record.name
        standbys = [i.name for i in status.instances_status if i.role == "standby" and i.ready]
        instance = standbys[0] if standbys else status.current_primary
        member = next(m for m in self._members(spec.namespace, spec.name) if m.name == instance)
        workdir = self._backup_path(spec.namespace, spec.name, name).parent
        rundir = workdir / "run"  # the only place the backup process itself writes (its exit code)
        processes.chown_to(rundir, self.account, mode=0o755)
        rc_file = rundir / f"{name}.rc"
        command = (
            f"{TOOLS_BIN}/barman-cloud-backup --cloud-provider azure-blob-storage --immediate-checkpoint "
            f"-n {name} -h {member.socket_dir} -p {member.pg_port} -U {patroni.SUPERUSER} "
            f"{self._destination(spec)} {spec.server_name}; echo $? > {rc_file}"
        )
        processes.spawn(["/bin/sh", "-c", command], workdir / f"{name}.log", self._backup_daemon(workdir, name),
                        env=self._barman_env(), account=self.account, cwd=rundir)
        return self._save_backup(record.model_copy(update={
            "phase": backups.RUNNING, "instance": instance, "error": None,
        }))

    def delete_backup(self, namespace: str, cluster: str, name: str) -> Outcome:
        """The record goes, and a barman-cloud-backup still running for it is stopped (its partial upload
        stays in the object store, as barman-cloud leaves a failed backup: status FAILED or no backup.info)."""
        path = self._backup_path(namespace, cluster, name)
        if not path.exists():
            return unchanged(f"Backup {namespace}/{name} was gone")
        stopped = processes.stop(self._backup_daemon(path.parent, name), timeout=10, group=True)
        path.unlink()
        return done(f"Backup {namespace}/{name} deleted" + ("; its barman-cloud-backup stopped" if stopped else "")
                    + " (its files, if any, stay in the object store)")

    @staticmethod
    def _backup_daemon(workdir: Path, name: str) -> processes.Daemon:
        return processes.Daemon(workdir / f"{name}.pid", f"-n {name} ")

    def get_backup(self, namespace: str, cluster: str, name: str) -> Backup:
        path = self._backup_path(namespace, cluster, name)
        try:
            record = Backup.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LookupError(f"no backup {name} of cluster {namespace}/{cluster}") from None
        if record.done:
            return record
        if record.phase == backups.WAL_ARCHIVING_FAILING:
            spec = self.stored_spec(namespace, cluster)
            return self._begin_backup(spec, record) if spec is not None else record
        if record.phase == backups.FINALIZING:
            unreachable = self._store_unreachable(namespace, cluster)
            if unreachable:  # held back, not failed: the segment it waits for may still arrive
                return record.model_copy(update={"error": unreachable})
            return self._finish_backup(record)
        workdir = path.parent
        daemon = self._backup_daemon(workdir, name)
        processes.reap(processes.read_pid(daemon.pidfile))
        if daemon.running:
            return record.model_copy(update={"error": self._store_unreachable(namespace, cluster)})
        try:
            code = int((workdir / "run" / f"{name}.rc").read_text().strip())
        except (FileNotFoundError, ValueError):
            code = -1
        if code != 0:
            log = (workdir / f"{name}.log").read_text(errors="replace").strip().splitlines()
            errors = [line for line in log if "ERROR" in line] or log or ["barman-cloud-backup ended without a status"]
            return self._save_backup(record.model_copy(update={
                "phase": backups.FAILED, "stopped_at": utcnow(), "error": errors[-1][-400:],
            }))
        spec = self.stored_spec(namespace, cluster)
        assert spec is not None
        status = self.cluster_status(namespace, cluster)
        if status.current_primary and record.instance != status.current_primary:
            # A standby's pg_control may require WAL the primary has not archived yet (it archives whole
            # segments): switch the primary's WAL and finish once that segment is in the object store.
            with psycopg.connect(self._superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
                conn.execute("SELECT pg_logical_emit_message(false, 'pgha', 'backup end')")
                segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]  # type: ignore[index]
                conn.execute("SELECT pg_switch_wal()")
            return self._save_backup(record.model_copy(update={"phase": backups.FINALIZING, "wait_for_wal": segment}))
        return self._complete_backup(spec, record)

    def _store_unreachable(self, namespace: str, cluster: str) -> str | None:
        """Why the object store a running backup writes to does not answer, or None when it does."""
        spec = self.stored_spec(namespace, cluster)
        if spec is None:
            return None
        try:
            self.backup_container(spec).exists(**objectstore.QUICK)
        except Exception as err:  # azure-core's ServiceRequestError and friends: no answer at all
            return f"the object store does not answer ({type(err).__name__}: {said(err, 200)})"
        return None

    def _finish_backup(self, record: Backup) -> Backup:
        spec = self.stored_spec(record.namespace, record.cluster)
        assert spec is not None and record.wait_for_wal is not None
        segment = record.wait_for_wal
        prefix = segment_blob(spec.server_name, segment)
        if not self.backup_container(spec).names(prefix):
            return record
        return self._complete_backup(spec, record)

    def _complete_backup(self, spec: ClusterSpec, record: Backup) -> Backup:
        stored = backups.read_inventory(self.backup_container(spec), spec.backup.container, spec.server_name).find(
            record.name)
        if stored is None or stored.status != "DONE":
            return self._save_backup(record.model_copy(update={
                "phase": backups.FAILED, "stopped_at": utcnow(),
                "error": f"barman-cloud-backup succeeded but backup.info is {stored.status if stored else 'missing'}",
            }))
        return self._save_backup(record.model_copy(update={
            "phase": backups.COMPLETED, "backup_id": stored.backup_id, "begin_wal": stored.begin_wal,
            "end_wal": stored.end_wal, "started_at": stored.begin_time, "stopped_at": stored.end_time,
        }))

    # ---- failover drills -------------------------------------------------------------------------
    def delete_primary(self, spec: ClusterSpec, mode: str, recreate_after: float = 3.0) -> Outcome:
        """Like deleting the primary's pod: `graceful` stops Patroni (it hands over), `crash` kills Patroni
        and PostgreSQL (a lost node). The instance comes back after `recreate_after`, as a recreated pod."""
        status = self.cluster_status(spec.namespace, spec.name)
        if status.current_primary is None:
            raise RuntimeError("there is no primary to delete")
        member = next(m for m in self._members(spec.namespace, spec.name) if m.name == status.current_primary)
        if mode == "graceful":
            processes.stop(member.patroni, timeout=30)
        elif mode == "crash":
            processes.stop_all([member.patroni, member.postmaster], timeout=5, sig=signal.SIGKILL)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        processes.stop(member.postmaster, timeout=10, sig=signal.SIGQUIT)  # a leftover would block the restart
        self._start_member(member, delay=recreate_after)
        return done(f"primary {member.name} deleted ({mode}); recreated in {recreate_after:g}s", instance=member.name)

    def promote(self, spec: ClusterSpec, instance: str) -> Outcome:
        """`kubectl cnpg promote <cluster> <n>`: a switchover to `instance` through Patroni's REST API."""
        status = self.cluster_status(spec.namespace, spec.name)
        if status.current_primary == instance:
            return unchanged(f"{instance} is already the primary")
        members = self._members(spec.namespace, spec.name)
        body = {"leader": status.current_primary, "candidate": instance}
        last = ""
        for member in members:
            try:
                response = httpx.post(f"{member.api}/switchover", json=body, timeout=30)
            except httpx.HTTPError as err:
                last = str(err)
                continue
            if response.status_code == 200:
                return done(f"switchover from {status.current_primary} to {instance}: {response.text.strip()}")
            last = f"{response.status_code} {response.text.strip()}"
        raise RuntimeError(f"switchover to {instance} refused: {last}")

    # ---- alert response ----------------------------------------------------------------------------
    def ha_manager_status(self, spec: ClusterSpec) -> Outcome:
        """Patroni is the HA manager here: paused (maintenance mode) it will not fail over, as a CNPG
        operator that is down will not; a member whose Patroni is gone cannot take part either."""
        members = self._members(spec.namespace, spec.name)
        gone = [m.name for m in members if not m.patroni.running]
        config = next((c for m in members if m.patroni.running and (c := patroni.get(m, "/config"))), None)
        problems = [f"Patroni not running on {', '.join(gone)}"] if gone else []
        if config is None:
            problems.append("no Patroni member answers its REST API")
        elif config.get("pause"):
            problems.append("Patroni is paused (maintenance mode): automatic failover is off")
        if problems:
            return done("; ".join(problems), healthy=False, problems=problems, actionable=True,
                        remedy="resume Patroni (leave maintenance mode) and start every stopped Patroni")
        return done(f"Patroni runs on all {len(members)} members, not paused", healthy=True, problems=[])

    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]:
        """The newest archiver failures in the members' PostgreSQL logs (Patroni's output)."""
        found: list[str] = []
        for member in self._members(spec.namespace, spec.name):
            try:
                lines = (member.dir / "patroni.log").read_text(errors="replace").splitlines()[-2000:]
            except FileNotFoundError:
                continue
            found += [f"{member.name}: {line.strip()}" for line in lines if ARCHIVE_FAILURE.search(line)]
        return [redact(line)[:500] for line in found[-limit:]]

    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome:
        """Leave maintenance mode and start any member's missing Patroni (as restarting the operator)."""
        members = self._members(spec.namespace, spec.name)
        actions = []
        for member in members:
            if not member.patroni.running:
                self._start_member(member)
                actions.append(f"started Patroni on {member.name}")
        for member in members:
            config = patroni.get(member, "/config")
            if config is None:
                continue
            if config.get("pause"):
                response = httpx.patch(f"{member.api}/config", json={"pause": False}, timeout=5)
                if response.status_code != 200:
                    raise RuntimeError(f"Patroni refused to resume: {response.status_code} {response.text.strip()}")
                actions.append("resumed Patroni (maintenance mode off)")
            break
        else:
            if not actions:
                raise RuntimeError("no Patroni member answers its REST API and none could be started")
        if not actions:
            return unchanged("Patroni already runs everywhere and is not paused")
        return done("; ".join(actions), actions=actions)

    # ---- teardown --------------------------------------------------------------------------------
    def remove_endpoints(self, namespace: str, name: str) -> Outcome:
        return skipped("local endpoints are the members themselves; removed with the cluster")

    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome:
        path = self.cluster_dir(namespace, name) / "scheduled-backup.json"
        if not path.exists():
            return unchanged("no scheduled backup")
        path.unlink()
        return done("scheduled backup removed")

    def delete_cluster(self, namespace: str, name: str, graceful: bool = True) -> Outcome:
        state = self._state(namespace, name)
        base = self.cluster_dir(namespace, name)
        if state is None and not base.exists():
            return unchanged(f"cluster {namespace}/{name} does not exist")
        stopped = self._stop_members(self._members(namespace, name, state), graceful)
        if state is not None:
            # its backups outlive it (until delete_backups): remember where they are, to delete them by name
            spec = ClusterSpec.model_validate(state["spec"])
            retained = self._retained_path(namespace, name, spec.server_name)
            retained.parent.mkdir(parents=True, exist_ok=True)
            retained.write_text(json.dumps(state["spec"]))
            self._forget_in_dcs(state["scope"])
        shutil.rmtree(base, ignore_errors=True)
        return done(f"cluster {namespace}/{name} deleted; stopped {', '.join(stopped) or 'nothing running'}")

    def remaining_volumes(self, namespace: str, name: str) -> int:
        """Local members' data directories go with delete_cluster itself."""
        return 1 if self.cluster_dir(namespace, name).exists() else 0

    def _forget_in_dcs(self, scope: str) -> None:
        """Remove the cluster's keys from etcd, or a new cluster of that name would never bootstrap."""
        state = self.stack.state()
        if state is None or not self.stack.running().get("etcd"):
            raise RuntimeError("etcd is not running: the cluster's keys cannot be removed (run `pgha up`)")
        key = f"/pgha/{scope}/".encode()
        end = key[:-1] + bytes([key[-1] + 1])
        httpx.post(
            f"http://{state.etcd_hosts}/v3/kv/deleterange",
            json={"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(end).decode()},
            timeout=5,
        ).raise_for_status()

    def delete_app_secret(self, spec: ClusterSpec) -> Outcome:
        try:
            others = [
                s.name for s in self._specs(strict=True)
                if s.namespace == spec.namespace and s.name != spec.name
                and s.bootstrap.secret_name == spec.bootstrap.secret_name
            ]
        except RuntimeError as err:  # a cluster whose record does not read may still use this secret
            return skipped(f"secret {spec.bootstrap.secret_name} kept: {err}")
        if others:
            return skipped(f"secret {spec.bootstrap.secret_name} still used by {', '.join(others)}")
        path = self.secret_file(spec.namespace, spec.bootstrap.secret_name)
        if not path.exists():
            return unchanged(f"secret {spec.bootstrap.secret_name} does not exist")
        path.unlink()
        return done(f"secret {spec.bootstrap.secret_name} deleted")

    def remove_backup_identity(self, spec: ClusterSpec) -> Outcome:
        return skipped(f"{AZURE_ONLY}: no federated credential was made")

    def _retained_path(self, namespace: str, name: str, server_name: str) -> Path:
        return self.home / "retained" / namespace / name / f"{server_name}.json"

    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]:
        """Specs of deleted incarnations of this cluster whose backups were kept (one per server name)."""
        folder = self.home / "retained" / namespace / name
        return [ClusterSpec.model_validate(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]

    def delete_backups(self, spec: ClusterSpec) -> Outcome:
        client = objectstore.container(self.stack.require().connection_string, spec.backup.container)
        deleted = objectstore.delete_prefix(client, f"{spec.server_name}/")
        self._retained_path(spec.namespace, spec.name, spec.server_name).unlink(missing_ok=True)
        return done(f"deleted {deleted} blobs under {spec.backup.container}/{spec.server_name}/", deleted=deleted)

    # ---- the stack -------------------------------------------------------------------------------
    def stop_all(self) -> list[str]:
        """`pgha down`: every member of every cluster, then etcd and Azurite."""
        stopped = []
        for path in sorted((self.home / "clusters").glob("*/*/cluster.json")):
            namespace, name = path.parent.parent.name, path.parent.name
            stopped += self._stop_members(self._members(namespace, name))
        return stopped + self.stack.down()

    def start_all(self) -> list[str]:
        """`pgha up`: the stack, then every member whose cluster exists but is not running."""
        self.stack.up()
        started = []
        for path in sorted((self.home / "clusters").glob("*/*/cluster.json")):
            for member in self._members(path.parent.parent.name, path.parent.name):
                if not member.patroni.running:
                    self._start_member(member)
                    started.append(member.name)
        return started


ARCHIVE_FAILURE = re.compile(r"archive command (failed|was terminated)|archiv\w* .*(error|fail)", re.IGNORECASE)


def archiving_condition(archiver: Any, primary: str | None) -> st.Condition:
    """CNPG's ContinuousArchiving condition from the primary's pg_stat_archiver row."""
    if primary is None or archiver is None:
        return st.Condition(type="ContinuousArchiving", status="Unknown", reason="NoPrimary" if not primary
                            else "Unreachable")
    archived_wal, archived_at, failed_wal, failed_at = archiver
    if failed_at and (archived_at is None or failed_at > archived_at):
        return st.Condition(
            type="ContinuousArchiving", status="False", reason="ContinuousArchivingFailing",
            message=f"last failed WAL {failed_wal} at {failed_at.isoformat()}",
        )
    message = f"last archived WAL {archived_wal} at {archived_at.isoformat()}" if archived_wal else "nothing yet"
    return st.Condition(type="ContinuousArchiving", status="True", reason="ContinuousArchivingSuccess",
                        message=message)
