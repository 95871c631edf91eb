"""SQL on a local cluster: the app's sessions through the rw / ro endpoints (libpq multi-host strings, TLS
verified against the cluster's CA), and what pgha itself does on the primary as the superuser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from shared import sql
from shared.connection import Connection, Endpoint
from shared.outcome import Outcome, done, skipped
from shared.platform import Role
from shared.platforms.local import patroni
from shared.platforms.local.archive import Archive
from shared.platforms.local.members import Members
from shared.platforms.local.state import Records
from shared.platforms.local.status import Status
from shared.secrets import scram_verifier
from shared.spec import ClusterSpec
from shared.walarchive import MARKER_COMMIT, MARKER_SETTINGS, SWITCH_WAL


class Sessions:
    def __init__(self, records: Records, members: Members, status: Status, archive: Archive) -> None:
        self.records = records
        self.members = members
        self.status = status
        self.archive = archive

    @contextmanager
    def connect(self, namespace: str, name: str, role: Role, database: str | None = None) -> Iterator[sql.Sql]:
        spec = self.records.stored_spec(namespace, name)
        if spec is None:
            raise RuntimeError(f"cluster {namespace}/{name} does not exist")
        secret = self.records.read_secret(namespace, spec.bootstrap.secret_name)
        with self.session(spec, role, secret["password"], database) as session:
            yield session

    @contextmanager
    def session(self, spec: ClusterSpec, role: Role, password: str, database: str | None = None) -> Iterator[sql.Sql]:
        """The owner's session through the rw/ro endpoint with this password, the server checked against the
        cluster's CA."""
        with sql.connect(self.endpoint(spec, role), password=password, dbname=database or spec.bootstrap.database,
                         connect_timeout=5, sslmode="verify-ca",
                         sslrootcert=str(self.records.cluster_dir(spec.namespace, spec.name) / "ca.crt")) as session:
            yield session

    def endpoint(self, spec: ClusterSpec, role: Role) -> str:
        """The rw / ro service as a libpq multi-host string (no password: that stays in the secret)."""
        members = self.records.members(spec.namespace, spec.name)
        hosts = ",".join("127.0.0.1" for _ in members)
        ports = ",".join(str(m.pg_port) for m in members)
        attrs = "read-write" if role == "rw" else "standby"
        return (
            f"host={hosts} port={ports} dbname={spec.bootstrap.database} user={spec.bootstrap.owner} "
            f"target_session_attrs={attrs}"
        )

    def connection(self, spec: ClusterSpec) -> Connection:
        """Both roles' libpq strings: every member on loopback, the role picked by target_session_attrs."""
        ca = self.records.cluster_dir(spec.namespace, spec.name) / "ca.crt"
        members = self.records.members(spec.namespace, spec.name)
        address = ",".join(f"127.0.0.1:{m.pg_port}" for m in members)
        return Connection(
            database=spec.bootstrap.database, user=spec.bootstrap.owner, secret_name=spec.bootstrap.secret_name,
            **{role: Endpoint(address=address, libpq=f"{self.endpoint(spec, role)} sslmode=verify-ca "
                                                     f"sslrootcert={ca}") for role in ("rw", "ro")},
            note="the password is the secret's `password` (pgha never answers it)")

    def expose_endpoints(self, spec: ClusterSpec) -> Outcome:
        if not spec.endpoints.enabled:
            return skipped("endpoints not enabled in spec")
        rules = [r for r in patroni.hba_rules(spec) if any(c in r for c in spec.endpoints.source_ranges)]
        return done(
            f"rw/ro endpoints limited to {', '.join(spec.endpoints.source_ranges) or 'no range'} by pg_hba",
            rw=self.endpoint(spec, "rw"), ro=self.endpoint(spec, "ro"), pgHba=rules,
        )

    def apply_owner_secret(self, spec: ClusterSpec) -> Outcome:
        """CNPG's bootstrap.recovery.secret: the recovered owner's password set from the restore's own
        secret, as a SCRAM verifier (the password never reaches the server)."""
        if spec.recovery is None or not spec.recovery.owner_secret:
            return skipped("the restore shares its source's app secret")
        status = self.status.cluster_status(spec.namespace, spec.name)
        if status.current_primary is None:
            raise RuntimeError("no primary to set the owner's password on")
        secret = self.records.read_secret(spec.namespace, spec.recovery.owner_secret)
        with psycopg.connect(self.members.superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
            conn.execute(f'ALTER ROLE "{spec.bootstrap.owner}" PASSWORD \'{scram_verifier(secret["password"])}\'')
        return done(f"{spec.bootstrap.owner}'s password set from secret {spec.recovery.owner_secret}")

    def switch_wal_and_find_segment(self, spec: ClusterSpec) -> Outcome:
        """A marker commit on the primary, a WAL switch, and that segment found in the object store: the proof
        archiving works, and a commit stamped now in the archive (a time-targeted recovery ends only at one)."""
        status = self.status.cluster_status(spec.namespace, spec.name)
        if not status.current_primary:
            raise RuntimeError("no primary to switch WAL on")
        with psycopg.connect(self.members.superuser_dsn(spec, status.current_primary), autocommit=True) as conn:
            with conn.transaction():
                for setting in MARKER_SETTINGS:
                    conn.execute(setting)  # type: ignore[arg-type]
                marker = conn.execute(MARKER_COMMIT).fetchone()
            switched = conn.execute(SWITCH_WAL).fetchone()
        assert marker is not None and switched is not None
        return self.archive.archived(spec, switched[0], f"marker commit xid {marker[0]} at {marker[1].isoformat()}",
                                     markerXid=int(marker[0]), markerAt=marker[1].isoformat(), switchedAt=switched[1])
