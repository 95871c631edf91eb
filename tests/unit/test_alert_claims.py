"""Copies of an alert that arrive while its first delivery is being started on this host wait for that
delivery's outcome instead of racing it to storage; when it fails, a copy starts the run itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.functions as func
import pytest

from shared.alerts import parse_alert
from tests.alert_payloads import METRIC, alert
from triggers import alerts


def request() -> func.HttpRequest:
    return func.HttpRequest(method="POST", url="http://localhost:7071/api/alerts", body=b"", headers={})


def answers(fake: Any, copies: int, monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    monkeypatch.setattr(alerts, "claim_and_start", fake)
    monkeypatch.setattr(alerts, "CLAIMED", alerts.Claimed())
    body = parse_alert(alert(METRIC, name, "pg-claims"))

    async def deliveries() -> list[Any]:
        return await asyncio.gather(*(alerts.respond(request(), None, body) for _ in range(copies)),  # type: ignore[arg-type]
                                    return_exceptions=True)

    return asyncio.run(deliveries())


def test_copies_wait_for_the_delivery_being_started(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def start(req: func.HttpRequest, client: Any, alert: Any, key: str, duplicate: Any) -> func.HttpResponse:
        calls.append(key)
        await asyncio.sleep(0.05)  # the claim and the start, in storage and the durable runtime
        return alerts.accepted(req, key, {"duplicate": False})

    got = answers(start, 20, monkeypatch, "claims-1")
    assert len(calls) == 1
    bodies = [json.loads(a.get_body()) for a in got]
    assert [b["duplicate"] for b in bodies].count(False) == 1
    assert {b["id"] for b in bodies} == {calls[0]} and {a.status_code for a in got} == {202}
    assert not alerts.CLAIMED.claiming


def test_a_copy_starts_the_run_when_the_first_delivery_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def start(req: func.HttpRequest, client: Any, alert: Any, key: str, duplicate: Any) -> func.HttpResponse:
        calls.append(key)
        await asyncio.sleep(0.05)
        if len(calls) == 1:
            raise RuntimeError("the durable runtime did not answer")
        return alerts.accepted(req, key, {"duplicate": False})

    got = answers(start, 5, monkeypatch, "claims-2")
    failed = [a for a in got if isinstance(a, Exception)]
    assert len(calls) == 2 and len(failed) == 1  # the first delivery's 503; one copy started it
    bodies = [json.loads(a.get_body()) for a in got if not isinstance(a, Exception)]
    assert [b["duplicate"] for b in bodies].count(False) == 1 and len(bodies) == 4
    assert not alerts.CLAIMED.claiming
