"""barman-cloud into Azurite: where a cluster archives (its container and server name), the environment the
barman-cloud commands run in, the commands Patroni and PostgreSQL run, and the archive's own steps."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

from shared import backups, objectstore
from shared.objectstore import Container
from shared.outcome import Outcome, done, unchanged
from shared.platform import PreflightFailed
from shared.platforms.local import processes
from shared.platforms.local.stack import PG_BIN, TOOLS_BIN, Stack
from shared.platforms.local.state import Records
from shared.spec import ClusterSpec
from shared.walarchive import segment_blob

ARCHIVE_WAIT_SECONDS = 60


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

    def archive_command(self, spec: ClusterSpec) -> str:
        return (
            f"{TOOLS_BIN}/barman-cloud-wal-archive --cloud-provider azure-blob-storage "
            f"{self.destination(spec)} {spec.server_name} %p"
        )

    def restore_command(self, spec: ClusterSpec) -> str:
        assert spec.recovery is not None
        return (
            f"{TOOLS_BIN}/barman-cloud-wal-restore --cloud-provider azure-blob-storage "
            f"{self.source_destination(spec)} {spec.recovery.server_name} %f %p"
        )

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
        result = subprocess.run(
            [f"{TOOLS_BIN}/barman-cloud-check-wal-archive", "--cloud-provider", "azure-blob-storage",
             self.destination(spec), spec.server_name],
            env=self.env(), capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            if "Expected empty archive" in result.stderr + result.stdout:
                raise PreflightFailed(backups.archive_in_use(spec))
            raise RuntimeError(f"barman-cloud-check-wal-archive failed: {result.stderr.strip()[-500:]}")
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
