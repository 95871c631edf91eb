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

    def __init__(self, logs: Path) -> None:
        import sys

        from shared.platforms.local.processes import free_ports

        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout, self.stderr = logs / "devhost.out", logs / "devhost.err"
        self.argv = [sys.executable, "-m", "devhost.cli", "serve", "--port", str(self.port)]
        self.process: Any = None

    def __enter__(self) -> ServedDevhost:
        import os
        import subprocess

        from shared.platforms.local.processes import wait_for_port

        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=err, env=os.environ.copy(),
                                            cwd=Path(__file__).parents[2])
        wait_for_port(self.port, 60, "pgha serve", self.process.pid, self.stderr)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def client(self, **options: Any) -> Any:
        """A client carrying the devhost's function key, read where `pgha serve` keeps it."""
        import os

        from devhost.host import keyed_client
        from devhost.keys import function_key

        return keyed_client(self.url, function_key(Path(os.environ["PGHA_HOME"])), **options)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")
