"""What deploy's baseline (b) reads and runs by hand, as an operator's script on this machine would.

The local platform's state under PGHA_HOME, read from its files as the integration tests read it
(tests/integration/helpers.py): `clusters/<ns>/<name>/cluster.json` (members and their ports),
`internal-passwords.json` (the superuser's), `ca.crt` (the cluster's CA) and `secrets/<ns>/<secret>` (the app
user's); the stack's ports from `stack/stack.json` through the stack module's public Stack. Nothing here calls
a private name of LocalPlatform (its insides are being reorganised): the baselines stay as they are. Restore's
(b) uses only the stack's pre-flight and the wait from here; the rest it does through the public Platform.

Every wait polls every 0.1 s and ends in an AssertionError naming what it waited for and what it last saw.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import psycopg
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.platforms.local.stack import Stack, StackState

T = TypeVar("T")
POLL = 0.1


def until(what: str, look: Callable[[], tuple[T | None, str]], timeout: float) -> T:
    """Call `look` every 0.1 s until it answers a value (not None); `look` also says what it saw."""
    deadline = time.monotonic() + timeout
    while True:
        value, seen = look()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last seen: {seen})")
        time.sleep(POLL)


@dataclass(frozen=True)
class Member:
    name: str
    pg_port: int
    rest_port: int


@dataclass(frozen=True)
class Cluster:
    """One cluster of the local platform, by its files under PGHA_HOME."""

    home: Path
    namespace: str
    name: str

    @property
    def dir(self) -> Path:
        return self.home / "clusters" / self.namespace / self.name

    def state(self) -> dict:
        return json.loads((self.dir / "cluster.json").read_text())

    def members(self) -> list[Member]:
        members = self.state()["members"]
        return [Member(name, ports["pgPort"], ports["restPort"])
                for name, ports in sorted(members.items(), key=lambda kv: int(kv[0].rsplit("-", 1)[1]))]

    def superuser(self, member: Member, connect_timeout: int = 3) -> psycopg.Connection:
        """The superuser over TCP with its password, as the platform's own sessions are (TLS as libpq prefers)."""
        password = json.loads((self.dir / "internal-passwords.json").read_text())["superuser"]
        return psycopg.connect(host="127.0.0.1", port=member.pg_port, user="postgres", password=password,
                               dbname="postgres", autocommit=True, connect_timeout=connect_timeout)

    def app(self, role: Literal["rw", "ro"]) -> psycopg.Connection:
        """The app user through the rw or ro service: every member in one libpq string, TLS verified against
        the cluster's CA (as `psql` with the runbook's connection string)."""
        bootstrap = self.state()["spec"]["bootstrap"]
        ports = [str(m.pg_port) for m in self.members()]
        secret = self.home / "secrets" / self.namespace / bootstrap["secretName"]
        return psycopg.connect(host=",".join("127.0.0.1" for _ in ports), port=",".join(ports),
                               dbname=bootstrap["database"], user=bootstrap["owner"],
                               password=json.loads(secret.read_text())["password"],
                               target_session_attrs="read-write" if role == "rw" else "standby",
                               sslmode="verify-ca", sslrootcert=str(self.dir / "ca.crt"), connect_timeout=3)


def stack(home: Path) -> StackState:
    return Stack(home).require()


def blob_container(home: Path, container: str) -> ContainerClient:
    return ContainerClient.from_connection_string(stack(home).connection_string, container)


def preflight_stack(home: Path) -> None:
    """Before anything is made: etcd healthy, Azurite answering for Blob storage, 1 GiB free under PGHA_HOME."""
    state = stack(home)
    health = httpx.get(f"http://127.0.0.1:{state.etcd_port}/health", timeout=3).json()
    assert str(health.get("health")) == "true", f"etcd: {health}"
    list(BlobServiceClient.from_connection_string(state.connection_string).list_containers(results_per_page=10))
    free = shutil.disk_usage(home).free
    assert free >= 1 << 30, f"{free} bytes free under {home}"


QUORUM = re.compile(r"^ANY (\d+) \((.*)\)$")


def named_standbys(setting: str) -> tuple[int, set[str]] | None:
    """`ANY 1 ("a","b")` as (1, {a, b}); None for anything else (empty, `*`, a priority list)."""
    match = QUORUM.match(setting.strip())
    if not match:
        return None
    names = {n.strip().strip('"') for n in match.group(2).split(",")}
    return (int(match.group(1)), names) if "*" not in names else None
