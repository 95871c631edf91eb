"""HTTP: POST /api/alerts — Azure Monitor's action group webhook (common alert schema) and Alertmanager's
webhook (version 4: a group of alerts, each answered on its own).

Answers 202 within milliseconds (an action group retries on 408/429/503/504 and gives up after a few
tries; Alertmanager retries a 5xx until its group_interval) and never touches the platform here: the run
looks at the cluster. One run per alert firing: the first delivery claims it in blob container `alerts/`,
every copy after it gets the same operation's Location. A resolved alert ends the matching run with an
event and starts its claim's retention: the periodic timer deletes, once an hour, the claims of alerts resolved
more than PGHA_ALERT_CLAIM_RETENTION_HOURS ago whose run has ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared import locks
from shared.alerts import Alert, AlertError, cluster_for, dedupe_key, parse_alerts, playbook_for
from shared.offload import off_loop
from shared.runs import AlertSummary, BusyWith
from shared.settings import ACTING_PLAYBOOKS, Settings
from shared.spec import ClusterRef
from triggers.operations import raise_while_running
from triggers.responses import ApiError, json_response, read_json, unavailable, unexpected
from triggers.starting import (
    RUNNING,
    STARTING_GRACE_SECONDS,
    ClusterBusy,
    Plan,
    lock_cluster,
    operation_location,
    start_run,
)

bp = df.Blueprint()
log = logging.getLogger("pgha.alerts")


class Claimed:
    """The alerts whose run this host started, newest kept: a copy of one is answered without a storage call;
    and those it is starting now (`claiming`, on the event loop): a copy waits for that delivery's outcome
    instead of racing it to storage. Another host (scale-out) or this one after a restart asks the claim in
    storage, which stays the one truth. The sweep of old claims forgets them here too."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.claiming: dict[str, asyncio.Future[bool]] = {}

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


CLAIMED = Claimed()
CLAIM_SWEEP_SECONDS = 3600  # the timer ticks every minute; each host lists the claims once an hour
CLAIMS_PER_SWEEP = 500  # deletions in one turn: a backlog goes in the turns after it


def summary(alert: Alert) -> AlertSummary:
    """What the run and its report keep of the alert (bounded: labels are the sender's to fill)."""
    return AlertSummary(
        alert_id=alert.alert_id[:300], rule=alert.rule[:200], severity=alert.severity[:20],
        signal_type=alert.signal_type[:40], condition=alert.condition,
        monitoring_service=alert.monitoring_service[:60], fired_at=alert.fired_at[:40],
        targets=[t[:300] for t in alert.target_ids[:5]],
        labels={k[:60]: v[:200] for k, v in list(alert.labels.items())[:30]},
        expression=(alert.expression or "")[:1000] or None, value=(alert.value or "")[:100] or None,
        metrics=[m[:100] for m in alert.metrics[:10]], description=(alert.description or "")[:500] or None,
    )


@dataclass(frozen=True)
class Answer:
    """What one alert got: its run (None when there is none to point at) and what is said of it."""

    operation_id: str | None
    body: dict[str, Any]

    def described(self, req: func.HttpRequest) -> dict[str, Any]:
        if self.operation_id is None:
            return self.body
        return {"id": self.operation_id, **self.body, "statusQueryGetUri": operation_location(req, self.operation_id)}


def accepted(req: func.HttpRequest, answer: Answer) -> func.HttpResponse:
    if answer.operation_id is None:
        return json_response(202, answer.body)
    return json_response(202, answer.described(req), {"Location": operation_location(req, answer.operation_id),
                                                      "Retry-After": str(Settings.from_env().retry_after_seconds)})


@bp.route(route="alerts", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def receive_alert(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start respond_to_alert for a firing alert (once), or end its run for a resolved one. Alertmanager's
    group is answered alert by alert; a failure on one is a 503 for the delivery, whose retry finds the
    alerts already answered as duplicates."""
    try:
        try:
            body = read_json(req)
            alerts = parse_alerts(body)
        except AlertError as err:
            raise ApiError(400, "InvalidAlert", err.message, err.field) from None
        if alerts[0].fingerprint is None:  # Azure Monitor's: one alert, one operation
            return accepted(req, await answer(client, alerts[0]))
        truncated = body.get("truncatedAlerts") if isinstance(body, dict) else None
        if isinstance(truncated, int) and truncated > 0:  # Alertmanager dropped them: no delivery will carry them
            log.warning("Alertmanager left %d alert(s) out of a group (max_alerts): they get no response", truncated)
        return json_response(202, {"alerts": [a.described(req) for a in await answer_group(client, alerts)]})
    except ApiError as err:
        return err.response()
    except Exception as err:  # storage or runtime failed: a 503, one error shape
        return unexpected(err)


async def answer(client: df.DurableOrchestrationClient, alert: Alert) -> Answer:
    given = await (resolve(client, alert) if alert.condition == "Resolved" else respond(client, alert))
    log.info("alert %s %s from %s (%s): %s", printable(alert.rule, 100), alert.condition,
             printable(alert.monitoring_service, 40), printable(alert.alert_id, 200),
             given.operation_id or given.body.get("message"))
    return given


async def answer_group(client: df.DurableOrchestrationClient, alerts: list[Alert]) -> list[Answer]:
    """Alertmanager's group, alert by alert in order: one that fails does not stop the ones after it, and the
    delivery then fails with the first failure; its retry finds the others as duplicates."""
    answers: list[Answer] = []
    failed: ApiError | None = None
    for alert in alerts:
        try:
            answers.append(await answer(client, alert))
        except ApiError as err:
            failed = failed or err
        except Exception as err:  # storage or runtime failed: this alert's 503
            failed = failed or unavailable(f"answering alert {printable(alert.rule, 100)}", err)
    if failed is not None:
        raise failed
    return answers


def printable(text: str, limit: int) -> str:
    """The sender's words in one log line: no control character of theirs starts another."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


async def respond(client: df.DurableOrchestrationClient, alert: Alert) -> Answer:
    key = dedupe_key(alert)
    duplicate = Answer(key, {"duplicate": True, "playbook": playbook_for(alert)})
    if key in CLAIMED:  # this host started it: a copy (an action group's retry, rules firing together)
        return duplicate
    first = CLAIMED.claiming.get(key)
    if first is not None:  # a delivery of it is being handled here: its outcome is this copy's
        if await asyncio.shield(first):
            return duplicate
        # its sender retries it; so does this copy's, and one of them starts the run (none waits in a queue)
        raise ApiError(503, "StartFailed", "the run of this alert could not be started yet: retry")
    CLAIMED.claiming[key] = mine = asyncio.get_running_loop().create_future()
    try:
        started = await claim_and_start(client, alert, key, duplicate)
    except BaseException:
        mine.set_result(False)
        raise
    else:
        mine.set_result(True)
        return started
    finally:
        del CLAIMED.claiming[key]


async def claim_and_start(client: df.DurableOrchestrationClient, alert: Alert, key: str,
                          duplicate: Answer) -> Answer:
    settings = Settings.from_env()
    playbook = playbook_for(alert)
    if not await off_loop(locks.claim, settings.storage_connection, key):
        claimed = await off_loop(locks.claimed_at, settings.storage_connection, key)
        # given back between the two looks (its start failed): claimed again, this delivery holds it
        retaken = claimed == 0.0 and await off_loop(locks.claim, settings.storage_connection, key)
        if not retaken:
            if time.time() - claimed < STARTING_GRACE_SECONDS:
                return duplicate  # being started elsewhere: not known here as started (that delivery may yet fail)
            if await started(client, key):
                CLAIMED.add(key)
                return duplicate
            # claimed by a delivery that never started its run (a crash in between): this one starts it
    target = cluster_for(alert, settings.default_namespace)
    namespace, name = target or (settings.default_namespace, "")
    fields: dict[str, Any] = {"alert": summary(alert), "playbook": playbook, "policy": settings.policy_for(playbook),
                              "owns_lock": False}
    plan = Plan("respond_to_alert", ClusterRef(namespace=namespace, name=name), fields)
    try:
        if name and playbook in ACTING_PLAYBOOKS:
            try:
                await lock_cluster(client, settings, plan, key)
                fields["owns_lock"] = True
            except ClusterBusy as busy:  # the run diagnoses and reports; it does not act beside another run
                holder = busy.holder
                fields["busy_with"] = BusyWith(operation_id=holder.operation_id if holder else "unknown",
                                               runbook=holder.runbook if holder else "unknown")
        await start_run(client, settings, plan, key, settings.alert_callback_url or None)
    except Exception:
        # nothing half-made: the lock and the claim go, so the action group's retry starts the run
        if fields["owns_lock"]:
            await off_loop(locks.release, settings.storage_connection, namespace, name, key)
        if await started(client, key):  # another delivery started it first
            CLAIMED.add(key)
            return duplicate
        await off_loop(locks.unclaim, settings.storage_connection, key)
        raise  # 503: the action group retries, and the retry starts it
    CLAIMED.add(key)
    return Answer(key, {"duplicate": False, "playbook": playbook,
                        "cluster": {"namespace": namespace, "name": name or None}})


async def started(client: df.DurableOrchestrationClient, key: str) -> bool:
    """Whether the run of this alert exists (running or ended): the durable runtime's own record."""
    status = await client.get_status(key)
    return status is not None and status.runtime_status is not None


def running(status: Any) -> bool:
    """Whether the durable runtime's record says the run is still going."""
    return status is not None and status.runtime_status is not None and status.runtime_status.value in RUNNING


NOTHING_TO_END = Answer(None, {"id": None, "message": "no response is running for this alert: nothing to end"})


async def resolve(client: df.DurableOrchestrationClient, alert: Alert) -> Answer:
    fired = dedupe_key(replace(alert, condition="Fired"))
    # from now on only late copies of the firing can come: its claim's retention starts
    try:
        await off_loop(locks.mark_resolved, Settings.from_env().storage_connection, fired)
    except Exception as err:  # the run is left going: the sender's retry marks the claim and ends it
        raise unavailable(f"noting that alert {printable(alert.rule, 100)} resolved", err) from None
    if not running(await client.get_status(fired)):
        return NOTHING_TO_END
    resolved_at = alert.resolved_at or datetime.now(UTC).isoformat()
    try:
        await raise_while_running(client, fired, "resolved", {"resolvedAt": resolved_at[:40]})
    except ApiError:  # it ended between the look and the event
        return NOTHING_TO_END
    return Answer(fired, {"resolved": True})


class Sweeps:
    """When this host last looked for old claims (monotonic seconds): each host looks on its own, and a claim
    deleted twice is deleted once."""

    last = float("-inf")


async def forget_old_claims(client: df.DurableOrchestrationClient, now: float | None = None) -> list[str]:
    """Delete the claims whose alert resolved more than the retention ago (copies and retries of an alert come
    within minutes), unless their run is still going: a copy could then start its id again. At most
    CLAIMS_PER_SWEEP deletions a turn; a claim skipped does not count."""
    settings = Settings.from_env()
    cutoff = (time.time() if now is None else now) - settings.alert_claim_retention_hours * 3600
    forgotten: list[str] = []
    for claim in await off_loop(locks.resolved_before, settings.storage_connection, cutoff):
        if len(forgotten) >= CLAIMS_PER_SWEEP:
            break
        if claim.etag is not None and running(await client.get_status(claim.key)):  # one never started: no status
            continue  # its marker stays: the next sweep looks again
        if await off_loop(locks.forget_claim, settings.storage_connection, claim):
            CLAIMED.discard(claim.key)
            forgotten.append(claim.key)
    if forgotten:
        log.info("deleted %d alert claim(s) resolved more than %d h ago", len(forgotten),
                 settings.alert_claim_retention_hours)
    return forgotten


async def forget_old_claims_hourly(client: df.DurableOrchestrationClient, monotonic: float | None = None) -> None:
    """The minute timer's hourly turn: a sweep that fails (storage down) is tried again at the next tick."""
    now = time.monotonic() if monotonic is None else monotonic
    if now - Sweeps.last < CLAIM_SWEEP_SECONDS:
        return
    await forget_old_claims(client)
    Sweeps.last = now
