"""What pgha starts, `pgha down` stops: no process of ours is left."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]

START_CLUSTER = """
import time
from shared.platforms.local.platform import LocalPlatform
from shared.settings import Settings
from shared.spec import ClusterSpec
platform = LocalPlatform(Settings.from_env())
spec = ClusterSpec(name="down", instances=2, postgresql={"parameters": {"shared_buffers": "32MB"}})
platform.preflight_backup_destination(spec)
platform.ensure_app_secret(spec)
platform.apply_cluster(spec)
deadline = time.monotonic() + 120
while not platform.cluster_status("default", "down").healthy:
    assert time.monotonic() < deadline
    time.sleep(0.5)
"""


def processes_under(path: Path, scope: str = "default--down") -> list[str]:
    """Every process naming the state directory, or titled with the cluster's scope (PostgreSQL's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline or f"postgres: {scope}" in cmdline:
            found.append(f"{entry.name}: {cmdline[:150]}")
    return found


def test_down_stops_every_process(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="pgha-down-", dir="/tmp"))
    os.chmod(home, 0o755)
    env = {**os.environ, "PGHA_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("AzureWebJobsStorage", None)

    def pgha(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "devhost.cli", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        assert "etcd" in pgha("up")
        subprocess.run([sys.executable, "-c", START_CLUSTER], env=env, cwd=ROOT, check=True, timeout=180)
        running = processes_under(home)
        assert any("etcd" in p for p in running) and any("azurite" in p for p in running)
        assert sum("patroni" in p for p in running) == 2 and sum("postgres -D" in p for p in running) == 2
        assert any("checkpointer" in p for p in running)  # the scope finds PostgreSQL's own children
        assert sum("postgres-exporter" in p for p in running) == 2  # one per member
        assert any("prometheus.yml" in p for p in running) and any("alertmanager.yml" in p for p in running)
        status = pgha("status")
        assert "down-1" in status
        # the fleet, from the reports kept in Azurite: this cluster was never verified, and says so
        assert "fleet (what needs attention first):" in status and "default/down: PROBLEM: no verified backup" in status

        stopped = pgha("down")
        assert "down-1" in stopped and "etcd" in stopped and "azurite" in stopped and "prometheus" in stopped
        assert processes_under(home) == []
        assert "nothing was running" in pgha("down")  # idempotent
    finally:
        subprocess.run([sys.executable, "-m", "devhost.cli", "down"], env=env, cwd=ROOT, capture_output=True)
        subprocess.run(["rm", "-rf", str(home)])
