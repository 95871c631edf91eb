"""Failover drills: the pre-flight, deleting the primary, promoting back, and the write probe that
measures what clients saw (RTO) and what was lost (RPO)."""

from __future__ import annotations

import time
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of
from shared.outcome import done
from shared.platform import PreflightFailed
from shared.settings import Settings
from shared.sql import Sql, SqlError

bp = df.Blueprint()

PROBE = "pgha_drill_probe"
CONTROL = "pgha_drill_control"


@bp.activity_trigger(input_name="payload")
def drill_preflight(payload: dict[str, Any]) -> dict[str, Any]:
    """Refuse, touching nothing, unless the cluster opted in, is healthy, and has an in-sync standby."""
    spec = spec_of(payload)
    status = platform().cluster_status(spec.namespace, spec.name)
    limit = Settings.from_env().drill_max_lag_bytes
    problems = []
    if not spec.drills.enabled:
        problems.append("the cluster has not opted in to drills (drills.enabled is false)")
    if status.phase != "Cluster in healthy state":
        problems.append(f"phase is {status.phase!r}" + (f" ({status.phase_reason})" if status.phase_reason else ""))
    if status.ready_instances != status.instances:
        down = [i.name for i in status.instances_status if not i.ready]
        problems.append(f"{status.ready_instances}/{status.instances} instances ready ({', '.join(down)} not)")
    in_sync = [i for i in status.instances_status if i.ready and i.sync_state in ("sync", "quorum")]
    if not in_sync:
        problems.append("no in-sync standby")
    lagging = [f"{i.name} {i.lag_bytes} bytes" for i in in_sync if (i.lag_bytes or 0) > limit]
    if lagging:
        problems.append(f"replication lag over {limit} bytes: {', '.join(lagging)}")
    if problems:
        raise PreflightFailed("drill refused: " + "; ".join(problems))
    roles = {i.name: i.role for i in status.instances_status}
    return done(f"healthy, primary {status.current_primary}, in-sync standbys "
                f"{', '.join(i.name for i in in_sync)}", primary=status.current_primary, roles=roles).to_dict()


@bp.activity_trigger(input_name="payload")
def delete_primary(payload: dict[str, Any]) -> dict[str, Any]:
    """A pod deleted with a grace period comes back in seconds; a lost node's replacement takes longer
    than the leader key's TTL, so the HA manager has to fail over without the old primary's help."""
    recreate_after = 3.0 if payload["mode"] == "graceful" else 25.0
    return platform().delete_primary(spec_of(payload), payload["mode"], recreate_after).to_dict()


@bp.activity_trigger(input_name="payload")
def promote_instance(payload: dict[str, Any]) -> dict[str, Any]:
    return platform().promote(spec_of(payload), payload["instance"]).to_dict()


@bp.activity_trigger(input_name="payload")
def verify_writes(payload: dict[str, Any]) -> dict[str, Any]:
    """A committed write through the rw endpoint, and which instance took it."""
    spec = spec_of(payload)
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        create_probe_tables(conn)
        conn.execute(f"INSERT INTO {PROBE} VALUES (%s, -1, now()) ON CONFLICT (operation, id) DO UPDATE "
                     "SET at = now()", (payload["operationId"],))
        port = conn.port
        conn.commit()
    return done(f"write committed on the instance at port {port}").to_dict()


def create_probe_tables(conn: Sql) -> None:
    """The probe's rows, and the control table that tells a running probe to stop."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {PROBE} (operation text, id bigint, at timestamptz, "
                 "PRIMARY KEY (operation, id))")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {CONTROL} (operation text PRIMARY KEY)")


def _now() -> str:
    return datetime.now(UTC).isoformat()


@bp.activity_trigger(input_name="payload")
def write_probe(payload: dict[str, Any]) -> dict[str, Any]:
    """Numbered rows, each committed (synchronous_commit on) through the rw endpoint, until told to stop
    or `maxSeconds` passes; returns the acknowledged ids and the windows when writes failed."""
    spec = spec_of(payload)
    operation, deadline = payload["operationId"], time.monotonic() + payload["maxSeconds"]
    acknowledged: list[int] = []
    windows: list[list[str]] = []
    failing_since: str | None = None
    next_id, last_control = 1, 0.0
    session = ExitStack()
    conn: Sql | None = None
    try:
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = session.enter_context(platform().connect(spec.namespace, spec.name, "rw"))
                    conn.autocommit = True
                    conn.execute("SET synchronous_commit = on")
                if time.monotonic() - last_control > 0.5:
                    last_control = time.monotonic()
                    if conn.execute(f"SELECT 1 FROM {CONTROL} WHERE operation = %s", (operation,)).fetchone():
                        break
                conn.execute(f"INSERT INTO {PROBE} VALUES (%s, %s, now())", (operation, next_id))
                acknowledged.append(next_id)
                if failing_since is not None:
                    windows.append([failing_since, _now()])
                    failing_since = None
            except (SqlError, RuntimeError):
                failing_since = failing_since or _now()
                with suppress(SqlError):
                    session.close()
                session, conn = ExitStack(), None
                time.sleep(0.05)
            next_id += 1
            time.sleep(0.02)
    finally:
        session.close()
    if failing_since is not None:
        windows.append([failing_since, _now()])
    return {"acknowledged": acknowledged, "attempted": next_id - 1, "windows": windows}


@bp.activity_trigger(input_name="payload")
def prepare_probe(payload: dict[str, Any]) -> dict[str, Any]:
    spec = spec_of(payload)
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        create_probe_tables(conn)
        conn.commit()
    return done(f"probe tables {PROBE} and {CONTROL} ready").to_dict()


@bp.activity_trigger(input_name="payload")
def stop_probe(payload: dict[str, Any]) -> dict[str, Any]:
    spec = spec_of(payload)
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        conn.execute(f"INSERT INTO {CONTROL} VALUES (%s) ON CONFLICT DO NOTHING", (payload["operationId"],))
        conn.commit()
    return done("probe told to stop").to_dict()


@bp.activity_trigger(input_name="payload")
def count_lost_writes(payload: dict[str, Any]) -> dict[str, Any]:
    """RPO: acknowledged ids that are not in the database now."""
    spec = spec_of(payload)
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        present = {row[0] for row in conn.execute(
            f"SELECT id FROM {PROBE} WHERE operation = %s AND id > 0", (payload["operationId"],))}
    acknowledged = payload["acknowledged"]
    lost = sorted(set(acknowledged) - present)
    return done(f"{len(acknowledged)} acknowledged writes, {len(lost)} lost", lost=len(lost),
                lostIds=lost[:20], acknowledged=len(acknowledged)).to_dict()


@bp.activity_trigger(input_name="payload")
def drop_probe(payload: dict[str, Any]) -> dict[str, Any]:
    spec = spec_of(payload)
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PROBE}")
        conn.execute(f"DROP TABLE IF EXISTS {CONTROL}")
        conn.commit()
    return done(f"probe tables {PROBE} and {CONTROL} dropped").to_dict()
