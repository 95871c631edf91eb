"""Restore checks: the recovery window, and read-only SQL with exact expected values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities import platform, spec_of, stored_inventory
from shared.platform import PreflightFailed, done
from shared.requests import SqlCheck

bp = df.Blueprint()


@bp.activity_trigger(input_name="payload")
def check_recovery_target(payload: dict[str, Any]) -> dict[str, Any]:
    """A target must lie between the end of the oldest completed backup and the newest archived WAL."""
    spec = spec_of(payload)
    try:
        stored = stored_inventory(spec)
    except LookupError as err:
        raise PreflightFailed(str(err)) from None
    completed = stored.completed()
    if not completed:
        raise PreflightFailed(f"no completed backup of {spec.server_name} to restore from")
    earliest, newest = completed[0].end_time, stored.newest_wal_at
    window = f"recoverable window: {earliest} to {newest or 'now'}"
    target = payload.get("targetTime")
    if target is not None:
        moment = datetime.fromisoformat(target)
        if moment < datetime.fromisoformat(str(earliest)) or moment > datetime.now(UTC):
            raise PreflightFailed(f"targetTime {target} is outside the {window}")
    return done(f"{len(completed)} completed backup(s); {window}", firstRecoverabilityPoint=earliest,
                newestWalAt=newest).to_dict()


def _matches(check: SqlCheck, rows: list[tuple[Any, ...]]) -> tuple[bool, Any]:
    if check.max_age_seconds is not None:
        value = rows[0][0] if rows else None
        if not isinstance(value, datetime):
            return False, value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - value).total_seconds()
        return age <= check.max_age_seconds, f"{age:.0f}s old"
    if isinstance(check.expected, list):
        got: Any = [list(row) for row in rows]
    else:
        got = rows[0][0] if rows else None
    return _plain(got) == check.expected, _plain(got)


def _plain(value: Any) -> Any:
    """Database values as JSON would carry them, so `expected` compares like for like."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@bp.activity_trigger(input_name="payload")
def run_checks(payload: dict[str, Any]) -> dict[str, Any]:
    """Each check in a read-only transaction on the rw endpoint; every failure named in the message."""
    checks = [SqlCheck.model_validate(c) for c in payload["checks"]]
    results, failures = [], []
    for check in checks:
        with platform().connect(payload["namespace"], payload["name"], "rw", check.database) as conn:
            conn.read_only = True
            with conn.transaction():
                conn.execute("SET LOCAL statement_timeout = '30s'")
                rows = conn.execute(check.query).fetchall()  # type: ignore[arg-type]
        ok, got = _matches(check, rows)
        results.append({"name": check.name, "ok": ok, "got": got})
        if not ok:
            wanted = f"at most {check.max_age_seconds}s old" if check.max_age_seconds else repr(check.expected)
            failures.append(f"check {check.name!r}: expected {wanted}, got {got!r}")
    if failures:
        raise RuntimeError("; ".join(failures))
    return done(f"{len(results)} check(s) passed", checks=results).to_dict()
