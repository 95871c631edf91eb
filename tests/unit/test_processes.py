"""Process hygiene: a daemon pgha started and that ended is reaped, never left <defunct>."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from shared.platforms.local import processes
from shared.settings import Settings


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_an_ended_daemon_is_reaped_and_no_other_child_is_touched(tmp_path: Path) -> None:
    """Whoever reaps it (this test, or the session devhost's reaper thread), it is collected at once and
    only once; a subprocess's own exit status stays its own."""
    daemon = processes.Daemon(tmp_path / "short.pid", "pgha-test-short")
    pid = processes.spawn(["sh", "-c", "exit 0", "pgha-test-short"], tmp_path / "short.log", daemon)
    assert pid in processes._spawned
    deadline = time.monotonic() + 5
    while not gone(pid) and time.monotonic() < deadline:
        processes.reap_exited()
        time.sleep(0.02)
    assert gone(pid), "collected: no <defunct> left"
    assert pid not in processes._spawned and pid not in processes.reap_exited()
    assert subprocess.run(["sh", "-c", "exit 3"]).returncode == 3


def test_a_daemon_is_recognised_as_running_from_the_moment_spawn_returns(tmp_path: Path) -> None:
    """Through the same wrappers as a backup (setpriv when root, then a shell): each exec leaves the command line
    empty for a moment, and a backup polled in that moment was once failed as 'ended without a status'."""
    account = processes.service_account(Settings.from_env().service_user)
    tmp_path.chmod(0o777)
    misread = []
    for n in range(30):
        daemon = processes.Daemon(tmp_path / f"b{n}.pid", f"-n b{n} ")
        processes.spawn(["/bin/sh", "-c", f": -n b{n} ; sleep 5; echo $? > {tmp_path}/b{n}.rc"],
                        tmp_path / f"b{n}.log", daemon, account=account, cwd=tmp_path)
        watched = time.monotonic()
        while time.monotonic() - watched < 0.03:
            if not daemon.running:
                misread.append(n)
                break
        processes.stop(daemon, timeout=5, group=True)
    assert not misread, f"taken for ended in their first 30 ms: {misread}"


def test_a_stale_pid_file_naming_a_kernel_thread_is_answered_at_once(tmp_path: Path) -> None:
    """A pid file left by a daemon that died, its pid now a kernel thread's (command line empty for good): not
    running, and no wait for an exec that never comes (every status poll reads these)."""
    kthreadd = 2  # the kernel's thread creator: pid 2 on Linux
    if not processes.kernel_thread(kthreadd):
        pytest.skip("pid 2 is not a kernel thread here (a pid namespace without one)")
    (tmp_path / "stale.pid").write_text(str(kthreadd))
    asked = time.monotonic()
    assert not processes.Daemon(tmp_path / "stale.pid", "patroni.yml").running
    assert time.monotonic() - asked < 0.1
