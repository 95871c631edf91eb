"""Fuzz: schemathesis draws requests from /api/openapi.json — valid ones and, for every route, ones that
break its schema — and sends them to the devhost wired to the **scripted platform** (a test double:
generated requests must never build real clusters or kill real primaries). No answer may be a 5xx
and none may hang; every error body keeps the one shape `{code, message, field?}`.

Deterministic (derandomized) so a CI failure reproduces; FUZZ_EXAMPLES scales it up locally.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from shared.platforms import installed
from tests.scripted_platform import ScriptedPlatform
from triggers.openapi import document

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # per operation and mode: ≥ 500 requests in all
TIMEOUT = 20.0


@pytest.fixture()
def scripted() -> Iterator[ScriptedPlatform]:
    with installed(ScriptedPlatform()) as platform:
        yield platform  # type: ignore[misc]


def operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(document())
    return [result.ok() for result in schema.get_all_operations()]


def exercise(strategy: Any, send: Callable[[Any], None]) -> None:
    """Draw up to EXAMPLES cases from `strategy`, deterministically, and send each."""

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        send(data.draw(strategy))

    run()


def test_generated_requests_never_get_a_5xx_or_hang(devhost: Any, scripted: ScriptedPlatform) -> None:
    seen: Counter[int] = Counter()
    failures: list[str] = []
    session = requests.Session()
    session.headers["x-functions-key"] = devhost.key

    def send(case: Any) -> None:
        what = f"{case.method} {case.formatted_path}"
        try:
            response = case.call(base_url=f"{devhost.url}/api", session=session, timeout=TIMEOUT)
        except requests.Timeout:
            failures.append(f"hang: {what}")
            return
        seen[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{response.status_code}: {what} {response.text[:300]}")
        elif response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            body = response.json()
            if not (isinstance(body, dict) and {"code", "message"} <= set(body)):
                failures.append(f"error shape: {what} {response.text[:200]}")

    for operation in operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                exercise(operation.as_strategy(generation_mode=mode), send)
            except Unsatisfiable:  # no request breaks a schema with nothing in it (GET /health)
                assert mode == GenerationMode.NEGATIVE, operation.label
    total = sum(seen.values())
    print(f"fuzz: {total} requests, answers {dict(sorted(seen.items()))}, {len(failures)} failures")
    assert not failures, "\n".join(failures[:20])
    assert total >= 500
    assert any(200 <= code < 300 for code in seen), "some generated requests must be valid ones"
