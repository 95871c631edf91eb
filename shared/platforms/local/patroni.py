"""Patroni for the local platform: a member's configuration, its REST API, and CNPG-style status from both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared import status as st
from shared.logs import redact
from shared.platforms.local import processes
from shared.spec import PRELOAD_PREFIXES, ClusterSpec

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
# CNPG loads these libraries itself when one of their parameters is set; so do we.
# One client for every loopback call to Patroni and etcd: `httpx.get` builds a client per call, and its TLS
# context alone costs ~40 ms of CPU (measured: a cluster status read fell from ~170 to ~10 ms of CPU). No
# keep-alive: a member that restarts must not leave a stale pooled connection behind.
HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)


@dataclass(frozen=True)
class Member:
    name: str
    pg_port: int
    rest_port: int
    dir: Path
    exporter_port: int | None = None  # its postgres_exporter's (monitoring.py); none in records made before

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    @property
    def patroni(self) -> processes.Daemon:
        """Its Patroni; the pid file lives in a directory of root's, out of the service user's reach."""
        return processes.Daemon(self.dir.parent.parent / "pids" / f"{self.name}.pid", str(self.dir / "patroni.yml"))

    @property
    def postmaster(self) -> processes.Daemon:
        return processes.Daemon(self.data_dir / "postmaster.pid", str(self.data_dir))

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def log(self) -> Path:
        return self.dir / "patroni.log"


def postgres_parameters(spec: ClusterSpec, archive_command: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(spec.postgresql.parameters)
    libraries = sorted({key.split(".")[0] for key in params if key.split(".")[0] in PRELOAD_PREFIXES})
    if libraries:
        params["shared_preload_libraries"] = ",".join(libraries)
    params.update({
        "archive_mode": "on",
        "archive_command": archive_command,
        "wal_level": "replica",
        "hot_standby": "on",
        "password_encryption": "scram-sha-256",
    })
    if not spec.bootstrap.data_checksums:
        params["wal_log_hints"] = "on"  # pg_rewind needs checksums or hint logging
    return params


def hba_rules(spec: ClusterSpec) -> list[str]:
    """The private socket and loopback rules pgha needs, then the spec's rules, then endpoint ranges."""
    rules = [
        "local all all trust",
        f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
        f"host all {SUPERUSER} 127.0.0.1/32 scram-sha-256",
        *spec.postgresql.pg_hba,
    ]
    if spec.endpoints.enabled:
        rules += [f"host {spec.bootstrap.database} all {cidr} scram-sha-256" for cidr in spec.endpoints.source_ranges]
    return rules


def dynamic_config(spec: ClusterSpec, archive_command: str) -> dict[str, Any]:
    """What Patroni keeps in the DCS for the whole cluster (and what a re-apply PATCHes)."""
    sync = spec.synchronous_replicas
    return {
        "ttl": 20,  # Patroni's floor; a lost leader's key expires after this
        "loop_wait": 1,  # a member's HA loop every second: roles and sync standbys follow within ~1 s
        "retry_timeout": 5,
        "maximum_lag_on_failover": 1048576,
        "primary_start_timeout": 0,  # a crashed primary fails over instead of restarting in place
        "synchronous_mode": "quorum" if sync else False,
        "synchronous_node_count": max(sync, 1),
        "postgresql": {
            "use_pg_rewind": True,
            "use_slots": spec.replication_slots.high_availability,
            "parameters": postgres_parameters(spec, archive_command),
            "pg_hba": hba_rules(spec),
        },
    }


def recovery_bootstrap(spec: ClusterSpec, restore_script: Path, restore_command: str) -> dict[str, Any]:
    """CNPG's bootstrap.recovery as a Patroni custom bootstrap: barman-cloud-restore, then WAL replay."""
    assert spec.recovery is not None
    recovery_conf: dict[str, Any] = {
        "restore_command": restore_command,
        "recovery_target_timeline": "latest",
        "recovery_target_action": "promote",
    }
    if spec.recovery.target_time is not None:
        recovery_conf["recovery_target_time"] = spec.recovery.target_time.isoformat()
    if spec.recovery.target_lsn is not None:
        recovery_conf["recovery_target_lsn"] = spec.recovery.target_lsn
    return {
        "method": "pgha_recovery",
        "pgha_recovery": {"command": str(restore_script), "no_params": False,
                          "keep_existing_recovery_conf": False, "recovery_conf": recovery_conf},
    }


def member_config(
    spec: ClusterSpec, scope: str, member: Member, etcd_hosts: str, archive_command: str,
    passwords: dict[str, str], post_bootstrap: Path | None, pg_bin: Path, recovery: dict[str, Any] | None = None,
    server_tls: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    initdb: list[Any] = [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}]
    if spec.bootstrap.data_checksums:
        initdb.append("data-checksums")
    dcs = dynamic_config(spec, archive_command)
    bootstrap: dict[str, Any] = {"dcs": dcs}
    if recovery is not None:
        bootstrap.update(recovery)
    else:
        bootstrap.update({"initdb": initdb, "post_bootstrap": str(post_bootstrap)})
    return {
        "scope": scope,
        "namespace": "/pgha/",
        "name": member.name,
        "restapi": {"listen": f"127.0.0.1:{member.rest_port}", "connect_address": f"127.0.0.1:{member.rest_port}"},
        "etcd3": {"hosts": etcd_hosts},
        "bootstrap": bootstrap,
        "postgresql": {
            "listen": f"127.0.0.1:{member.pg_port}",
            "connect_address": f"127.0.0.1:{member.pg_port}",
            "data_dir": str(member.data_dir),
            "bin_dir": str(pg_bin),
            "pgpass": str(member.dir / "pgpass"),
            # a spread checkpoint would hold a new replica's base backup for up to checkpoint_timeout
            "basebackup": [{"checkpoint": "fast"}],
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": passwords["superuser"]},
                "replication": {"username": REPLICATION_USER, "password": passwords["replication"]},
                "rewind": {"username": SUPERUSER, "password": passwords["superuser"]},
            },
            "parameters": {"unix_socket_directories": str(member.socket_dir), **(
                {"ssl": "on", "ssl_cert_file": str(server_tls[0]), "ssl_key_file": str(server_tls[1])}
                if server_tls else {})},
            "pg_hba": dcs["postgresql"]["pg_hba"],
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def get(member: Member, path: str, timeout: float = 2.0) -> Any | None:
    try:
        response = HTTP.get(f"{member.api}{path}", timeout=timeout)
    except httpx.HTTPError:
        return None
    if path == "/metrics":
        return response.text if response.status_code == 200 else None
    try:
        return response.json()
    except ValueError:
        return None


def lsn(value: int | None) -> str | None:
    return None if value is None else f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


READY_STATES = {"leader": {"running"}, "standby": {"streaming"}}


def cluster_status(
    namespace: str, name: str, expected: list[str], topology: dict[str, Any] | None,
    positions: dict[str, dict[str, Any]], sync_required: int,
    replication: dict[str, dict[str, Any]] | None = None,
) -> st.ClusterStatus:
    """Map Patroni's `/cluster` (and each member's `/patroni`) onto CNPG's ClusterStatus.

    `replication` is the primary's pg_stat_replication by application name: when a standby is in it,
    PostgreSQL's own view (streaming, quorum) wins over Patroni's, which trails it by a loop or two.
    """
    replication = replication or {}
    members = {m["name"]: m for m in (topology or {}).get("members", [])}
    instances: list[st.InstanceStatus] = []
    primary = None
    for member_name in expected:
        member = members.get(member_name)
        if member is None:
            instances.append(st.InstanceStatus(name=member_name, role="unknown", ready=False, state="absent"))
            continue
        is_primary = member.get("role") in ("leader", "primary", "standby_leader")
        role: st.Role = "primary" if is_primary else "standby"
        state = member.get("state")
        ready = state in READY_STATES["leader" if is_primary else "standby"]
        position = positions.get(member_name, {})
        xlog = position.get("xlog", {})
        location = xlog.get("location") if is_primary else xlog.get("replayed_location")
        # WAL the standby has not replayed yet (Patroni's `lag` counts from what it received or replayed,
        # whichever is further; `replay_lag`, what a promotion must still apply and a reader cannot see)
        lags = [member[k] for k in ("lag", "replay_lag") if isinstance(member.get(k), int)]
        lag = max(lags) if lags else None
        sync_state = {"sync_standby": "sync", "quorum_standby": "quorum"}.get(member.get("role", ""))
        seen = replication.get(member_name)
        if seen is not None and not is_primary:
            ready = seen["state"] == "streaming"
            state = seen["state"]
            sync_state = seen["sync_state"]
            location = seen.get("replay_lsn", location)
        if is_primary and ready:
            primary = member_name
        instances.append(st.InstanceStatus(
            name=member_name, role=role, ready=ready, lsn=location if isinstance(location, str) else lsn(location),
            timeline=member.get("timeline"),
            lag_bytes=lag, sync_state=sync_state or ("primary" if is_primary else "async"), state=state,
            pending_restart=bool(position.get("pending_restart") or member.get("pending_restart")),
        ))
    ready_count = sum(1 for i in instances if i.ready)
    standbys = [i for i in instances if i.role == "standby"]
    in_sync = sum(1 for i in standbys if i.in_sync and i.ready)
    # quorum replication names every standby (`ANY n (all)`, as CNPG's `method: any`): until it does, wait
    quorum_complete = in_sync >= sync_required and (sync_required == 0 or in_sync == len(standbys))
    switchover = (topology or {}).get("scheduled_switchover")
    if primary is None:
        # members that never had a timeline have never had a primary: the cluster is being bootstrapped
        bootstrapped = any(m.get("timeline") for m in members.values())
        phase = st.FAILING_OVER if bootstrapped else st.SETTING_UP_PRIMARY
    elif switchover:
        phase = st.SWITCHOVER
    elif ready_count < len(expected) or not quorum_complete:
        creating = any(i.state in ("creating replica", "starting", "startup", "catchup") for i in instances)
        phase = st.CREATING_REPLICA if creating else st.WAITING_FOR_INSTANCES
    else:
        phase = st.HEALTHY
    return st.ClusterStatus(
        name=name, namespace=namespace, phase=phase, instances=len(expected), ready_instances=ready_count,
        current_primary=primary, target_primary=primary, instances_status=instances,
    )


# Patroni's PostgresqlState values (patroni/postgresql/misc.py, 4.x) after which it does not go on by itself:
# a failed initdb or custom bootstrap ends in PatroniFatalException (ha.py, cancel_initialization; Patroni then
# exits). `start failed` and `restart failed` are not among them: Patroni's next HA loop calls recover() and
# starts PostgreSQL again (ha.py, _run_cycle), so a wait sees them as trouble, not as the end.
FAILED_STATES = ("initdb failed", "custom bootstrap failed")
# what a member's log says when it cannot go on: PostgreSQL's FATAL and PANIC lines, the postmaster's word on
# a startup process that exited (recovery gave up), Patroni's own errors
TELLING = re.compile(
    r"(?:FATAL|PANIC):\s+.*|startup process \(PID \d+\) (?:exited|was terminated).*|Failed to bootstrap cluster.*"
    r"|(?:ERROR|CRITICAL): .*"
)
# FATAL lines every healthy cluster writes: a server starting or stopping, sessions a switchover or a shutdown
# ended, a standby that lost or has not yet found its primary; a rejoin. They never end a wait.
ROUTINE = re.compile(
    r"the database system is (?:starting up|shutting down|not yet accepting connections|in recovery mode)"
    r"|terminating connection due to administrator command|terminating walreceiver"
    r"|could not (?:receive data from WAL stream|connect to the primary server|send end-of-streaming)"
    r"|the database system is not accepting connections|canceling statement due to conflict with recovery"
    r"|Error when fetching backup|Error communicating with|failed to update leader lock|Request to server"
    r"|requested timeline \d+ is not a child|password authentication failed|no pg_hba.conf entry",
    re.IGNORECASE,
)


START_MARK = "pgha: starting Patroni"  # written to the member's log before each start (members.Members.start)


def failure_reason(log: Path, lines: int = 300) -> str:
    """The last few telling lines of a member's log since its last start, redacted, oldest first; empty when
    it says nothing (an earlier incident is not today's reason)."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    starts = [n for n, line in enumerate(tail) if START_MARK in line]
    tail = tail[starts[-1] + 1:] if starts else tail
    found: list[str] = []
    for line in tail:
        match = TELLING.search(line)
        if match and not ROUTINE.search(line):
            text = redact(match.group(0).strip())[:300]
            if text not in found:
                found.append(text)
    return "; ".join(found[-3:])


def member_failure(member: Member, running: bool, state: str | None, paused: bool) -> str | None:
    """Why this member cannot become ready again by itself, or None: Patroni gone (nothing restarts it here,
    as a pod would be), a failed bootstrap or start, or PostgreSQL down under a paused Patroni."""
    if not running:
        why = "Patroni has exited and nothing restarts it"
    elif state in FAILED_STATES:
        why = f"Patroni reports {state!r}"
    elif paused and state in ("stopped", "crashed"):
        why = f"PostgreSQL is {state} and Patroni is paused (maintenance mode), so nothing starts it"
    else:
        return None
    said = failure_reason(member.log)
    return f"instance {member.name}: {why}" + (f": {said}" if said else "")
