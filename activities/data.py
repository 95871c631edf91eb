"""SQL through the cluster's rw and ro endpoints, as the runbook's psql sessions do."""

from __future__ import annotations

import time

import azure.durable_functions as df

from activities import platform, typed
from shared.outcome import Outcome, done, skipped
from shared.spec import ClusterSpec
from shared.sql import MissingTable

bp = df.Blueprint()

SAMPLE_ROWS = [(1, "John"), (2, "Jane"), (3, "Alice")]


@bp.activity_trigger(input_name="spec")
@typed
def load_sample_dataset(spec: ClusterSpec) -> Outcome:
    """The runbook's `datasample` table and its three rows; inserted once, however often this runs."""
    if not spec.sample_data:
        return skipped("sampleData not requested")
    with platform().connect(spec.namespace, spec.name, "rw") as conn, conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS datasample (id INTEGER, name VARCHAR(255))")
        conn.execute("LOCK TABLE datasample IN SHARE ROW EXCLUSIVE MODE")
        count = conn.execute("SELECT count(*) FROM datasample").fetchone()[0]  # type: ignore[index]
        if count == 0:
            conn.executemany("INSERT INTO datasample (id, name) VALUES (%s, %s)", SAMPLE_ROWS)
            count = len(SAMPLE_ROWS)
    return done(f"datasample holds {count} rows", count=count)


def _probe(spec_namespace: str, spec_name: str, role: str, count_rows: bool) -> tuple[bool, int | None]:
    """Whether the endpoint's instance is in recovery, and its datasample rows (-1: not replayed there yet)."""
    with platform().connect(spec_namespace, spec_name, role) as conn:  # type: ignore[arg-type]
        in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]
        if not count_rows:
            return in_recovery, None
        try:
            return in_recovery, conn.execute("SELECT count(*) FROM datasample").fetchone()[0]  # type: ignore[index]
        except MissingTable:  # an asynchronous standby yet to replay the CREATE TABLE
            return in_recovery, -1


@bp.activity_trigger(input_name="spec")
@typed
def check_replicas(spec: ClusterSpec) -> Outcome:
    """`pg_is_in_recovery()` false on rw and true on ro, and the same rows on both."""
    if spec.instances < 2:
        return skipped("a single instance has no replica")
    rw_recovery, rw_count = _probe(spec.namespace, spec.name, "rw", spec.sample_data)
    if rw_recovery:
        raise RuntimeError("the rw endpoint reached an instance in recovery")
    deadline = time.monotonic() + 15  # a standby outside the sync quorum may replay a moment later
    while True:
        ro_recovery, ro_count = _probe(spec.namespace, spec.name, "ro", spec.sample_data)
        if not ro_recovery:
            raise RuntimeError("the ro endpoint reached an instance not in recovery")
        if ro_count == rw_count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if ro_count != rw_count:
        raise RuntimeError(f"datasample: {rw_count} rows on rw but {ro_count} on ro")
    rows = f", datasample count {rw_count} on both" if spec.sample_data else ""
    return done(
        f"pg_is_in_recovery() false on rw, true on ro{rows}", rwInRecovery=False, roInRecovery=True, count=rw_count
    )
