"""Failover drills and planned switchovers: their pre-flights, deleting the primary, promoting a standby, and
the write probe that measures what clients saw (RTO) and what was lost (RPO)."""

from __future__ import annotations

import time
from contextlib import ExitStack, suppress
from datetime import UTC, datetime

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome, done
from shared.payloads import DeletePrimary, LostWrites, OnRun, ProbeRecord, ProbeSecond, Promote, Switchover, WriteProbe
from shared.platform import PreflightFailed
from shared.settings import Settings
from shared.spec import ClusterSpec
from shared.sql import Sql, SqlError
from shared.status import HEALTHY, WAITING_FOR_USER, ClusterStatus, InstanceStatus, serial_of
from shared.walarchive import parse_lsn

bp = df.Blueprint()

PROBE = "pgha_drill_probe"
CONTROL = "pgha_drill_control"


def readiness_problems(status: ClusterStatus, max_lag_bytes: int,
                       phases: tuple[str, ...] = (HEALTHY,)) -> tuple[list[str], list[InstanceStatus]]:
    """What keeps a cluster from losing its primary safely (healthy, every instance ready, an in-sync standby
    within the lag limit), and its in-sync standbys: a drill and a switchover ask the same."""
    problems = []
    if status.phase not in phases:
        problems.append(f"phase is {status.phase!r}" + (f" ({status.phase_reason})" if status.phase_reason else ""))
    if status.ready_instances != status.instances:
        down = [i.name for i in status.instances_status if not i.ready]
        problems.append(f"{status.ready_instances}/{status.instances} instances ready ({', '.join(down)} not)")
    in_sync = [i for i in status.instances_status if i.ready and i.in_sync]
    if not in_sync:
        problems.append("no in-sync standby")
    lagging = [f"{i.name} {i.lag_bytes} bytes" for i in in_sync if (i.lag_bytes or 0) > max_lag_bytes]
    if lagging:
        problems.append(f"replication lag over {max_lag_bytes} bytes: {', '.join(lagging)}")
    return problems, in_sync


@bp.activity_trigger(input_name="spec")
@typed
def drill_preflight(spec: ClusterSpec) -> Outcome:
    """Refuse, touching nothing, unless the cluster opted in, is healthy, and has an in-sync standby."""
    status = platform().cluster_status(spec.namespace, spec.name)
    problems, in_sync = readiness_problems(status, Settings.from_env().drill_max_lag_bytes)
    if not spec.drills.enabled:
        problems.insert(0, "the cluster has not opted in to drills (drills.enabled is false)")
    if problems:
        raise PreflightFailed("drill refused: " + "; ".join(problems))
    roles = {i.name: i.role for i in status.instances_status}
    return done(f"healthy, primary {status.current_primary}, in-sync standbys "
                f"{', '.join(i.name for i in in_sync)}", primary=status.current_primary, roles=roles)


@bp.activity_trigger(input_name="request")
@typed
def switchover_preflight(request: Switchover) -> Outcome:
    """Refuse, touching nothing, unless the cluster is healthy and the target (given, or the most advanced
    in-sync standby, as CNPG elects one) is a ready, in-sync standby within the lag limit."""
    spec = request.spec
    status = platform().cluster_status(spec.namespace, spec.name)
    # a supervised update's primary: CNPG waits for exactly this switchover, every instance up
    problems, in_sync = readiness_problems(status, Settings.from_env().drill_max_lag_bytes,
                                           (HEALTHY, WAITING_FOR_USER))
    target = request.target or most_advanced(in_sync)
    if request.target and request.target == status.current_primary:
        problems.append(f"{request.target} is the primary already")
    elif request.target and request.target not in {i.name for i in in_sync}:
        seen = next((i for i in status.instances_status if i.name == request.target), None)
        problems.append(f"{request.target} is not an in-sync standby"
                        + (f" ({'ready' if seen.ready else 'not ready'}, {seen.sync_state})" if seen else
                           " (not an instance of the cluster)"))
    if problems:
        raise PreflightFailed("switchover refused: " + "; ".join(problems))
    roles = {i.name: i.role for i in status.instances_status}
    return done(f"healthy, primary {status.current_primary}; promoting {target} (in sync, "
                f"{'chosen' if request.target else 'the most advanced in-sync standby'})",
                primary=status.current_primary, target=target, roles=roles)


def most_advanced(in_sync: list[InstanceStatus]) -> str | None:
    """The standby that has replayed the most WAL (least lag; the lowest serial on a tie)."""
    def position(instance: InstanceStatus) -> tuple[int, int, int]:
        replayed = parse_lsn(instance.lsn) if instance.lsn else 0
        return (-replayed, instance.lag_bytes or 0, serial_of(instance.name))
    return min(in_sync, key=position).name if in_sync else None


@bp.activity_trigger(input_name="request")
@typed
def delete_primary(request: DeletePrimary) -> Outcome:
    """A pod deleted with a grace period comes back in seconds; a lost node's replacement takes longer
    than the leader key's TTL, so the HA manager has to fail over without the old primary's help."""
    recreate_after = 3.0 if request.mode == "graceful" else 25.0
    return platform().delete_primary(request.spec, request.mode, recreate_after)


@bp.activity_trigger(input_name="request")
@typed
def promote_instance(request: Promote) -> Outcome:
    return platform().promote(request.spec, request.instance)


@bp.activity_trigger(input_name="run")
@typed
def verify_writes(run: OnRun) -> Outcome:
    """A committed write through the rw endpoint, and which instance took it."""
    spec = run.spec
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        create_probe_tables(conn)
        conn.execute(f"INSERT INTO {PROBE} VALUES (%s, -1, now()) ON CONFLICT (operation, id) DO UPDATE "
                     "SET at = now()", (run.operation_id,))
        port = conn.port
        conn.commit()
    return done(f"write committed on the instance at port {port}")


def create_probe_tables(conn: Sql) -> None:
    """The probe's rows, and the control table that tells a running probe to stop."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {PROBE} (operation text, id bigint, at timestamptz, "
                 "PRIMARY KEY (operation, id))")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {CONTROL} (operation text PRIMARY KEY)")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def told_to_stop(conn: Sql, operation: str) -> bool:
    """Its row in the control table, or the table gone: a clean-up dropped the probe's tables."""
    if conn.execute("SELECT to_regclass(%s) IS NULL", (CONTROL,)).fetchone()[0]:  # type: ignore[index]
        return True
    return conn.execute(f"SELECT 1 FROM {CONTROL} WHERE operation = %s", (operation,)).fetchone() is not None


def cluster_gone(spec: ClusterSpec) -> bool:
    try:
        return platform().stored_spec(spec.namespace, spec.name) is None
    except Exception:  # not known now: keep probing until told to stop or the deadline
        return False


@bp.activity_trigger(input_name="probe")
@typed
def write_probe(probe: WriteProbe) -> ProbeRecord:
    """Numbered rows, each committed (synchronous_commit on) through the rw endpoint, until told to stop
    or `maxSeconds` passes; returns the acknowledged ids and the windows when writes failed."""
    spec = probe.spec
    operation, deadline = probe.operation_id, time.monotonic() + probe.max_seconds
    acknowledged: list[int] = []
    windows: list[list[str]] = []
    seconds = Seconds()
    failing_since: str | None = None
    next_id, last_control, last_look = 1, 0.0, 0.0
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
                    if told_to_stop(conn, operation):
                        break
                began = time.perf_counter()
                conn.execute(f"INSERT INTO {PROBE} VALUES (%s, %s, now())", (operation, next_id))
                seconds.commit((time.perf_counter() - began) * 1000)
                acknowledged.append(next_id)
                if failing_since is not None:
                    windows.append([failing_since, _now()])
                    failing_since = None
            except (SqlError, RuntimeError):
                seconds.fail()
                failing_since = failing_since or _now()
                with suppress(SqlError):
                    session.close()
                session, conn = ExitStack(), None
                if time.monotonic() - last_look > 5:  # not every failed write: an outage can last minutes
                    last_look = time.monotonic()
                    if cluster_gone(spec):
                        break  # a probe that started after its run ended, its cluster removed: nothing to measure
                time.sleep(0.05)
            next_id += 1
            time.sleep(0.02)
    finally:
        session.close()
    if failing_since is not None:
        windows.append([failing_since, _now()])
    return ProbeRecord(acknowledged=acknowledged, attempted=next_id - 1, windows=windows, series=seconds.series())


class Seconds:
    """The probe's commits, failures and slowest commit per wall-clock second; a second with neither (a
    connection attempt hanging) is kept as zero, so an outage shows as a gap."""

    def __init__(self) -> None:
        self.by_second: dict[int, list[float]] = {}  # second -> [commits, failed, slowest ms]

    def _now(self) -> list[float]:
        return self.by_second.setdefault(int(time.time()), [0, 0, 0.0])

    def commit(self, latency_ms: float) -> None:
        second = self._now()
        second[0] += 1
        second[2] = max(second[2], latency_ms)

    def fail(self) -> None:
        self._now()[1] += 1

    def series(self) -> list[ProbeSecond]:
        if not self.by_second:
            return []
        first, last = min(self.by_second), max(self.by_second)
        return [ProbeSecond(at=datetime.fromtimestamp(at, UTC).isoformat(), commits=int(c), failed=int(f),
                            latency_ms=round(ms, 2))
                for at in range(first, last + 1) for c, f, ms in [self.by_second.get(at, [0, 0, 0.0])]]


@bp.activity_trigger(input_name="spec")
@typed
def prepare_probe(spec: ClusterSpec) -> Outcome:
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        create_probe_tables(conn)
        conn.commit()
    return done(f"probe tables {PROBE} and {CONTROL} ready")


@bp.activity_trigger(input_name="run")
@typed
def stop_probe(run: OnRun) -> Outcome:
    with platform().connect(run.spec.namespace, run.spec.name, "rw") as conn:
        conn.execute(f"INSERT INTO {CONTROL} VALUES (%s) ON CONFLICT DO NOTHING", (run.operation_id,))
        conn.commit()
    return done("probe told to stop")


@bp.activity_trigger(input_name="probe")
@typed
def count_lost_writes(probe: LostWrites) -> Outcome:
    """RPO: acknowledged ids that are not in the database now."""
    with platform().connect(probe.spec.namespace, probe.spec.name, "rw") as conn:
        present = {row[0] for row in conn.execute(
            f"SELECT id FROM {PROBE} WHERE operation = %s AND id > 0", (probe.operation_id,))}
    acknowledged = probe.acknowledged
    lost = sorted(set(acknowledged) - present)
    return done(f"{len(acknowledged)} acknowledged writes, {len(lost)} lost", lost=len(lost),
                lostIds=lost[:20], acknowledged=len(acknowledged))


@bp.activity_trigger(input_name="spec")
@typed
def drop_probe(spec: ClusterSpec) -> Outcome:
    with platform().connect(spec.namespace, spec.name, "rw") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PROBE}")
        conn.execute(f"DROP TABLE IF EXISTS {CONTROL}")
        conn.commit()
    return done(f"probe tables {PROBE} and {CONTROL} dropped")
