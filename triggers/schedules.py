"""The periodic timer (DESIGN §9): starts the runs whose schedule in a cluster's spec is due.

ScheduledBackup (`backup.schedule`) takes and verifies a new backup; `schedules.backupVerification`
verifies the latest backup with a restore test; `schedules.failoverDrill` runs a graceful drill when the
cluster opted in and the PGHA_DRILLS_ENABLED setting is on. (On AKS the operator fires ScheduledBackups itself;
pgha's timer fires them on the local platform.) A busy cluster skips this turn.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from shared import schedules
from shared.logs import redact
from shared.offload import off_loop
from shared.platforms import platform_for
from shared.requests import DrillRequest, VerifyRequest
from shared.settings import Settings
from shared.spec import ClusterSpec
from triggers.alerts import forget_old_claims_hourly
from triggers.starting import ClusterBusy, Plan, begin
from triggers.terminations import terminate_overdue

bp = df.Blueprint()
log = logging.getLogger("pgha.schedules")


def due_runs(spec: ClusterSpec, platform_name: str, drills: bool) -> list[tuple[str, str, Plan]]:
    """(kind, schedule, plan) for every schedule this cluster's spec carries."""
    runs = []
    if spec.backup.schedule and platform_name == "local":
        runs.append(("ScheduledBackup", spec.backup.schedule,
                     Plan("verify_backups", spec.ref, {"verify": VerifyRequest(backup="new")})))
    if spec.schedules.backup_verification:
        runs.append(("backupVerification", spec.schedules.backup_verification,
                     Plan("verify_backups", spec.ref, {"verify": VerifyRequest(backup="latest", restore_test=True)})))
    if spec.schedules.credential_rotation:
        runs.append(("credentialRotation", spec.schedules.credential_rotation,
                     Plan("rotate_credentials", spec.ref, {})))
    if spec.schedules.failover_drill and spec.drills.enabled and drills:
        runs.append(("failoverDrill", spec.schedules.failover_drill,
                     Plan("failover_drill", spec.ref, {"drill": DrillRequest(mode="graceful")})))
    return runs


async def run_due_schedules(client: df.DurableOrchestrationClient, now: datetime) -> list[str]:
    """Start what is due for every cluster; the operation ids started."""
    settings = Settings.from_env()
    platform = platform_for()
    started = []
    # a generator: listed in the thread; a record that does not read is reported there and left out
    for spec in await off_loop(lambda: list(platform.list_clusters())):
        try:
            started += await start_due(client, settings, platform.name, spec, now)
        except Exception as err:  # one cluster's bad data or failed start never stops the others' schedules
            log.error("schedules of %s/%s skipped this turn: %s: %s", spec.namespace, spec.name,
                      type(err).__name__, redact(str(err))[:300])
    return started


async def start_due(client: df.DurableOrchestrationClient, settings: Settings, platform_name: str,
                    spec: ClusterSpec, now: datetime) -> list[str]:
    since = await off_loop(schedules.last_checked, settings.storage_connection, spec.namespace, spec.name)
    await off_loop(schedules.mark_checked, settings.storage_connection, spec.namespace, spec.name, now)
    if since is None:
        return []  # first look at this cluster: its schedules count from now
    started = []
    for kind, schedule, plan in due_runs(spec, platform_name, settings.drills_enabled):
        if not schedules.fire_times(schedule, since, now):
            continue
        try:
            operation = await begin(client, settings, plan)
        except ClusterBusy as busy:
            log.warning("%s of %s/%s skipped: cluster busy with %s", kind, spec.namespace, spec.name, busy)
            continue
        log.info("%s of %s/%s started %s", kind, spec.namespace, spec.name, operation)
        started.append(operation)
    return started


@bp.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def run_schedules(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Every minute: start the verifications and scheduled backups that came due, terminate (then compensate)
    the cancelled runs that did not stop by themselves, and (hourly) delete the alert claims past their
    retention. Every storage and platform call goes off the
    loop: it is the host's, and a store that does not answer (seconds of SDK retries per call, per cluster) held
    every HTTP route with it (a teardown's 503 took 42 s instead of about 5)."""
    duties = (lambda: terminate_overdue(client), lambda: run_due_schedules(client, datetime.now(UTC)),
              lambda: forget_old_claims_hourly(client))
    for duty in duties:  # each made when its turn comes: one that fails leaves no other unawaited
        try:
            await duty()
        except Exception:  # storage or the platform failed this turn: said, and the next turn tries again
            log.exception("periodic timer: a duty failed this turn")
