"""Process hygiene: a daemon pgha started and that ended is reaped, never left <defunct>."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from shared.platforms.local import processes


def state_of(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_an_ended_daemon_is_reaped_and_no_other_child_is_touched(tmp_path: Path) -> None:
    daemon = processes.Daemon(tmp_path / "short.pid", "pgha-test-short")
    pid = processes.spawn(["sh", "-c", "exit 0", "pgha-test-short"], tmp_path / "short.log", daemon)
    for _ in range(100):
        if state_of(pid) == "Z":
            break
        time.sleep(0.02)
    assert state_of(pid) == "Z", "ended, not yet collected"
    assert pid in processes.reap_exited()
    assert state_of(pid) is None, "collected: no <defunct> left"
    assert processes.reap_exited() == [], "each daemon once"
    assert subprocess.run(["sh", "-c", "exit 3"]).returncode == 3, "a subprocess's own exit status is untouched"
