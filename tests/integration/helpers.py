"""Independent looks at a local cluster: its recorded ports and passwords, straight from PGHA_HOME."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from shared.platforms.local.stack import Stack


def cluster_state(home: Path, name: str, namespace: str = "default") -> dict[str, Any]:
    return json.loads((home / "clusters" / namespace / name / "cluster.json").read_text())


def superuser(home: Path, name: str, port: int, namespace: str = "default") -> psycopg.Connection:
    password = json.loads((home / "clusters" / namespace / name / "internal-passwords.json").read_text())["superuser"]
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres",
                           autocommit=True, connect_timeout=5)


def app_password(home: Path, secret: str = "db-user-pass", namespace: str = "default") -> str:
    return json.loads((home / "secrets" / namespace / secret).read_text())["password"]


def app_connection(home: Path, name: str, attrs: str, namespace: str = "default") -> psycopg.Connection:
    ports = [m["pgPort"] for m in cluster_state(home, name, namespace)["members"].values()]
    return psycopg.connect(
        host=",".join("127.0.0.1" for _ in ports), port=",".join(map(str, ports)), dbname="appdb", user="app",
        password=app_password(home, namespace=namespace), target_session_attrs=attrs, connect_timeout=5,
    )


def archived_segments(home: Path, server: str, container: str = "backups") -> list[str]:
    from shared import objectstore

    client = objectstore.container(Stack(home).require().connection_string, container)
    return objectstore.list_names(client, f"{server}/wals/")


class ServedDevhost:
    """`pgha serve` in a process of its own, its stdout and stderr kept in files, as an operator runs it."""

    def __init__(self, logs: Path, home: Path | None = None, hub: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        """With `home`, a stack of its own (its own etcd and Azurite), not the session's; `hub`, the task hub it
        keeps its runs in (one of its own unless named: the session's in-process devhost holds `pgha`)."""
        import os
        import sys

        from shared.ports import free_ports

        self.home = home or Path(os.environ["PGHA_HOME"])
        (self.port,) = free_ports(1)
        self.hub = hub or f"served{self.port}"
        self.env = env or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout, self.stderr = logs / "devhost.out", logs / "devhost.err"
        self.argv = [sys.executable, "-m", "devhost.cli", "serve", "--port", str(self.port)]
        self.process: Any = None

    def __enter__(self) -> ServedDevhost:
        return self.start()

    def start(self) -> ServedDevhost:
        import os
        import subprocess

        from shared.platforms.local.processes import wait_for_port

        with open(self.stdout, "ab") as out, open(self.stderr, "ab") as err:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                            env={**os.environ, "PGHA_HOME": str(self.home),
                                                 "PGHA_TASK_HUB": self.hub, **self.env},
                                            cwd=Path(__file__).parents[2])
        wait_for_port(self.port, 60, "pgha serve", self.process.pid, self.stderr)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crashed host: nothing of it runs its shutdown (the members it started go on)."""
        import signal

        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def client(self, **options: Any) -> Any:
        """A client carrying the devhost's function key, read where `pgha serve` keeps it."""
        from devhost.host import keyed_client
        from devhost.keys import function_key

        return keyed_client(self.url, function_key(self.home), **options)

    def down(self) -> None:
        """`pgha down` for its home: every member, etcd and Azurite it started."""
        import os
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "devhost.cli", "down"], env={**os.environ, "PGHA_HOME": str(self.home)},
                       cwd=Path(__file__).parents[2], check=True, capture_output=True, timeout=120)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def processes_under(path: Path | str) -> list[str]:
    """Live processes whose command line names `path` (a cluster's members, their PostgreSQL, a backup)."""
    from shared.platforms.local.processes import naming

    return [f"{pid} {argv[:200]}" for pid, argv in naming(str(path))]


def wait_for_member(home: Path, namespace: str, prefix: str, timeout: float = 60) -> tuple[str, Path]:
    """The first cluster named `prefix…` in `namespace` whose first member's Patroni runs: its name and dir."""
    import time

    from shared.platforms.local import processes

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for cluster in sorted((home / "clusters" / namespace).glob(f"{prefix}*")):
            pids = sorted((cluster / "pids").glob("*.pid")) if (cluster / "pids").exists() else []
            if pids and processes.alive(processes.read_pid(pids[0])):
                return cluster.name, cluster
        time.sleep(0.1)
    raise AssertionError(f"no member of {namespace}/{prefix}* started within {timeout}s")


def until_healthy(api: Any, name: str, namespace: str = "default", timeout: float = 90) -> dict[str, Any]:
    """Polls pgha's own view until the cluster is whole again (every instance ready) and still is a few HA loops
    later (a standby that caught up may leave the synchronous set for a moment, as the runbooks' wait_settled
    says): a test that disturbed a module-shared cluster leaves it as it found it, so the next test's pre-flight
    does not meet the tail of this one's recovery."""
    import time

    from orchestrations.steps import SETTLE_SECONDS

    deadline = time.monotonic() + timeout
    healthy_since: float | None = None
    while True:
        answer = api.get(f"/api/clusters/{name}", params={"namespace": namespace})
        assert answer.status_code == 200, answer.text
        status = answer.json()
        now = time.monotonic()
        healthy_since = (healthy_since or now) if status.get("healthy") else None
        if healthy_since is not None and now - healthy_since >= SETTLE_SECONDS:
            return status
        assert now < deadline, f"{namespace}/{name} never stayed healthy: {status.get('phase')}, " \
                               f"{status.get('readyInstances')}/{status.get('instances')} ready"
        time.sleep(0.5)
