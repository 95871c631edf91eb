"""Process hygiene: a daemon pgha started and that ended is reaped, never left <defunct>."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from shared.platforms.local import processes


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
