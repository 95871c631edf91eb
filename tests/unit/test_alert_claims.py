"""Copies of an alert that arrive while its first delivery is being started on this host wait for that
delivery's outcome instead of racing it to storage; when it fails, a copy starts the run itself."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared.alerts import parse_alert, parse_alerts
from tests.alert_payloads import METRIC, alert
from triggers import alerts
from triggers.responses import ApiError


def request() -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://localhost:7071/api/alerts", body=b"", headers={})


def answers(fake: Any, copies: int, monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    monkeypatch.setattr(alerts, "claim_and_start", fake)
    monkeypatch.setattr(alerts, "CLAIMED", alerts.Claimed())
    body = parse_alert(alert(METRIC, name, "pg-claims"))

    async def deliveries() -> list[Any]:
        return await asyncio.gather(*(alerts.respond(None, body) for _ in range(copies)),  # type: ignore[arg-type]
                                    return_exceptions=True)

    return asyncio.run(deliveries())


def test_copies_wait_for_the_delivery_being_started(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def start(client: Any, alert: Any, key: str, duplicate: Any) -> alerts.Answer:
        calls.append(key)
        await asyncio.sleep(0.05)  # the claim and the start, in storage and the durable runtime
        return alerts.Answer(key, {"duplicate": False})

    got = answers(start, 20, monkeypatch, "claims-1")
    assert len(calls) == 1
    bodies = [a.described(request()) for a in got]
    assert [b["duplicate"] for b in bodies].count(False) == 1
    assert {b["id"] for b in bodies} == {calls[0]}
    assert not alerts.CLAIMED.claiming


def test_copies_of_a_delivery_that_fails_are_answered_503_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def start(client: Any, alert: Any, key: str, duplicate: Any) -> alerts.Answer:
        calls.append(key)
        await asyncio.sleep(0.05)
        raise RuntimeError("the durable runtime did not answer")

    got = answers(start, 5, monkeypatch, "claims-2")
    assert len(calls) == 1  # no copy queues behind it for its own try: the senders retry
    assert sum(isinstance(a, RuntimeError) for a in got) == 1
    refused = [a.response() for a in got if isinstance(a, ApiError)]  # receive_alert answers each as it is
    assert len(refused) == 4 and {a.status_code for a in refused} == {503}, got
    assert not alerts.CLAIMED.claiming and calls[0] not in alerts.CLAIMED


def test_a_claim_held_elsewhere_is_not_taken_as_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the grace a claim held by another delivery answers a duplicate but is not remembered as started
    here (that delivery may yet fail and give it back); past the grace, with no run, this delivery starts it."""
    monkeypatch.setattr(alerts, "CLAIMED", alerts.Claimed())
    monkeypatch.setattr(alerts.locks, "claim", lambda connection, key: False)
    claimed_at = [time.time()]
    monkeypatch.setattr(alerts.locks, "claimed_at", lambda connection, key: claimed_at[0])
    started: list[str] = []

    async def not_started(client: Any, key: str) -> bool:
        return False

    async def start_run(client: Any, settings: Any, plan: Any, key: str, callback: Any = None) -> str:
        started.append(key)
        return key

    monkeypatch.setattr(alerts, "started", not_started)
    monkeypatch.setattr(alerts, "start_run", start_run)
    body = parse_alert(alert(METRIC, "claims-3", "pg-claims"))
    first = asyncio.run(alerts.respond(None, body))  # type: ignore[arg-type]
    assert first.body["duplicate"] is True and not started
    assert first.operation_id not in alerts.CLAIMED
    claimed_at[0] = time.time() - 3600  # its starter never started it
    second = asyncio.run(alerts.respond(None, body))  # type: ignore[arg-type]
    assert second.body["duplicate"] is False and len(started) == 1


def test_one_alert_of_a_group_that_fails_leaves_the_others_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's delivery is a 503 (Alertmanager sends it again), but every other alert was answered first:
    the retry finds them as duplicates, and only the failed one is tried anew."""
    captured = Path(__file__).parents[1] / "contract" / "fixtures" / "alertmanager" / "firing.json"
    body = json.loads(captured.read_text())
    for n in (1, 2):
        other = json.loads(json.dumps(body["alerts"][0]))
        other["fingerprint"], other["labels"]["cnpg_io_cluster"] = f"{n:016x}", f"pg-{n}"
        body["alerts"].append(other)
    tried: list[str] = []

    async def respond(client: Any, alert: Any) -> alerts.Answer:
        tried.append(alert.fingerprint)
        if alert.fingerprint == body["alerts"][1]["fingerprint"]:
            raise RuntimeError("the durable runtime did not answer")
        return alerts.Answer(alert.fingerprint, {"duplicate": False})

    monkeypatch.setattr(alerts, "respond", respond)
    with pytest.raises(ApiError) as refused:
        asyncio.run(alerts.answer_group(None, parse_alerts(body)))  # type: ignore[arg-type]
    assert refused.value.status == 503
    assert tried == [a["fingerprint"] for a in body["alerts"]]  # the one after the failure was answered too
    alone = json.loads(captured.read_text())  # a group that all goes well: an answer per alert
    answered = asyncio.run(alerts.answer_group(None, parse_alerts(alone)))  # type: ignore[arg-type]
    assert [a.operation_id for a in answered] == [alone["alerts"][0]["fingerprint"]]


def test_the_timer_looks_for_old_claims_once_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[Any] = []

    async def forget(client: Any, now: float | None = None) -> list[str]:
        looked.append(client)
        return []

    monkeypatch.setattr(alerts, "forget_old_claims", forget)
    monkeypatch.setattr(alerts.Sweeps, "last", float("-inf"))
    for minutes in (0, 1, 59):  # the timer's ticks
        asyncio.run(alerts.forget_old_claims_hourly("client", 1000.0 + minutes * 60))  # type: ignore[arg-type]
    assert len(looked) == 1
    asyncio.run(alerts.forget_old_claims_hourly("client", 1000.0 + 3600))  # type: ignore[arg-type]
    assert len(looked) == 2


def test_a_sweep_that_fails_is_tried_again_at_the_next_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[float] = []

    async def forget(client: Any, now: float | None = None) -> list[str]:
        tries.append(time.monotonic())
        if len(tries) == 1:
            raise RuntimeError("storage did not answer")
        return []

    monkeypatch.setattr(alerts, "forget_old_claims", forget)
    monkeypatch.setattr(alerts.Sweeps, "last", float("-inf"))
    with pytest.raises(RuntimeError):
        asyncio.run(alerts.forget_old_claims_hourly("client", 5000.0))  # type: ignore[arg-type]
    asyncio.run(alerts.forget_old_claims_hourly("client", 5060.0))  # type: ignore[arg-type]
    assert len(tries) == 2
