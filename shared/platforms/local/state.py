"""A local cluster's records and secrets under PGHA_HOME, where AKS keeps them in the Kubernetes API.

`clusters/<namespace>/<name>/` holds cluster.json (the spec and the ports chosen at creation), the internal
passwords, the scheduled backup and one directory per member; `secrets/<namespace>/<secret>` the app
secrets (0600); `retained/<namespace>/<name>/<server>.json` the specs whose backups outlive their cluster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.outcome import Outcome, done, skipped, unchanged
from shared.platform import unreadable
from shared.platforms.local import processes
from shared.platforms.local.patroni import Member
from shared.secrets import generate_password
from shared.spec import ClusterSpec


def utcnow() -> str:
    return datetime.now(UTC).isoformat()


class Records:
    def __init__(self, home: Path) -> None:
        self.home = home

    # ---- paths and cluster.json ------------------------------------------------------------------
    def cluster_dir(self, namespace: str, name: str) -> Path:
        return self.home / "clusters" / namespace / name

    def secret_file(self, namespace: str, secret_name: str) -> Path:
        return self.home / "secrets" / namespace / secret_name

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        """cluster.json: {spec, members: {name: {pgPort, restPort, exporterPort}}, scope, createdAt}, or None."""
        try:
            return json.loads((self.cluster_dir(namespace, name) / "cluster.json").read_text())
        except FileNotFoundError:
            return None

    def save(self, namespace: str, name: str, state: dict[str, Any]) -> None:
        path = self.cluster_dir(namespace, name) / "cluster.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(path)

    def members(self, namespace: str, name: str, state: dict[str, Any] | None = None) -> list[Member]:
        """The cluster's members in instance order (`<name>-1`, `-2`, …), from `state` or cluster.json."""
        state = state or self.read(namespace, name)
        if state is None:
            return []
        base = self.cluster_dir(namespace, name) / "members"
        return [
            Member(member, ports["pgPort"], ports["restPort"], base / member, ports.get("exporterPort"))
            for member, ports in sorted(state["members"].items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1]))
        ]

    def names(self) -> list[tuple[str, str]]:
        """(namespace, name) of every cluster with a record."""
        return [(path.parent.parent.name, path.parent.name)
                for path in sorted((self.home / "clusters").glob("*/*/cluster.json"))]

    def stored_spec(self, namespace: str, name: str) -> ClusterSpec | None:
        state = self.read(namespace, name)
        return ClusterSpec.model_validate(state["spec"]) if state else None

    def specs(self, strict: bool) -> Iterator[ClusterSpec]:
        """`strict`: a record that does not read is an error, for a decision it could change; otherwise it is
        reported and left out, never the end of the listing (the schedules of the others still run)."""
        for path in sorted((self.home / "clusters").glob("*/*/cluster.json")):
            try:
                yield ClusterSpec.model_validate(json.loads(path.read_text())["spec"])
            except (OSError, ValueError, KeyError, TypeError) as err:  # pydantic's ValidationError is a ValueError
                if strict:
                    raise RuntimeError(f"cluster record {path} does not read ({type(err).__name__})") from None
                unreadable(str(path), err)

    def ensure_namespace(self, spec: ClusterSpec) -> Outcome:
        path = self.home / "clusters" / spec.namespace
        if path.is_dir():
            return unchanged(f"namespace {spec.namespace} exists")
        path.mkdir(parents=True)
        os.chmod(path, 0o755)
        return done(f"namespace {spec.namespace} created")

    def remaining_volumes(self, namespace: str, name: str) -> int:
        """Local members' data directories go with delete_cluster itself."""
        return 1 if self.cluster_dir(namespace, name).exists() else 0

    # ---- secrets ---------------------------------------------------------------------------------
    def passwords(self, namespace: str, name: str, create: bool = False) -> dict[str, str]:
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

    def read_secret(self, namespace: str, secret_name: str) -> dict[str, str]:
        try:
            return json.loads(self.secret_file(namespace, secret_name).read_text())
        except FileNotFoundError:
            raise RuntimeError(f"secret {namespace}/{secret_name} does not exist") from None

    def ca_certificate(self, namespace: str, name: str) -> str:
        """The cluster's CA (PEM), as CNPG keeps it in the `<cluster>-ca` Secret."""
        return (self.cluster_dir(namespace, name) / "ca.crt").read_text()

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

    def delete_app_secret(self, spec: ClusterSpec) -> Outcome:
        try:
            others = [
                s.name for s in self.specs(strict=True)
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

    # ---- what outlives a cluster, and its schedule -----------------------------------------------
    def retained_path(self, namespace: str, name: str, server_name: str) -> Path:
        return self.home / "retained" / namespace / name / f"{server_name}.json"

    def retain(self, namespace: str, name: str, state: dict[str, Any]) -> None:
        """A deleted cluster's backups outlive it (until delete_backups): remember where they are, to delete
        them by name."""
        spec = ClusterSpec.model_validate(state["spec"])
        retained = self.retained_path(namespace, name, spec.server_name)
        retained.parent.mkdir(parents=True, exist_ok=True)
        retained.write_text(json.dumps(state["spec"]))

    def retained_specs(self, namespace: str, name: str) -> list[ClusterSpec]:
        """Specs of deleted incarnations of this cluster whose backups were kept (one per server name)."""
        folder = self.home / "retained" / namespace / name
        return [ClusterSpec.model_validate(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]

    def ensure_scheduled_backup(self, spec: ClusterSpec) -> Outcome:
        if not spec.backup.schedule:
            return skipped("no backup.schedule in spec")
        path = self.cluster_dir(spec.namespace, spec.name) / "scheduled-backup.json"
        record = {"name": f"{spec.name}-backup", "schedule": spec.backup.schedule, "backupOwnerReference": "self"}
        if path.exists() and json.loads(path.read_text()) == record:
            return unchanged(f"ScheduledBackup {record['name']} ({spec.backup.schedule}) exists")
        path.write_text(json.dumps(record))
        return done(f"ScheduledBackup {record['name']} ({spec.backup.schedule}); fired by the host's timer")

    def remove_scheduled_backups(self, namespace: str, name: str) -> Outcome:
        path = self.cluster_dir(namespace, name) / "scheduled-backup.json"
        if not path.exists():
            return unchanged("no scheduled backup")
        path.unlink()
        return done("scheduled backup removed")
