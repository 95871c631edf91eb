"""CNPG's on-demand Backup on the local platform: a record per backup (its phases, as CNPG's), and
barman-cloud-backup of a streaming standby running in the background."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

import psycopg

from shared import backups
from shared.backups import Backup
from shared.logs import said
from shared.objectstore import QUICK
from shared.outcome import Outcome, done, unchanged
from shared.platforms.local import patroni, processes
from shared.platforms.local.archive import Archive
from shared.platforms.local.members import Members
from shared.platforms.local.stack import TOOLS_BIN
from shared.platforms.local.state import Records, utcnow
from shared.platforms.local.status import Status
from shared.spec import ClusterSpec
from shared.walarchive import segment_blob


class Backups:
    def __init__(self, records: Records, archive: Archive, members: Members, status: Status,
                 account: pwd.struct_passwd | None) -> None:
        self.records = records
        self.archive = archive
        self.members = members
        self.status = status
        self.account = account

    def _path(self, namespace: str, cluster: str, name: str) -> Path:
        return self.records.cluster_dir(namespace, cluster) / "backups" / f"{name}.json"

    def _save(self, record: Backup) -> Backup:
        """Replaced whole: the members' exporters read these records (cnpg_collector), never a half-written one."""
        path = self._path(record.namespace, record.cluster, record.name)
        processes.write_private(path, json.dumps(record.dump(), indent=2), mode=0o644)
        return record

    @staticmethod
    def _daemon(workdir: Path, name: str) -> processes.Daemon:
        return processes.Daemon(workdir / f"{name}.pid", f"-n {name} ")

    def start(self, spec: ClusterSpec, name: str) -> Backup:
        """CNPG's on-demand Backup, target prefer-standby: barman-cloud-backup of a streaming standby."""
        path = self._path(spec.namespace, spec.name, name)
        if path.exists():
            return self.get(spec.namespace, spec.name, name)
        return self._begin(spec, Backup(name=name, cluster=spec.name, namespace=spec.namespace,
                                        phase=backups.PENDING, target="prefer-standby", started_at=utcnow()))

    def _begin(self, spec: ClusterSpec, record: Backup) -> Backup:
        """Refused while WAL archiving fails (walArchivingFailing, asked again at each look, as CNPG's instance
        manager retries), else barman-cloud-backup started in the background."""
        status = self.status.cluster_status(spec.namespace, spec.name)
        archiving = status.condition("ContinuousArchiving")
        if archiving is None or archiving.status != "True":
            reason = archiving.message if archiving else "no primary"
            return self._save(record.model_copy(update={
                "phase": backups.WAL_ARCHIVING_FAILING,
                "error": f"WAL archiving is not working ({reason}); CNPG refuses a backup then",
            }))
        name = record.name
        standbys = [i.name for i in status.instances_status if i.role == "standby" and i.ready]
        instance = standbys[0] if standbys else status.current_primary
        member = next(m for m in self.records.members(spec.namespace, spec.name) if m.name == instance)
        workdir = self._path(spec.namespace, spec.name, name).parent
        rundir = workdir / "run"  # the only place the backup process itself writes (its exit code)
        processes.chown_to(rundir, self.account, mode=0o755)
        rc_file = rundir / f"{name}.rc"
        command = (
            f"{TOOLS_BIN}/barman-cloud-backup --cloud-provider azure-blob-storage --immediate-checkpoint "
            f"-n {name} -h {member.socket_dir} -p {member.pg_port} -U {patroni.SUPERUSER} "
            f"{self.archive.destination(spec)} {spec.server_name}; echo $? > {rc_file}"
        )
        processes.spawn(["/bin/sh", "-c", command], workdir / f"{name}.log", self._daemon(workdir, name),
                        env=self.archive.env(), account=self.account, cwd=rundir)
        return self._save(record.model_copy(update={
            "phase": backups.RUNNING, "instance": instance, "error": None,
        }))

    def delete(self, namespace: str, cluster: str, name: str) -> Outcome:
        """The record goes, and a barman-cloud-backup still running for it is stopped (its partial upload
        stays in the object store, as barman-cloud leaves a failed backup: status FAILED or no backup.info)."""
        path = self._path(namespace, cluster, name)
        if not path.exists():
            return unchanged(f"Backup {namespace}/{name} was gone")
        stopped = processes.stop(self._daemon(path.parent, name), timeout=10, group=True)
        path.unlink()
        return done(f"Backup {namespace}/{name} deleted" + ("; its barman-cloud-backup stopped" if stopped else "")
                    + " (its files, if any, stay in the object store)")

    def get(self, namespace: str, cluster: str, name: str) -> Backup:
        path = self._path(namespace, cluster, name)
        try:
            record = Backup.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LookupError(f"no backup {name} of cluster {namespace}/{cluster}") from None
        if record.done:
            return record
        if record.phase == backups.WAL_ARCHIVING_FAILING:
            spec = self.records.stored_spec(namespace, cluster)
            return self._begin(spec, record) if spec is not None else record
        if record.phase == backups.FINALIZING:
            unreachable = self._store_unreachable(namespace, cluster)
            if unreachable:  # held back, not failed: the segment it waits for may still arrive
                return record.model_copy(update={"error": unreachable})
            return self._finish(record)
        workdir = path.parent
        daemon = self._daemon(workdir, name)
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
            return self._save(record.model_copy(update={
                "phase": backups.FAILED, "stopped_at": utcnow(), "error": errors[-1][-400:],
            }))
        spec = self.records.stored_spec(namespace, cluster)
        assert spec is not None
        status = self.status.cluster_status(namespace, cluster)
        if status.current_primary and record.instance != status.current_primary:
            # A standby's pg_control may require WAL the primary has not archived yet (it archives whole
            # segments): switch the primary's WAL and finish once that segment is in the object store.
            with psycopg.connect(self.members.superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
                conn.execute("SELECT pg_logical_emit_message(false, 'pgha', 'backup end')")
                segment = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]  # type: ignore[index]
                conn.execute("SELECT pg_switch_wal()")
            return self._save(record.model_copy(update={"phase": backups.FINALIZING, "wait_for_wal": segment}))
        return self._complete(spec, record)

    def _store_unreachable(self, namespace: str, cluster: str) -> str | None:
        """Why the object store a running backup writes to does not answer, or None when it does."""
        spec = self.records.stored_spec(namespace, cluster)
        if spec is None:
            return None
        try:
            self.archive.container(spec).exists(**QUICK)
        except Exception as err:  # azure-core's ServiceRequestError and friends: no answer at all
            return f"the object store does not answer ({type(err).__name__}: {said(err, 200)})"
        return None

    def _finish(self, record: Backup) -> Backup:
        spec = self.records.stored_spec(record.namespace, record.cluster)
        assert spec is not None and record.wait_for_wal is not None
        segment = record.wait_for_wal
        prefix = segment_blob(spec.server_name, segment)
        if not self.archive.container(spec).names(prefix):
            return record
        return self._complete(spec, record)

    def _complete(self, spec: ClusterSpec, record: Backup) -> Backup:
        stored = backups.read_inventory(self.archive.container(spec), spec.backup.container, spec.server_name).find(
            record.name)
        if stored is None or stored.status != "DONE":
            return self._save(record.model_copy(update={
                "phase": backups.FAILED, "stopped_at": utcnow(),
                "error": f"barman-cloud-backup succeeded but backup.info is {stored.status if stored else 'missing'}",
            }))
        return self._save(record.model_copy(update={
            "phase": backups.COMPLETED, "backup_id": stored.backup_id, "begin_wal": stored.begin_wal,
            "end_wal": stored.end_wal, "started_at": stored.begin_time, "stopped_at": stored.end_time,
        }))
