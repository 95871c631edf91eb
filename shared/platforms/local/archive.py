"""barman-cloud into Azurite: where a cluster archives (its container and server name), the environment the
barman-cloud commands run in, the commands Patroni and PostgreSQL run, and the archive's own steps."""

from __future__ import annotations

import fcntl
import os
import pwd
import subprocess
import time
from pathlib import Path
from typing import Any

from shared import backups, objectstore
from shared.objectstore import Container
from shared.outcome import Outcome, done, unchanged
from shared.platform import PreflightFailed
from shared.platforms.local import processes
from shared.platforms.local.stack import PG_BIN, TOOLS_BIN, Stack
from shared.platforms.local.state import Records
from shared.platforms.local.walservice import client as wal_client
from shared.spec import ClusterSpec
from shared.walarchive import segment_blob

ARCHIVE_WAIT_SECONDS = 60
WAL_SERVICE_SOURCE = Path(__file__).parent / "walservice"
WAL_SERVICE_START_SECONDS = 15
PREFLIGHT_SECONDS = 120  # barman-cloud-check-wal-archive, through the service or not
UNIX_PATH_MAX = 107  # sun_path's 108 bytes, less the terminating NUL


class Archive:
    def __init__(self, stack: Stack, records: Records, account: pwd.struct_passwd | None) -> None:
        self.stack = stack
        self.records = records
        self.account = account

    def destination(self, spec: ClusterSpec) -> str:
        return f"{self.stack.require().blob_endpoint}/{spec.backup.container}"

    def source_destination(self, spec: ClusterSpec) -> str:
        assert spec.recovery is not None
        return f"{self.stack.require().blob_endpoint}/{spec.recovery.container}"

    def env(self) -> dict[str, str]:
        """What barman-cloud (and Patroni, which runs it) needs: the tools, Azurite's connection string."""
        return {
            "PATH": f"{TOOLS_BIN}:{PG_BIN}:/usr/local/bin:/usr/bin:/bin",
            "AZURE_STORAGE_CONNECTION_STRING": self.stack.require().connection_string,
            "HOME": self.account.pw_dir if self.account else os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
        }

    @property
    def service_dir(self) -> Path:
        return self.stack.dir / "wal"

    @property
    def service_socket(self) -> Path:
        return self.service_dir / "wal.sock"

    def serve(self) -> bool:
        """Start the WAL service unless it runs (see walservice/server.py); False when it cannot, and then the
        members run barman-cloud's commands themselves, as they would without it."""
        daemon = self.stack.wal_daemon()
        if daemon.running:
            return True
        if len(str(self.service_socket).encode()) > UNIX_PATH_MAX:
            return False
        self.stack.dir.mkdir(parents=True, exist_ok=True)
        with open(self.stack.dir / "wal.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting it at once would orphan one service
            if daemon.running:
                return True
            processes.chown_to(self.service_dir, self.account)
            for script in ("server.py", "client.py"):
                processes.write_private(self.service_dir / script, (WAL_SERVICE_SOURCE / script).read_text(),
                                        self.account)
            self.service_socket.unlink(missing_ok=True)
            pid = processes.spawn([f"{TOOLS_BIN}/python", "-I", str(self.service_dir / "server.py"),
                                   str(self.service_socket)],
                                  self.stack.dir / "wal.log", daemon, env=self.env(), account=self.account)
            deadline = time.monotonic() + WAL_SERVICE_START_SECONDS
            while not self.service_socket.exists():
                if not processes.alive(pid) or time.monotonic() > deadline:
                    processes.stop(daemon)
                    return False
                time.sleep(0.05)
        return True

    def _wal_command(self, tool: str) -> str:
        """Through the WAL service's client when the service is set up, else the barman-cloud command itself."""
        client = self.service_dir / "client.py"
        if client.exists():
            return f"{TOOLS_BIN}/python -I -S {client} {self.service_socket} {tool}"
        return f"{TOOLS_BIN}/barman-cloud-{tool}"

    def archive_command(self, spec: ClusterSpec) -> str:
        return (
            f"{self._wal_command('wal-archive')} --cloud-provider azure-blob-storage "
            f"{self.destination(spec)} {spec.server_name} %p"
        )

    def restore_command(self, spec: ClusterSpec) -> str:
        assert spec.recovery is not None
        return (
            f"{self._wal_command('wal-restore')} --cloud-provider azure-blob-storage "
            f"{self.source_destination(spec)} {spec.recovery.server_name} %f %p"
        )

    def check_wal_archive(self, spec: ClusterSpec) -> tuple[int, str]:
        """barman-cloud-check-wal-archive's exit code and output, through the WAL service when it runs."""
        args = ["--cloud-provider", "azure-blob-storage", self.destination(spec), spec.server_name]
        if self.serve() and (answered := wal_client.request(str(self.service_socket), "check-wal-archive", args,
                                                            timeout=PREFLIGHT_SECONDS)):
            return answered
        result = subprocess.run([f"{TOOLS_BIN}/barman-cloud-check-wal-archive", *args],
                                env=self.env(), capture_output=True, text=True, timeout=PREFLIGHT_SECONDS)
        return result.returncode, result.stderr + result.stdout

    def write_restore_script(self, spec: ClusterSpec) -> Path:
        """Patroni calls it with --scope= and --datadir=; barman-cloud-restore picks the backup for the target."""
        assert spec.recovery is not None
        target = ""
        if spec.recovery.target_time is not None:
            target = f"--target-time '{spec.recovery.target_time.isoformat()}' "
        elif spec.recovery.target_lsn is not None:
            target = f"--target-lsn '{spec.recovery.target_lsn}' "
        script = self.records.cluster_dir(spec.namespace, spec.name) / "restore.sh"
        processes.write_private(script, (
            "#!/bin/sh\n"
            'for arg; do case "$arg" in --datadir=*) datadir="${arg#--datadir=}";; esac; done\n'
            f"exec {TOOLS_BIN}/barman-cloud-restore --cloud-provider azure-blob-storage {target}"
            f'{self.source_destination(spec)} {spec.recovery.server_name} auto "$datadir"\n'
        ), self.account, mode=0o700)
        return script

    def container(self, spec: ClusterSpec, source: bool = False) -> Container:
        """The object store of the cluster (or, for a recovery cluster with `source`, of its source)."""
        container = spec.recovery.container if source and spec.recovery else spec.backup.container
        return Container(objectstore.container(self.stack.require().connection_string, container))

    def preflight(self, spec: ClusterSpec) -> Outcome:
        """Create the container, then refuse a server name that already has an archive (as CNPG does)."""
        state = self.stack.require()
        objectstore.container(state.connection_string, spec.backup.container, create=True)
        if self.records.read(spec.namespace, spec.name) is not None:
            return unchanged("cluster already exists and archives under this server name")
        code, output = self.check_wal_archive(spec)
        if code != 0:
            if "Expected empty archive" in output:
                raise PreflightFailed(backups.archive_in_use(spec))
            raise RuntimeError(f"barman-cloud-check-wal-archive failed: {output.strip()[-500:]}")
        return done(f"container {spec.backup.container} ready; archive for {spec.server_name!r} is empty")

    def archived(self, spec: ClusterSpec, segment: str, what: str, **data: Any) -> Outcome:
        """`segment` found in the object store within ARCHIVE_WAIT_SECONDS, or an error naming `what` wrote it."""
        client = objectstore.container(self.stack.require().connection_string, spec.backup.container)
        prefix = segment_blob(spec.server_name, segment)
        if not objectstore.wait_for(client, prefix, ARCHIVE_WAIT_SECONDS, every=0.1):
            raise RuntimeError(f"WAL segment {segment} ({what}) not found in {spec.backup.container}/ within "
                               f"{ARCHIVE_WAIT_SECONDS}s")
        return done(f"{what}; WAL segment {segment} archived to {spec.backup.container}/{prefix}",
                    segment=segment, **data)

    def delete_backups(self, spec: ClusterSpec) -> Outcome:
        client = objectstore.container(self.stack.require().connection_string, spec.backup.container)
        deleted = objectstore.delete_prefix(client, f"{spec.server_name}/")
        self.records.retained_path(spec.namespace, spec.name, spec.server_name).unlink(missing_ok=True)
        return done(f"deleted {deleted} blobs under {spec.backup.container}/{spec.server_name}/", deleted=deleted)
