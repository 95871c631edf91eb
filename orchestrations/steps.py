"""Runbook steps more than one runbook takes: reading a cluster's status, taking a Backup, removing a
cluster, the write probe beside a change of primary. Each reads like its line in the runbook; the Runbook
machinery is in runbook.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from orchestrations.runbook import Runbook, Step, StepFailed
from shared.backups import DONE_PHASES, WAL_ARCHIVING_FAILING, Backup
from shared.outcome import Outcome
from shared.payloads import BackupRef, DeleteCluster, LostWrites, OnRun, ProbeRecord, StartBackup, WriteProbe
from shared.requests import RestoreRequest
from shared.runs import RestoreInput
from shared.spec import ClusterRef, ClusterSpec
from shared.status import ClusterStatus


def instances_ready(status: ClusterStatus) -> bool:
    """A primary, and every instance up (standbys streaming)."""
    return bool(status.current_primary) and status.ready_instances == status.instances


def healthy(status: ClusterStatus) -> bool:
    """CNPG's healthy phase: every instance ready and the synchronous standbys the spec asks for in place."""
    return status.healthy


def describe(status: ClusterStatus) -> str:
    return (
        f"phase {status.phase!r}, {status.ready_instances}/{status.instances} instances ready, "
        f"primary {status.current_primary or 'none'}, "
        f"synchronous_standby_names {status.synchronous_standby_names or 'unset'!r}"
    )


def primary_is(instance: str | None) -> Callable[[ClusterStatus], bool]:
    """Ready when `instance` is the primary of a healthy cluster (a switch-back done)."""
    return lambda status: status.current_primary == instance and status.healthy


def streams_in_sync(instance: str, synchronous: bool) -> Callable[[ClusterStatus], bool]:
    """Ready when `instance` is a ready standby of a healthy cluster and, where the cluster keeps synchronous
    standbys, one of them (sync or quorum): what a switchover or a drill to it asks first."""
    def ready(status: ClusterStatus) -> bool:
        found = next((i for i in status.instances_status if i.name == instance), None)
        return status.healthy and found is not None and found.ready and found.role == "standby" and (
            not synchronous or found.in_sync)
    return ready


def standbys_in_sync(spec: ClusterSpec) -> Callable[[ClusterStatus], bool]:
    """Ready when the cluster is healthy, every standby ready, and as many in sync as the spec keeps synchronous
    standbys (all of them, when fewer run): what the next change's or drill's pre-flight asks. CNPG's healthy
    phase alone comes sooner, while a restarted standby still catches up."""
    def ready(status: ClusterStatus) -> bool:
        standbys = [i for i in status.instances_status if i.role == "standby"]
        wanted = min(spec.synchronous_replicas, len(standbys))
        return status.healthy and all(i.ready for i in standbys) and sum(i.in_sync for i in standbys) >= wanted
    return ready


SETTLE_SECONDS = 5  # several of Patroni's HA loops (1 s locally), well under CNPG's reconcile period


def standbys_said(status: ClusterStatus) -> str:
    """The cluster in a line, and each standby's readiness and sync state: what a wait on them quotes."""
    standbys = [f"{i.name} {'ready' if i.ready else 'not ready'} {i.sync_state or 'unknown'}"
                for i in status.instances_status if i.role == "standby"]
    return f"{describe(status)}; standbys: {', '.join(standbys) or 'none'}"


def wait_settled(run: Runbook, steps: tuple[str, str, str], ready: Callable[[ClusterStatus], bool],
                 timeout_seconds: float) -> Step:
    """Wait for `ready`, let a few HA loops pass, and wait for it again: a standby that had to catch up shows in
    sync, then the primary's HA manager may take it out of the synchronous set for a moment (seen on the local
    stack after a switchover and after a rolling restart, each time refusing the next run's pre-flight)."""
    first, settle, again = steps
    yield from wait_for_status(run, first, ready, timeout_seconds, said=standbys_said)
    yield from run.sleep(settle, run.now + timedelta(seconds=SETTLE_SECONDS))
    return (yield from wait_for_status(run, again, ready, timeout_seconds, said=standbys_said))


def cluster_status(run: Runbook, step: str) -> Step:
    """The run's cluster as CNPG would show it, one read."""
    return (yield from run.step(step, "get_cluster_status", run.names, answer=ClusterStatus))


def wait_for_status(run: Runbook, step: str, ready: Callable[[ClusterStatus], bool], timeout_seconds: float,
                    cluster: ClusterRef | None = None, said: Callable[[ClusterStatus], str] = describe,
                    **wait: bool) -> Step:
    """Poll the cluster's status until `ready`: every wait of every runbook on a cluster reads the same way."""
    names = (cluster or run.report.cluster).dump()
    return (yield from run.wait_until(step, "get_cluster_status", names, ready, said, timeout_seconds,
                                      answer=ClusterStatus, **wait))


def backup_trouble(backup: Backup) -> str | None:
    """What holds a Backup back while it is not done: WAL archiving failing (CNPG retries it), the object
    store not answering. Neither is final by itself; held past the patience, it ends the wait."""
    if backup.phase == WAL_ARCHIVING_FAILING:
        return f"walArchivingFailing: {backup.error or 'the instance manager finds WAL archiving failing'}"
    if backup.phase in DONE_PHASES or not backup.error:
        return None
    return f"{backup.phase}: {backup.error}"


def describe_backup(backup: Backup) -> str:
    where = f" of {backup.instance}" if backup.instance else ""
    ids = f" {backup.backup_id} ({backup.begin_wal} .. {backup.end_wal})" if backup.backup_id else ""
    trouble = f" ({said})" if (said := backup_trouble(backup)) else ""
    return f"Backup {backup.name}{where}: {backup.phase}{ids}{trouble}"


def take_backup(run: Runbook, spec: ClusterSpec, name: str, patience_seconds: float | None = None) -> Step:
    """CNPG's on-demand Backup, awaited. One held back past the patience is released (its record deleted; a
    local backup process stopped): CNPG counts a Backup stuck in walArchivingFailing as running, and it would
    hold back the cluster's next Backups and its ScheduledBackup (backup_controller.go)."""
    ref = BackupRef(**run.names, backup_name=name)
    yield from run.step("take backup", "start_backup", StartBackup(spec=spec, backup_name=name))
    patience = run.options.backup_patience_seconds if patience_seconds is None else patience_seconds
    try:
        backup = yield from run.wait_until(
            "wait backup", "get_backup", ref, lambda b: b.phase in DONE_PHASES, describe_backup,
            run.options.backup_timeout_seconds, stalled=backup_trouble, patience_seconds=patience, answer=Backup,
        )
    except StepFailed:
        # a release that fails is recorded in the report; the run ends with the wait's own error (or its cancel)
        with contextlib.suppress(StepFailed):
            yield from run.step("release stuck backup", "delete_backup", ref)
        raise
    if backup.phase != "completed":
        raise StepFailed("wait backup", f"backup {name} ended {backup.phase}: {backup.error}", backup)
    return backup


def remove_cluster(run: Runbook, spec: ClusterSpec, delete_backups: bool, delete_secret: bool = True) -> Step:
    """Every removal step, in the reverse order deploy made them; shared by teardown and compensation."""
    names = spec.ref
    yield from run.step("remove endpoints", "remove_endpoints", names)
    yield from run.step("remove scheduled backups", "remove_scheduled_backups", names)
    # a cluster whose archive is deleted with it has nothing left to flush: it may stop at once
    yield from run.step("delete cluster", "delete_cluster", DeleteCluster(**names.dump(), graceful=not delete_backups))
    yield from run.wait_until("volumes released", "count_volumes", names, lambda left: left == 0,
                              lambda left: f"{left} volume(s) left", run.options.ready_timeout_seconds)
    if delete_secret:
        yield from run.step("delete app-user secret", "delete_app_secret", spec)
    yield from run.step("remove backup identity", "remove_backup_identity", spec)
    if delete_backups:
        yield from run.step("delete backups", "delete_backups", spec)
    else:
        run.note("delete backups", "skipped", "backups kept (deleteBackups is false)")


def read_spec(run: Runbook, step: str, cluster: ClusterRef | None = None) -> Step:
    """The cluster's stored spec, or None when there is no such cluster."""
    names = (cluster or run.report.cluster).dump()
    return (yield from run.step(step, "get_stored_spec", names, answer=ClusterSpec))


def start_probe(run: Runbook, spec: ClusterSpec) -> Step:
    """The write probe, running beside the steps that follow (numbered rows, synchronous commit, through the
    rw endpoint); answers its task, which `stop_probe` awaits."""
    yield from run.step("prepare probe", "prepare_probe", spec)
    return run.start("write probe", "write_probe", WriteProbe(spec=spec, operation_id=run.input.operation_id))


def probe_baseline(run: Runbook) -> Step:
    """A second of acknowledged writes before the change, so an outage is measured from a working state."""
    yield from run.sleep("probe baseline", run.now + timedelta(seconds=1))


def stop_probe(run: Runbook, spec: ClusterSpec, probe: Any) -> Step:
    """Tell the probe to stop and answer its record (acknowledged ids, outage windows)."""
    yield from run.step("stop probe", "stop_probe", OnRun(spec=spec, operation_id=run.input.operation_id))
    return ProbeRecord.model_validate((yield probe))


def count_lost_writes(run: Runbook, spec: ClusterSpec, measured: ProbeRecord) -> Step:
    """RPO: the acknowledged writes the current primary does not have."""
    lost: Outcome = yield from run.step("RPO", "count_lost_writes", LostWrites(
        spec=spec, operation_id=run.input.operation_id, acknowledged=measured.acknowledged))
    return lost


def measure_probe(run: Runbook, spec: ClusterSpec, probe: Any, result: dict[str, Any]) -> Step:
    """The probe stopped and the acknowledged writes the primary lacks counted (RPO), both kept in `result`;
    the probe's record (its outage windows give the RTO) and the lost ids, for `no_writes_lost`."""
    measured = yield from stop_probe(run, spec, probe)
    lost = yield from count_lost_writes(run, spec, measured)
    result.update({"rpoLostWrites": lost.data["lost"], "probe": {
        "attempted": measured.attempted, "acknowledged": len(measured.acknowledged), "outages": measured.windows,
        "series": [second.dump() for second in measured.series]}})
    return measured, lost.data.get("lostIds") or []


def no_writes_lost(result: dict[str, Any], lost_ids: list[int]) -> None:
    """RPO 0 with a synchronous standby: an acknowledged write lost fails the run, naming the ids."""
    if result["rpoLostWrites"]:
        raise StepFailed("RPO", f"{result['rpoLostWrites']} acknowledged writes lost: {lost_ids}")


def settle_and_clean_up(run: Runbook, spec: ClusterSpec, error: Exception | None, probing: bool,
                        result: dict[str, Any], settle: bool) -> Step:
    """The end of a run that changed the primary or restarted instances beside its write probe: cut short
    (`settle`), the cluster is given time to settle and the report says how it was left; then, always, the
    probe is stopped and its tables dropped. The run's error (its first), or the clean-up's."""
    run.stop_listening()
    if error is not None and settle:
        try:
            settled = yield from wait_for_status(run, "cluster settles", healthy, run.options.drill_timeout_seconds,
                                                 required=False)
            result["leftWith"] = describe(settled)
        except StepFailed:
            pass  # recorded in the report; the run fails with its first error, and cleans up all the same
    cleanup_failed = yield from clean_up_probe(run, spec, probing)  # always: `or` would skip it
    return error or cleanup_failed


def clean_up_probe(run: Runbook, spec: ClusterSpec, running: bool) -> Step:
    """A probe left running (a run cut short) is stopped, then its tables dropped, each step on its own; the
    first that fails is answered (the run's own error, if any, stays first)."""
    failed: StepFailed | None = None
    steps = [("stop probe", "stop_probe", OnRun(spec=spec, operation_id=run.input.operation_id))] if running else []
    for name, activity, payload in [*steps, ("drop probe", "drop_probe", spec)]:
        try:
            yield from run.step(name, activity, payload)
        except StepFailed as err:
            failed = failed or err
    return failed


def outages_between(windows: list[list[str]], start: datetime, end: datetime | None) -> list[float]:
    """Seconds of each client-seen outage that began inside [start, end)."""
    found = []
    for began, ended in windows:
        at = datetime.fromisoformat(began)
        if at >= start - timedelta(seconds=1) and (end is None or at < end):
            found.append(round((datetime.fromisoformat(ended) - at).total_seconds(), 3))
    return found


def restore_test(run: Runbook, checks: list[Any]) -> Step:
    """restore_cluster as a sub-run under this run's lock: the newest backup into a new 1-instance cluster (the
    verification's restore test, and a major upgrade's gate)."""
    started = run.now
    operation_id = f"{run.input.operation_id}-restore"
    sub = RestoreInput(**run.names, operation_id=operation_id, options=run.options, owns_lock=False,
                       requested_at=run.now.isoformat(), restore=RestoreRequest(checks=checks, instances=1))
    answer = yield run.sub_run("restore test", "restore_cluster", sub, operation_id)
    restored = answer["result"]
    run.record("restore test", "done", started,
               f"restored into {restored['restoreCluster']['name']} in {restored['restoreSeconds']}s; "
               f"{len(restored['checks'])} check(s) passed; report {answer['operationId']}")
    return {"operationId": answer["operationId"], **restored}
