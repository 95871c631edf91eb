"""The doctor on the local platform: the stack's binaries and versions, etcd and Azurite answering, ports,
the service user's reach into the venv, and disk under PGHA_HOME. Read-only, each one line with its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

from shared import objectstore, ports
from shared.doctor import Check, Purpose, fail, guarded, passed, warn
from shared.platforms.local import patroni
from shared.platforms.local.stack import PG_BIN, TOOLS_BIN, azurite_command
from shared.spec import ClusterSpec

if TYPE_CHECKING:
    from shared.platforms.local.platform import LocalPlatform

GIB = 1 << 30
DISK_FAIL_BYTES = 1 * GIB  # below this a base backup and a restore do not fit
DISK_WARN_BYTES = 5 * GIB
SETUP = "run scripts/setup.sh (./pgha does)"
_service_users_seen: set[str] = set()
_versions: dict[tuple[str, ...], str] = {}
BINARIES: dict[str, list[str]] = {  # what the stack runs, and how each says its version
    "postgres": [str(PG_BIN / "postgres"), "--version"],
    "patroni": [str(TOOLS_BIN / "patroni"), "--version"],
    "etcd": ["etcd", "--version"],
    "barman-cloud-backup": [str(TOOLS_BIN / "barman-cloud-backup"), "--version"],
    "azurite-blob": [azurite_command(), "--version"],
    "prometheus": ["prometheus", "--version"],
    "alertmanager": ["prometheus-alertmanager", "--version"],
    "postgres_exporter": ["prometheus-postgres-exporter", "--version"],
}


def examine(platform: LocalPlatform, spec: ClusterSpec, purpose: Purpose = "doctor") -> list[Check]:
    """A teardown stops processes and removes etcd keys and files: it needs the stack, nothing else here."""
    looks: list[tuple[str, Callable[[], Check], str]] = [
        ("etcd and Azurite", lambda: stack_check(platform, purpose), "asking etcd and Azurite")]
    if purpose != "teardown":
        looks = [("binaries", binaries_check, "running the stack's binaries"), *looks,
                 ("monitoring", lambda: monitoring_check(platform, spec, purpose),
                  "asking Prometheus and Alertmanager"),
                 ("ports", lambda: ports_check(platform, spec), "looking for free ports"),
                 ("service user", lambda: service_user_check(platform), "running the venv as the service user"),
                 ("disk", lambda: disk_check(platform), f"reading free space under {platform.home}")]
    return [check for name, look, doing in looks for check in guarded(name, look, doing)]


def version_of(command: tuple[str, ...]) -> str | None:
    """The version a binary prints; remembered once found (asking costs a process), never while missing, so
    a fix (scripts/setup.sh) is seen at the next look."""
    if command in _versions:
        return _versions[command]
    if not (shutil.which(command[0]) or os.access(command[0], os.X_OK)):
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    words = (out.stdout or out.stderr).split()
    _versions[command] = next((w.strip(",") for w in words if w[:1].isdigit()), "?")
    return _versions[command]


def binaries_check() -> Check:
    with ThreadPoolExecutor(max_workers=len(BINARIES)) as pool:  # the process start-ups, side by side
        versions = pool.map(lambda command: version_of(tuple(command)), BINARIES.values())
    found = dict(zip(BINARIES, versions, strict=True))
    missing = [name for name, version in found.items() if version is None]
    if missing:
        return fail("binaries", f"{', '.join(missing)} not found or not runnable: {SETUP}")
    return passed("binaries", ", ".join(f"{name} {version}" for name, version in found.items()))


def stack_up(running: dict[str, bool]) -> bool:
    """etcd and Azurite (monitoring has a check of its own)."""
    return bool(running.get("etcd")) and bool(running.get("azurite"))


def stack_check(platform: LocalPlatform, purpose: Purpose) -> Check:
    """etcd's /health and Azurite's container listing; not running is a WARN for the doctor (a deploy from the
    devhost starts the stack first), a FAIL for a runbook's pre-flight."""
    state = platform.stack.state()
    running = platform.stack.running()
    if state is None or not stack_up(running):
        down = ", ".join(n for n in ("etcd", "azurite") if not running.get(n)) or "etcd, azurite"
        verdict: Callable[[str, str], Check] = warn if purpose == "doctor" else fail
        return verdict("etcd and Azurite", f"{down} not running under {platform.home}: `pgha up` starts them")
    try:
        health = patroni.HTTP.get(f"http://127.0.0.1:{state.etcd_port}/health", timeout=3).json()
    except (httpx.HTTPError, ValueError) as err:
        return fail("etcd and Azurite", f"etcd on {state.etcd_port} does not answer /health ({err}): `pgha down` "
                                        "then `pgha up`")
    if str(health.get("health")) != "true":
        return fail("etcd and Azurite", f"etcd on {state.etcd_port} reports {health}: see "
                                        f"{platform.stack.dir}/etcd.log")
    try:
        containers = list(objectstore.service(state.connection_string).list_containers(results_per_page=10,
                                                                                         **objectstore.QUICK))
    except Exception as err:  # Azurite up but not answering as Blob storage
        return fail("etcd and Azurite", f"Azurite on {state.blob_port} does not list containers "
                                        f"({type(err).__name__}): see {platform.stack.dir}/azurite.log")
    return passed("etcd and Azurite", f"etcd healthy on {state.etcd_port}; Azurite on {state.blob_port} lists "
                                      f"{len(containers)} container(s)")


def monitoring_check(platform: LocalPlatform, spec: ClusterSpec, purpose: Purpose) -> Check:
    """Prometheus and Alertmanager ready (a deploy's monitoring step waits for Prometheus to take up its
    members), and whether Alertmanager routes alerts to pgha."""
    monitoring = platform.stack.monitoring
    if purpose != "doctor" and not spec.monitoring.enable_pod_monitor:
        return passed("monitoring", "monitoring disabled in the spec: nothing to scrape it")
    known = monitoring.ports()
    running = platform.stack.running()
    if known is None or not (running.get("prometheus") and running.get("alertmanager")):
        verdict: Callable[[str, str], Check] = warn if purpose == "doctor" else fail
        return verdict("monitoring", f"Prometheus and Alertmanager are not running under {platform.home}: "
                                     "`pgha up` starts them")
    for name, port in (("Prometheus", known.prometheus), ("Alertmanager", known.alertmanager)):
        try:
            ready = patroni.HTTP.get(f"http://127.0.0.1:{port}/-/ready", timeout=3).status_code == 200
        except httpx.HTTPError:
            ready = False
        if not ready:
            return fail("monitoring", f"{name} on {port} is not ready: see {monitoring.dir}/{name.lower()}.log")
    routes = monitoring.routes()
    if not routes:
        return passed("monitoring", f"Prometheus ready on {known.prometheus}; Alertmanager ready on "
                                    f"{known.alertmanager}, routing nowhere (PGHA_ROUTE_ALERTS on `pgha serve` "
                                    "routes alerts to it)")
    gone = [r.where for r in routes if not answers(r.where.rsplit("/api/", 1)[0] + "/api/health")]
    said = "; ".join(f"{', '.join(r.namespaces) or 'every namespace'} to {r.where}" for r in routes)
    if gone:  # a devhost that ended without taking its route back: its alerts go nowhere
        return warn("monitoring", f"Alertmanager routes {said}, but {', '.join(gone)} does not answer: start that "
                                  f"pgha again, or remove its entry from {monitoring.route_file}")
    return passed("monitoring", f"Prometheus ready on {known.prometheus}; Alertmanager ready on "
                                f"{known.alertmanager}, routing {said}")


def answers(url: str) -> bool:
    try:
        return patroni.HTTP.get(url, timeout=3).status_code < 500
    except httpx.HTTPError:
        return False


def ports_check(platform: LocalPlatform, spec: ClusterSpec) -> Check:
    """Each member takes three loopback ports (PostgreSQL, Patroni's REST API, its postgres_exporter); the
    stack keeps its own."""
    state = platform.stack.state()
    if state is not None and not stack_up(platform.stack.running()):
        taken = [p for p in (state.etcd_port, state.blob_port) if ports.port_open(p)]
        if taken:
            return fail("ports", f"the stack's port(s) {', '.join(map(str, taken))} are taken by another process: "
                                 "free them, then `pgha up`")
    try:
        found = ports.free_ports(3 * spec.instances)
    except OSError as err:
        return fail("ports", f"cannot find {3 * spec.instances} free loopback ports: {err}")
    return passed("ports", f"{len(found)} free loopback ports for {spec.instances} member(s)")


def service_user_check(platform: LocalPlatform) -> Check:
    """Patroni and PostgreSQL run as the service user when pgha runs as root: it must run the venv's Python."""
    account = platform.account
    if account is None:
        return passed("service user", f"members run as {os.environ.get('USER') or os.getuid()} (pgha is not root)")
    if account.pw_name in _service_users_seen:
        return passed("service user", f"{account.pw_name} runs the venv's Python and imports patroni")
    probe = ["runuser", "-u", account.pw_name, "--", sys.executable, "-c", "import patroni, psycopg"]
    try:
        ran = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return fail("service user", f"cannot run as {account.pw_name}: {err}")
    if ran.returncode != 0:
        return fail("service user", f"{account.pw_name} cannot run {sys.executable} with patroni: "
                                    f"{ran.stderr.strip()[-200:]}: make the venv readable (chmod -R o+rX), or set "
                                    "PGHA_SERVICE_USER")
    _service_users_seen.add(account.pw_name)  # only a pass is remembered: a fix is seen at the next look
    return passed("service user", f"{account.pw_name} runs the venv's Python and imports patroni")


def disk_check(platform: LocalPlatform) -> Check:
    home = next(p for p in (platform.home, *platform.home.parents) if p.exists())
    free = shutil.disk_usage(home).free
    said = f"{free / GIB:.1f} GiB free under {platform.home}"
    if free < DISK_FAIL_BYTES:
        return fail("disk", f"{said}: a cluster with its backups needs at least 1 GiB; free some, or set PGHA_HOME")
    if free < DISK_WARN_BYTES:
        return warn("disk", f"{said}: below 5 GiB, a few clusters, backups and restore tests will fill it")
    return passed("disk", said)
