"""`pgha doctor` on the local platform, for real: the stack the session runs passes; each FAIL and WARN is
reached by taking one thing away (a binary, the stack, a port, the service user's Python, disk)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devhost.cli import main
from shared import ports
from shared.platforms.local import doctor
from shared.platforms.local.platform import LocalPlatform
from shared.platforms.local.stack import StackState
from shared.settings import Settings
from shared.spec import ClusterSpec

pytestmark = pytest.mark.integration
SPEC = ClusterSpec(name="doctor-probe")


def checks(platform: LocalPlatform, purpose: Any = "doctor") -> dict[str, Any]:
    return {c.name: c for c in platform.diagnose(SPEC, purpose)}


@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalPlatform:
    """A PGHA_HOME where nothing runs."""
    monkeypatch.setenv("PGHA_HOME", str(tmp_path / "home"))
    return LocalPlatform(Settings.from_env())


@pytest.fixture()
def etcd_saying() -> Iterator[dict[str, Any]]:
    """An HTTP server on loopback answering etcd's /health with what the test puts in."""
    said: dict[str, Any] = {"health": "true"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(said).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    said["port"] = server.server_address[1]
    yield said
    server.shutdown()


def test_the_running_stack_passes(devhost: Any, capsys: pytest.CaptureFixture[str]) -> None:
    found = checks(LocalPlatform(Settings.from_env()))
    passing = {c.verdict for name, c in found.items() if name != "disk"}  # disk: what this machine has free
    assert passing == {"PASS"}, [c.line() for c in found.values()]
    assert "patroni" in found["binaries"].detail and "lists" in found["etcd and Azurite"].detail
    assert main(["doctor", "--platform", "local"]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_a_missing_binary_fails(monkeypatch: pytest.MonkeyPatch, elsewhere: LocalPlatform) -> None:
    monkeypatch.setitem(doctor.BINARIES, "etcd", ["/nonexistent/etcd", "--version"])
    found = checks(elsewhere)["binaries"]
    assert found.verdict == "FAIL" and found.detail.startswith("etcd not found or not runnable: run scripts/setup.sh")
    assert "binaries" not in checks(elsewhere, "teardown"), "a teardown runs none of them"


def test_a_stack_not_running_warns_the_doctor_and_fails_a_runbook(elsewhere: LocalPlatform) -> None:
    assert checks(elsewhere)["etcd and Azurite"].verdict == "WARN"
    refused = checks(elsewhere, "deploy")["etcd and Azurite"]
    assert refused.verdict == "FAIL" and "`pgha up` starts them" in refused.detail


def test_a_stack_that_does_not_answer_fails(elsewhere: LocalPlatform, etcd_saying: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (closed,) = ports.free_ports(1)  # nothing listens there
    state = StackState(etcd_port=etcd_saying["port"], etcd_peer_port=closed, blob_port=closed)
    monkeypatch.setattr(elsewhere.stack, "state", lambda: state)
    monkeypatch.setattr(elsewhere.stack, "running", lambda: {"etcd": True, "azurite": True})
    assert "does not list containers" in checks(elsewhere)["etcd and Azurite"].detail
    etcd_saying["health"] = "false"
    assert "reports" in checks(elsewhere)["etcd and Azurite"].detail
    monkeypatch.setattr(elsewhere.stack, "state", lambda: (_ for _ in ()).throw(ValueError("stack.json: bad JSON")))
    broken = checks(elsewhere)["etcd and Azurite"]  # a check that crashes is a FAIL saying what it was doing
    assert broken.verdict == "FAIL" and broken.detail.startswith("asking etcd and Azurite: ValueError")


def test_the_stacks_ports_taken_by_another_process_fail(elsewhere: LocalPlatform, etcd_saying: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    state = StackState(etcd_port=etcd_saying["port"], etcd_peer_port=1, blob_port=1)
    monkeypatch.setattr(elsewhere.stack, "state", lambda: state)
    found = checks(elsewhere)["ports"]
    assert found.verdict == "FAIL" and f"port(s) {etcd_saying['port']}" in found.detail


def test_a_service_user_that_cannot_run_the_venv_fails(elsewhere: LocalPlatform,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if elsewhere.account is None:
        pytest.skip("not root: members run as this user")
    monkeypatch.setattr(doctor, "_service_users_seen", set())
    monkeypatch.setattr(doctor.sys, "executable", "/nonexistent/python3")
    found = checks(elsewhere)["service user"]
    assert found.verdict == "FAIL" and "make the venv readable" in found.detail


def test_disk_below_the_limits(elsewhere: LocalPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "DISK_WARN_BYTES", 1 << 60)
    assert checks(elsewhere)["disk"].verdict == "WARN"
    monkeypatch.setattr(doctor, "DISK_FAIL_BYTES", 1 << 60)
    assert "needs at least 1 GiB" in checks(elsewhere)["disk"].detail
