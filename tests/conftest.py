"""Fixtures: one local stack and one devhost per test session, in a state directory of their own."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HOME = Path(tempfile.mkdtemp(prefix="pgha-test-", dir="/tmp"))
os.chmod(HOME, 0o755)  # the service user running PostgreSQL must traverse it
os.environ.update({
    "PGHA_HOME": str(HOME),
    "PGHA_PLATFORM": "local",
    "PGHA_POLL_SECONDS": "1",
    "PGHA_ACTIVITY_RETRY_SECONDS": "1",
    "PGHA_RETRY_AFTER_SECONDS": "1",
})
os.environ.pop("AzureWebJobsStorage", None)
os.environ.pop("PGHA_STORAGE_CONNECTION", None)


@pytest.fixture(scope="session")
def home() -> Path:
    return HOME


@pytest.fixture(scope="session", autouse=True)
def local_stack() -> Iterator[None]:
    """Whatever a test started under this session's PGHA_HOME is stopped when the session ends."""
    yield
    from shared.platforms.local.platform import LocalPlatform
    from shared.settings import Settings

    LocalPlatform(Settings.from_env()).stop_all()
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def devhost() -> Iterator[Any]:
    from devhost.host import DevHost
    from shared.ports import free_ports

    (port,) = free_ports(1)
    host = DevHost(port=port).start()
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture()
def api(devhost: Any) -> Iterator[httpx.Client]:
    with devhost.client() as client:
        yield client


def start(client: httpx.Client, method: str, url: str, **kwargs: Any) -> str:
    """Ask for a run: its 202 and the Location to follow."""
    started = client.request(method, url, **kwargs)
    assert started.status_code == 202, started.text
    return started.headers["Location"]


def at_step(client: httpx.Client, location: str, *steps: str, timeout: float = 90) -> dict[str, Any]:
    """Poll an operation until its custom status says it is at one of `steps` (to act at a chosen moment)."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = client.get(location)
        status = answer.json()
        if (status.get("customStatus") or {}).get("step") in steps:
            return status
        if answer.status_code not in (202, 404):  # the run ended before it got there (404: not started yet)
            break
        time.sleep(0.02)
    raise AssertionError(f"never reached {steps!r}: {status}")


def follow(client: httpx.Client, location: str, timeout: float = 300) -> httpx.Response:
    """Poll an operation's Location as a client would, until it stops answering 202."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        response = client.get(location)
        if response.status_code != 202:
            return response
        assert response.headers["Retry-After"] == "1"
        last = response.json().get("customStatus")
        time.sleep(0.3)
    raise AssertionError(f"{location} still running after {timeout}s, at {last}")


def report_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return body if response.status_code == 200 else body["report"]


def step(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in report["steps"] if s["name"] == name)



def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault-injection table, when fault tests ran (tests/integration/faults.py), and the alert loop's
    latencies, when its tests ran (tests/integration/test_alerts_local.py)."""
    from tests.integration import faults, test_alerts_local

    if faults.TABLE:
        terminalreporter.write_sep("-", "faults injected")
        terminalreporter.write_line(faults.markdown())
    if test_alerts_local.LATENCIES:
        terminalreporter.write_sep("-", "alert loop: fault → alert received → report")
        terminalreporter.write_line(test_alerts_local.latency_table())
