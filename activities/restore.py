"""Restore checks: the recovery window, and read-only SQL with exact expected values."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities import platform, stored_inventory, typed
from shared.backups import Inventory
from shared.logs import said
from shared.outcome import Outcome, done
from shared.payloads import RecoveryTarget, SqlChecks
from shared.platform import PreflightFailed
from shared.recoverable import LOOK_BACK, ArchiveEnd, archive_end
from shared.requests import SqlCheck
from shared.spec import ClusterSpec
from shared.walarchive import parse_lsn

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@typed
def check_recovery_target(request: RecoveryTarget) -> Outcome:
    """A target must lie after the end of the oldest completed backup and before the archive's newest commit
    (a time) or record (an LSN), which recovery needs to stop at. A target past those on a running source
    is made reachable: a marker commit, a WAL switch, and the segment awaited in the object store."""
    spec = request.spec
    try:
        stored = stored_inventory(spec)
    except LookupError as err:
        raise PreflightFailed(str(err)) from None
    completed = stored.completed()
    if not completed:
        raise PreflightFailed(f"no completed backup of {spec.server_name} to restore from")
    reach = Reach(spec, stored)
    if request.target_time:
        return reach.time(datetime.fromisoformat(request.target_time), completed[0].end_time)
    if request.target_lsn:
        return reach.lsn(request.target_lsn, completed[0].end_lsn)
    end = reach.end(look_back=1)  # no target: the newest segment says enough for the report
    return done(f"{len(completed)} completed backup(s); recoverable from {completed[0].end_time} to "
                f"{end.newest_time()} (newest archived commit), WAL to {end.newest_lsn()}",
                firstRecoverabilityPoint=completed[0].end_time, newestRecoverableTime=end.commit_at,
                newestLsn=end.lsn)


class Reach:
    """Whether recovery can get to a target, writing the commit or WAL switch it needs when the source runs."""

    def __init__(self, spec: ClusterSpec, stored: Inventory) -> None:
        self.spec, self.stored, self._end = spec, stored, None
        self.container = platform().backup_container(spec)
        self.marker: dict[str, Any] | None = None

    def end(self, look_back: int = LOOK_BACK) -> ArchiveEnd:
        if self._end is None:
            self._end = archive_end(self.container, self.stored, look_back)
        return self._end

    def time(self, target: datetime, earliest: str | None) -> Outcome:
        window = f"from {earliest} to {self.end().newest_time()}"
        if earliest and target < datetime.fromisoformat(earliest):
            raise PreflightFailed(f"targetTime {target.isoformat()} is before the oldest completed backup ended; "
                                  f"recoverable {window}")
        if target > datetime.now(UTC):
            raise PreflightFailed(f"targetTime {target.isoformat()} is in the future; the newest recoverable time "
                                  f"is {self.end().newest_time()}")
        for attempt in range(MARKERS + 1):
            commit = self.end().commit
            if commit is not None and commit.at > target:
                return self._reached(f"targetTime {target.isoformat()} is reachable: the archive holds "
                                     f"{commit.describe()}", earliest)
            if attempt == MARKERS:
                break
            if commit is not None and self.marker:  # the source's clock is behind ours: let it pass the target
                time.sleep(min((target - commit.at).total_seconds() + 0.2, 5.0))
            self._write_marker(f"targetTime {target.isoformat()} is after the newest archived commit "
                               f"({self.end().newest_time()})")
        raise PreflightFailed(f"targetTime {target.isoformat()} is after the newest commit the source's clock has "
                              f"written ({self.end().newest_time()}); is its clock behind?")

    def lsn(self, target: str, earliest: str | None) -> Outcome:
        wanted = parse_lsn(target)
        if earliest and wanted < parse_lsn(earliest):
            raise PreflightFailed(f"targetLsn {target} is before the oldest completed backup ended ({earliest})")
        end = self.end()
        if end.last_lsn is None or end.last_lsn < wanted:
            switched = self._write_marker(f"targetLsn {target} is after the newest archived record "
                                          f"({end.newest_lsn()})")
            # recovery stops at a record that starts at or after the target: the switch record is the last
            last = self.end().last_lsn
            if wanted > parse_lsn(switched) or last is None or last < wanted:
                raise PreflightFailed(f"targetLsn {target} is beyond the source's WAL ({switched}); the newest "
                                      f"recoverable LSN is {self.end().newest_lsn()}")
        return self._reached(f"targetLsn {target} is reachable: the archive's WAL runs to {self.end().newest_lsn()}",
                             earliest)

    def _write_marker(self, why: str) -> str:
        """The source's marker commit and WAL switch, then the archive read again; the switch's LSN."""
        current = platform().stored_spec(self.spec.namespace, self.spec.name)
        running = current is not None and current.server_name == self.spec.server_name and \
            platform().cluster_status(self.spec.namespace, self.spec.name).current_primary
        if not running:
            raise PreflightFailed(f"{why} and the source {self.spec.namespace}/{self.spec.name} is not running to "
                                  f"write one; the newest recoverable time is {self.end().newest_time()}, the newest "
                                  f"LSN {self.end().newest_lsn()}")
        try:
            outcome = platform().switch_wal_and_find_segment(self.spec)
        except Exception as err:  # no connection, no store, no segment in time: still a refusal with the limit
            raise PreflightFailed(f"{why}; writing a marker commit on the source failed ({said(err)}); the newest "
                                  f"recoverable time is {self.end().newest_time()}") from None
        self.marker = {"detail": outcome.detail, **(outcome.data or {})}
        self.stored = stored_inventory(self.spec)
        self._end = None
        return str((outcome.data or {}).get("switchedAt") or "0/0")

    def _reached(self, detail: str, earliest: str | None) -> Outcome:
        end = self.end()
        if self.marker:
            detail += f" (written for it: {self.marker['detail']})"
        return done(detail, firstRecoverabilityPoint=earliest, newestRecoverableTime=end.commit_at,
                    newestLsn=end.lsn, marker=self.marker)


MARKERS = 2  # a second marker when the source's clock stamped the first one at or before the target


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


@bp.activity_trigger(input_name="request")
@typed
def run_checks(request: SqlChecks) -> Outcome:
    """Each check in a read-only transaction on the rw endpoint; every failure named in the message."""
    results, failures = [], []
    for check in request.checks:
        with platform().connect(request.namespace, request.name, "rw", check.database) as conn:
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
    return done(f"{len(results)} check(s) passed", checks=results)
