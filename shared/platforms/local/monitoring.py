"""The local stack's monitoring, as kube-prometheus-stack and CNPG's PodMonitors give it on AKS: one
Prometheus and one Alertmanager (Debian's packages, on free loopback ports), and one postgres_exporter
per member beside Patroni's own `/metrics`.

Prometheus finds the members through files (`targets/`), rewritten whenever a cluster's members change
(deploy, restore, scale, teardown). Alertmanager routes to pgha's `/api/alerts` only when asked
(`route_alerts`): the suite's drills must not start alert responses behind the tests' backs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel

from shared import ports
from shared.alert_rules import STANDARD, Pace, rule_file
from shared.alerts import ALERTMANAGER_LIMIT
from shared.platforms.local import processes
from shared.platforms.local.exporter_queries import exporter_queries
from shared.platforms.local.patroni import SUPERUSER, Member

JOBS = ("patroni", "postgres-exporter")
HTTP = httpx.Client(trust_env=False, timeout=5)


class MonitoringPorts(BaseModel):
    prometheus: int
    alertmanager: int


class AlertRoute(BaseModel):
    """Where Alertmanager sends alerts: a pgha's webhook (its function key in `?code=`: Alertmanager 0.25
    cannot add a header), for these namespaces only when given."""

    url: str
    namespaces: list[str] = []

    @property
    def where(self) -> str:
        """The URL without its query, the key with it: what may be shown."""
        return self.url.split("?", 1)[0]

    @property
    def receiver(self) -> str:
        """Its Alertmanager receiver, named for where it sends (stable while other routes come and go)."""
        return "pgha-" + hashlib.sha256(self.where.encode()).hexdigest()[:8]


class AlertRoutes(BaseModel):
    """Every pgha a devhost routes alerts to (a `pgha serve` and a demo beside it, each its own)."""

    routes: list[AlertRoute] = []


def command(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: run scripts/setup.sh (Debian's package {name})")
    return found


class Monitoring:
    def __init__(self, home: Path) -> None:
        self.dir = home / "stack" / "monitoring"
        self.ports_file = self.dir / "ports.json"
        self.route_file = self.dir / "route.json"
        self.pace_file = self.dir / "pace.json"

    # ---- Prometheus and Alertmanager ------------------------------------------------------------
    def ports(self) -> MonitoringPorts | None:
        try:
            return MonitoringPorts.model_validate_json(self.ports_file.read_text())
        except FileNotFoundError:
            return None

    def daemon(self, name: str) -> processes.Daemon:
        return processes.Daemon(self.dir / f"{name}.pid", str(self.dir / f"{name}.yml"))

    def up(self, pace: Pace) -> MonitoringPorts:
        """Idempotent: the configuration written for `pace`, then whichever of the two is down started."""
        for sub in ("targets/patroni", "targets/postgres-exporter", "queries"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.dir / "queries", 0o755)
        known = self.ports()
        running = {name: self.daemon(name).running for name in ("prometheus", "alertmanager")}
        if known is None:
            prometheus, alertmanager = ports.free_ports(2)
            known = MonitoringPorts(prometheus=prometheus, alertmanager=alertmanager)
        # a daemon that is down whose port another process took moves; one that runs keeps its own
        held = known.model_dump()
        taken = [name for name, port in held.items() if not running[name] and ports.port_open(port)]
        moved = dict(zip(taken, ports.free_ports(len(taken), avoid=set(held.values())), strict=True)) if taken else {}
        known = MonitoringPorts(**{**held, **moved})
        self.ports_file.write_text(known.model_dump_json())
        self.pace_file.write_text(pace.model_dump_json())
        self.configure(pace, known)
        if not running["alertmanager"]:
            self._start("alertmanager", known.alertmanager, [
                command("prometheus-alertmanager"), f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{known.alertmanager}", "--cluster.listen-address=",
                "--log.level=warn"])
        else:
            self._reload(known.alertmanager)
        if not running["prometheus"]:
            self._start("prometheus", known.prometheus, [
                command("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'prometheus-data'}", "--storage.tsdb.retention.time=2d",
                f"--web.listen-address=127.0.0.1:{known.prometheus}", "--web.enable-lifecycle", "--log.level=warn"])
        else:
            self._reload(known.prometheus)
        return known

    def pace(self) -> Pace:
        """The pace the daemons were last brought up at."""
        try:
            return Pace.model_validate_json(self.pace_file.read_text())
        except FileNotFoundError:
            return STANDARD

    def _start(self, name: str, port: int, argv: list[str]) -> None:
        log = self.dir / f"{name}.log"
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))  # private before a line is in
        os.chmod(log, 0o600)  # Alertmanager 0.25 logs a failed notification's URL, the key with it
        pid = processes.spawn(argv, log, self.daemon(name), cwd=self.dir)
        processes.wait_for_port(port, 30, name, pid, log)

    @staticmethod
    def _reload(port: int) -> None:
        HTTP.post(f"http://127.0.0.1:{port}/-/reload").raise_for_status()

    def configure(self, pace: Pace, known: MonitoringPorts) -> None:
        """prometheus.yml, rules.yml and alertmanager.yml, as `pace` and `known` say."""
        self._write_prometheus_config(pace, known)
        self._write_alertmanager_config(pace)

    def _write_prometheus_config(self, pace: Pace, known: MonitoringPorts) -> None:
        every = f"{pace.scrape_seconds}s"
        config = {
            "global": {"scrape_interval": every, "scrape_timeout": f"{min(pace.scrape_seconds, 10)}s",
                       "evaluation_interval": f"{pace.evaluation_seconds}s"},
            "rule_files": [str(self.dir / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{known.alertmanager}"]}]}]},
            "scrape_configs": [{"job_name": job, "file_sd_configs": [
                {"files": [str(self.dir / "targets" / job / "*.json")], "refresh_interval": every}]} for job in JOBS],
        }
        _write(self.dir / "rules.yml", yaml.safe_dump(rule_file(pace), sort_keys=False))
        _write(self.dir / "prometheus.yml", yaml.safe_dump(config, sort_keys=False))

    def _write_alertmanager_config(self, pace: Pace) -> None:
        """Every alert goes nowhere unless a route to pgha is set; the file holds the function key, so it is
        private (Alertmanager runs as the same user as pgha)."""
        tree: dict[str, Any] = {
            "receiver": "nowhere", "group_by": ["alertname", "namespace", "cnpg_io_cluster"],
            "group_wait": f"{pace.group_wait_seconds}s", "group_interval": f"{pace.group_interval_seconds}s",
            "repeat_interval": f"{pace.repeat_interval_seconds}s",
        }
        receivers: list[dict[str, Any]] = [{"name": "nowhere"}]
        tree["routes"] = []
        # one pgha answers each alert: a route for some namespaces (a demo's) before one for all (a serve's)
        for route in sorted(self.routes(), key=lambda r: not r.namespaces):
            matchers = [f"namespace=~\"{'|'.join(route.namespaces)}\""] if route.namespaces else []
            tree["routes"].append({"receiver": route.receiver, "matchers": matchers})
            receivers.append({"name": route.receiver, "webhook_configs": [
                {"url": route.url, "send_resolved": True, "max_alerts": ALERTMANAGER_LIMIT}]})
        _write(self.dir / "alertmanager.yml", yaml.safe_dump({"route": tree, "receivers": receivers},
                                                            sort_keys=False), mode=0o600)

    def routes(self) -> list[AlertRoute]:
        try:
            held = json.loads(self.route_file.read_text())
        except FileNotFoundError:
            return []
        if "url" in held:  # one route, as the file was first written
            return [AlertRoute.model_validate(held)]
        return AlertRoutes.model_validate(held).routes

    def route_alerts(self, route: AlertRoute) -> None:
        """Send alerts to that pgha too (its route replaced when it had one), effective at once."""
        self._set_routes([*(r for r in self.routes() if r.where != route.where), route])

    def unroute(self, url: str) -> None:
        """That pgha gets no more alerts; the others keep theirs."""
        where = AlertRoute(url=url).where
        if any(r.where == where for r in self.routes()):
            self._set_routes([r for r in self.routes() if r.where != where])

    def _set_routes(self, routes: list[AlertRoute]) -> None:
        if routes:
            processes.write_private(self.route_file, AlertRoutes(routes=routes).model_dump_json())
        else:
            self.route_file.unlink(missing_ok=True)
        self._write_alertmanager_config(self.pace())
        known = self.ports()
        if known is not None and self.daemon("alertmanager").running:
            self._reload(known.alertmanager)

    def down(self) -> list[str]:
        exporters = [processes.Daemon(pid, "postgres-exporter") for pid in (self.dir / "exporters").glob("*.pid")]
        stopped = ["postgres-exporter"] if processes.stop_all(exporters, timeout=10) else []
        return stopped + [name for name in ("prometheus", "alertmanager") if processes.stop(self.daemon(name))]

    # ---- the members -----------------------------------------------------------------------------
    def watch(self, namespace: str, cluster_dir: Path, members: list[Member], account: pwd.struct_passwd | None,
              ) -> list[str]:
        """Each member's exporter running and both of its targets listed: Prometheus follows the file."""
        name = cluster_dir.name
        queries = self.dir / "queries" / f"{namespace}--{name}.yaml"
        text = yaml.safe_dump(exporter_queries(cluster_dir / "backups"), sort_keys=False)
        if not queries.exists() or queries.read_text() != text:
            self.unwatch(namespace, name, members)  # an exporter reads its queries once, when it starts
            _write(queries, text, mode=0o644)
        started = []
        for member in members:
            if member.exporter_port is None:
                continue
            daemon = self._exporter_daemon(namespace, member)
            if daemon.running:
                continue
            # the member's private socket, where `local all all trust` lets the superuser in: no password
            dsn = f"host={member.socket_dir} port={member.pg_port} user={SUPERUSER} dbname=postgres sslmode=disable"
            log = self.dir / "exporters" / f"{namespace}--{member.name}.log"
            pid = processes.spawn(
                [command("prometheus-postgres-exporter"), f"--web.listen-address=127.0.0.1:{member.exporter_port}",
                 f"--extend.query-path={queries}", "--disable-default-metrics", "--disable-settings-metrics",
                 "--no-collector.database", "--no-collector.bgwriter", "--log.level=error"],
                log, daemon, env={"DATA_SOURCE_NAME": dsn, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                account=account,
            )
            processes.wait_for_port(member.exporter_port, 10, f"{member.name}'s postgres_exporter", pid, log)
            started.append(member.name)
        self._publish(namespace, name, members)
        return started

    def _exporter_daemon(self, namespace: str, member: Member) -> processes.Daemon:
        return processes.Daemon(self.dir / "exporters" / f"{namespace}--{member.name}.pid",
                                f"127.0.0.1:{member.exporter_port}")

    def unwatch(self, namespace: str, name: str, members: list[Member]) -> None:
        """These members' exporters stop (a teardown, a scale-down, new queries); `watch` rewrites the targets."""
        processes.stop_all([self._exporter_daemon(namespace, m) for m in members if m.exporter_port], timeout=10)
        for member in members:
            (self.dir / "exporters" / f"{namespace}--{member.name}.pid").unlink(missing_ok=True)

    def forget(self, namespace: str, name: str, members: list[Member]) -> None:
        """A cluster deleted: its exporters stop, and its targets, queries and exporter logs go."""
        self.unwatch(namespace, name, members)
        for member in members:
            (self.dir / "exporters" / f"{namespace}--{member.name}.log").unlink(missing_ok=True)
        for job in JOBS:
            (self.dir / "targets" / job / f"{namespace}--{name}.json").unlink(missing_ok=True)
        (self.dir / "queries" / f"{namespace}--{name}.yaml").unlink(missing_ok=True)

    def _publish(self, namespace: str, name: str, members: list[Member]) -> None:
        def group(member: Member, port: int | None) -> dict[str, Any]:
            return {"targets": [f"127.0.0.1:{port}"],
                    "labels": {"namespace": namespace, "cnpg_io_cluster": name, "pod": member.name}}

        for job, port_of in (("patroni", lambda m: m.rest_port), ("postgres-exporter", lambda m: m.exporter_port)):
            groups = [group(m, port_of(m)) for m in members if port_of(m)]
            _write(self.dir / "targets" / job / f"{namespace}--{name}.json", json.dumps(groups, indent=1), mode=0o644)

    # ---- what Prometheus and Alertmanager see ----------------------------------------------------
    def alerts(self, alertname: str | None, namespace: str) -> list[dict[str, Any]]:
        """The active alerts Alertmanager holds in that namespace (of that name, when given; its API v2)."""
        known = self.ports()
        if known is None:
            raise RuntimeError("monitoring is not up: run `pgha up`")
        named = [f'alertname="{alertname}"'] if alertname else []
        answer = HTTP.get(f"http://127.0.0.1:{known.alertmanager}/api/v2/alerts", params={
            "filter": [*named, f'namespace="{namespace}"'], "active": "true"})
        answer.raise_for_status()
        return list(answer.json())

    def scrape_exporters(self, members: list[Member]) -> dict[str, bool]:
        """Each member's exporter, scraped once: whether it reaches its PostgreSQL (`pg_up 1`)."""
        def up(member: Member) -> bool:
            try:
                text = HTTP.get(f"http://127.0.0.1:{member.exporter_port}/metrics").text
            except httpx.HTTPError:
                return False
            return any(line.strip() in ("pg_up 1", "pg_up 1.0") for line in text.splitlines())

        return {m.name: up(m) for m in members if m.exporter_port}

    def discovered(self, namespace: str, name: str, deadline: float) -> dict[str, str]:
        """The cluster's targets Prometheus has taken up from the files (target → health), as a PodMonitor's
        targets show once Prometheus picked it up; RuntimeError when some are still missing at `deadline`."""
        wanted = {job: sum(1 for group in json.loads(path.read_text()) for _ in group["targets"])
                  for job in JOBS if (path := self.dir / "targets" / job / f"{namespace}--{name}.json").exists()}
        while True:
            targets = self.query("/api/v1/targets", state="active")["activeTargets"]
            mine = {f"{t['labels']['job']}/{t['labels']['pod']}": t["health"] for t in targets
                    if t["labels"].get("namespace") == namespace and t["labels"].get("cnpg_io_cluster") == name}
            if len(mine) >= sum(wanted.values()):
                return mine
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus has taken up {len(mine)} of the {sum(wanted.values())} targets of "
                                   f"{namespace}/{name} (file discovery in {self.dir / 'targets'})")
            time.sleep(0.2)

    def query(self, path: str, **params: str) -> Any:
        known = self.ports()
        if known is None:
            raise RuntimeError("monitoring is not up: run `pgha up`")
        answer = HTTP.get(f"http://127.0.0.1:{known.prometheus}{path}", params=params)
        answer.raise_for_status()
        return answer.json()["data"]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    processes.write_private(path, text, mode=mode)
