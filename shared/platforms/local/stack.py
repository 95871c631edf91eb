"""The local stack's shared services: one etcd (Patroni's DCS), one Azurite (the object store), and
monitoring (Prometheus and Alertmanager, monitoring.py).

`up` is idempotent and records the ports it chose in `stack.json`; `down` stops what `up` started, and the
WAL service (archive.py), which the first cluster applied starts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shared import ports
from shared.alert_rules import PACES, Pace
from shared.platforms.local import processes
from shared.platforms.local.monitoring import Monitoring

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key, published with the emulator; not a secret.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PG_BIN = Path(os.environ.get("PGHA_PG_BIN", "/usr/lib/postgresql/15/bin"))
TOOLS_BIN = Path(sys.executable).parent


def azurite_command() -> str:
    found = os.environ.get("PGHA_AZURITE") or shutil.which("azurite-blob")
    if found:
        return found
    bundled = Path(os.environ.get("PGHA_OPT", "/opt/pgha")) / "node/node_modules/.bin/azurite-blob"
    return str(bundled)


@dataclass(frozen=True)
class StackState:
    etcd_port: int
    etcd_peer_port: int
    blob_port: int

    @property
    def etcd_hosts(self) -> str:
        return f"127.0.0.1:{self.etcd_port}"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


def pace_from_env() -> Pace:
    """PGHA_MONITORING_PACE: `standard` (the default) or `quick`; anything else is refused by name."""
    name = os.environ.get("PGHA_MONITORING_PACE") or "standard"
    if name not in PACES:
        raise ValueError(f"setting PGHA_MONITORING_PACE must be one of {', '.join(PACES)}, got {name!r}")
    return PACES[name]


class Stack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "stack"
        self.state_file = self.dir / "stack.json"
        self.monitoring = Monitoring(home)

    def state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None

    def require(self) -> StackState:
        state = self.state()
        if state is None or not self.running():
            raise RuntimeError(f"the local stack is not up (PGHA_HOME={self.home}): run `pgha up` first")
        return state

    def daemon(self, name: str) -> processes.Daemon:
        return processes.Daemon(self.dir / f"{name}.pid", str(self.dir / name))

    def wal_daemon(self) -> processes.Daemon:
        """The WAL service (archive.py starts it): marked by its server script, which the clients' command
        lines (`…/wal/client.py`) do not contain."""
        return processes.Daemon(self.dir / "wal.pid", str(self.dir / "wal" / "server.py"))

    def running(self) -> dict[str, bool]:
        if not self.dir.exists():
            return {}
        return {**{name: self.daemon(name).running for name in ("etcd", "azurite")},
                **{name: self.monitoring.daemon(name).running for name in ("prometheus", "alertmanager")}}

    def up(self) -> StackState:
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o755)
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self.state()
        running = self.running()
        missing = [name for name in ("etcd", "azurite") if state is None or not running.get(name)]
        if missing:
            # only what is down restarts: every member of every cluster holds a session with a running etcd
            processes.stop_all([self.daemon(name) for name in missing])
            held = {"etcd": [state.etcd_port, state.etcd_peer_port], "azurite": [state.blob_port]} if state else {}
            busy = [p for name in missing for p in held.get(name, []) if ports.port_open(p)]
            if busy and any((self.home / "clusters").glob("*/*/cluster.json")):
                # members are configured with these ports: moving them would cut members off etcd and Azurite
                raise RuntimeError(f"port(s) {', '.join(map(str, busy))} of this stack are taken by another "
                                   "process; free them and run `pgha up` again")
            if state is None or busy:
                # the WAL service holds Azurite's address from its start: it goes with the old ports
                processes.stop_all([self.daemon("etcd"), self.daemon("azurite"), self.wal_daemon()])
                etcd, peer, blob = ports.free_ports(3)
                state = StackState(etcd_port=etcd, etcd_peer_port=peer, blob_port=blob)
                self.state_file.write_text(json.dumps(state.__dict__))
                missing = ["etcd", "azurite"]
            if "etcd" in missing:
                self._start_etcd(state)
            if "azurite" in missing:
                self._start_azurite(state)
        self.monitoring.up(pace_from_env())
        return state

    def _start_etcd(self, state: StackState) -> None:
        client = f"http://127.0.0.1:{state.etcd_port}"
        peer = f"http://127.0.0.1:{state.etcd_peer_port}"
        log = self.dir / "etcd.log"
        pid = processes.spawn(
            ["etcd", "--name", "pgha", "--data-dir", str(self.dir / "etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"pgha={peer}", "--log-level", "warn"],
            log, self.daemon("etcd"), env={**os.environ, "ETCD_UNSUPPORTED_ARCH": os.uname().machine},
        )
        processes.wait_for_port(state.etcd_port, 20, "etcd", pid, log)

    def _start_azurite(self, state: StackState) -> None:
        log = self.dir / "azurite.log"
        pid = processes.spawn(
            [azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", str(state.blob_port),
             "--location", str(self.dir / "azurite"), "--skipApiVersionCheck", "--disableTelemetry",
             "--loose", "--silent"],
            log, self.daemon("azurite"),
        )
        processes.wait_for_port(state.blob_port, 30, "Azurite", pid, log)

    def down(self) -> list[str]:
        stopped = ["wal"] if processes.stop(self.wal_daemon()) else []
        stopped += self.monitoring.down()
        return stopped + [name for name in ("azurite", "etcd") if processes.stop(self.daemon(name))]
