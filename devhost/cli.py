"""`pgha`: the local stack and the devhost from a shell — up, down, status, serve, demo; plan and doctor; and
the day-2 operations as a client of a running pgha — update, switchover, rotate.

Each command imports the heavier parts it needs when it runs (the devhost and its durable engine, the
plan's app registry): `pgha status` and `pgha down` answer without loading them."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx

from shared import ports
from shared.doctor import PROBE, look
from shared.logs import configure
from shared.model import SpecError
from shared.platform import PreflightFailed
from shared.platforms import local_platform, platform_for
from shared.settings import Settings
from shared.spec import ClusterSpec, parse_spec

PLANNED = ("deploy", "teardown", "restore", "verify", "drill")  # triggers.plans.RUNBOOKS, without its imports
STOP_SECONDS = 1.5  # `pgha serve` exits within 2 s of SIGTERM
DEMO_SPEC: dict[str, Any] = {
    "name": "pg-demo",
    "instances": 3,
    "synchronousReplicas": 1,
    "sampleData": True,
    "postgresql": {"parameters": {"archive_timeout": "60s", "shared_buffers": "128MB", "max_connections": "100"}},
    "backup": {"schedule": "0 15 * ? * *"},
    "endpoints": {"enabled": True, "sourceRanges": ["127.0.0.1/32"]},
    "drills": {"enabled": True},
}


def say(message: str) -> None:
    print(message, flush=True)


def local() -> Any:
    return local_platform(Settings.from_env())


def cmd_up(_: argparse.Namespace) -> int:
    platform = local()
    say(f"starting the local stack in {platform.home} ...")
    started = platform.start_all()
    state = platform.stack.require()
    say(f"etcd     127.0.0.1:{state.etcd_port}")
    say(f"azurite  {state.blob_endpoint}")
    monitoring = platform.stack.monitoring.ports()
    if monitoring is not None:
        say(f"prometheus   http://127.0.0.1:{monitoring.prometheus}  "
            f"(rules: {platform.stack.monitoring.dir / 'rules.yml'})")
        say(f"alertmanager http://127.0.0.1:{monitoring.alertmanager}")
    if started:
        say(f"restarted members: {', '.join(started)}")
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    stopped = local().stop_all()
    say(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    platform = local()
    running = platform.stack.running()
    say(f"PGHA_HOME {platform.home}")
    for name, alive in running.items() or {"stack": False}.items():
        say(f"  {name:12} {'running' if alive else 'stopped'}")
    for spec in platform.list_clusters():
        status = platform.cluster_status(spec.namespace, spec.name)
        say(f"cluster {spec.namespace}/{spec.name}: {status.phase} ({status.ready_instances}/{status.instances} ready)")
        for instance in status.instances_status:
            say(f"  {instance.name:20} {instance.role:8} {instance.sync_state or '-':8} {instance.state or '-':10} "
                f"lsn {instance.lsn or '-'}")
    if running.get("azurite"):  # the reports pgha keeps: what each cluster's last runs proved
        say_fleet(platform)
    return 0


def say_fleet(platform: Any) -> None:
    """The fleet as the dashboard shows it, as a table: what needs attention first."""
    from shared.fleet import LastRun, fleet

    def last(run: LastRun | None) -> str:
        return "none" if run is None else f"{run.status} {run.age_seconds or 0:.0f} s ago" + (
            f" ({run.figure})" if run.figure else "")

    try:
        rows = fleet(platform, platform.stack.require().connection_string,
                     Settings.from_env().max_recovery_point_age_seconds)
    except Exception as err:
        say(f"fleet: not read ({type(err).__name__}: {str(err)[:200]})")
        return
    say("fleet (what needs attention first):")
    for row in rows:
        say(f"  {row.namespace}/{row.name}: {'PROBLEM: ' + '; '.join(row.problems) if row.problems else 'ok'}")
        point = "-" if row.recovery_point_age_seconds is None else f"{row.recovery_point_age_seconds:.0f} s"
        say(f"    backup {last(row.backup)}; recovery point {point} (limit {row.recovery_point_limit_seconds} s)")
        say(f"    restore test {last(row.restore_test)}; drill {last(row.drill)}")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C, then stop within STOP_SECONDS: the routes and timers at once; work in
    flight is given what is left of that, then abandoned (the stack and its members keep running)."""
    from devhost.host import DevHost
    from devhost.keys import KEY_SETTING, key_file

    try:
        configure(os.environ.get("PGHA_LOG_LEVEL", "info").lower())
    except ValueError as err:
        raise Refused(str(err)) from None
    host = DevHost(port=args.port).start()
    say(f"pgha devhost serving {host.url}/api  (Ctrl-C stops it; `pgha down` stops the stack)")
    say(f"function key: {host.key}  (send it as the x-functions-key header or ?code=; kept in "
        f"{key_file(Settings.from_env().home)}, or set {KEY_SETTING})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    say("stopping")
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the bounded stop short
        signal.signal(sig, signal.SIG_IGN)
    try:
        stopper = threading.Thread(target=host.stop, name="stop", daemon=True)
        stopper.start()
        stopper.join(STOP_SECONDS)
        if stopper.is_alive():
            say(f"work in flight abandoned after {STOP_SECONDS:g}s")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)  # no wait for worker threads still inside an activity: the process ends now


def follow(client: httpx.Client, location: str, label: str) -> httpx.Response:
    """Poll an operation's Location until it ends, printing each step as it completes."""
    shown = 0
    started = time.monotonic()
    while True:
        response = client.get(location)
        if response.status_code != 202:
            return response
        custom = response.json().get("customStatus") or {}
        done = custom.get("stepsDone", [])
        for line in done[shown:]:
            say(f"  [{time.monotonic() - started:5.1f}s] {line}")
        shown = len(done)
        time.sleep(0.5)


def run_and_show(
    client: httpx.Client, method: str, url: str, body: Any, label: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """Start a runbook as a client would, follow it, print its report; the final answer and the report."""
    say(f"\n{method} {url}" + (f" {json.dumps(body)}" if body is not None else ""))
    response = client.request(method, url, json=body)
    if response.status_code != 202:
        say(f"{label} refused: {response.status_code} {response.text}")
        return response, {}
    say(f"202 Accepted, following {response.headers['Location']}")
    return show(client, response.headers["Location"], label)


def show(client: httpx.Client, location: str, label: str) -> tuple[httpx.Response, dict[str, Any]]:
    """Follow a run to its end and print its report; the final answer and the report."""
    result = follow(client, location, label)
    answer = result.json()
    report = answer if result.status_code == 200 else answer.get("report") or {}
    say(f"{label} ended: HTTP {result.status_code}, {report.get('status')} in {report.get('durationSeconds')}s")
    print_report(report)
    if result.status_code != 200:
        say(f"error: {answer.get('message')}")
    return result, report


def print_report(report: dict[str, Any]) -> None:
    for step in report.get("steps", []):
        say(f"  {step['outcome']:9} {step['name']:30} {step['durationSeconds']:6.1f}s  {step['detail'][:90]}")


def answer_a_real_alert(host: Any, client: httpx.Client, name: str) -> tuple[httpx.Response, dict[str, Any]]:
    """A fault on the cluster, seen by Prometheus, posted by Alertmanager to pgha, answered: the demo writes
    no alert itself. Alertmanager routes the demo's namespace to this devhost only for this step."""
    from devhost.faults import replay_held_back
    from shared.alerts import alertmanager_key

    platform, namespace = local(), Settings.from_env().default_namespace
    host.route_alerts([namespace])
    say("\nfault: a reader on a standby holds back its WAL replay (as a long report does), the primary writes on")
    started = time.monotonic()
    with replay_held_back(platform, namespace, name):
        while not (fired := platform.stack.monitoring.alerts("CNPGClusterHighReplicationLag", namespace)):
            if time.monotonic() - started > 90:
                say("Prometheus raised no CNPGClusterHighReplicationLag within 90 s")
                return httpx.Response(504), {}
            time.sleep(0.5)
        alert = fired[0]
        say(f"  [{time.monotonic() - started:5.1f}s] Prometheus: {alert['labels']['alertname']} firing "
            f"({alert['annotations'].get('description', '')}); Alertmanager posts it to /api/alerts")
        location = f"/api/operations/{alertmanager_key(alert['fingerprint'], alert['startsAt'])}"
        while client.get(location).status_code == 404:  # delivered after Alertmanager's group_wait
            if time.monotonic() - started > 120:
                say("Alertmanager's notification never reached pgha")
                return httpx.Response(504), {}
            time.sleep(0.3)
        say(f"  [{time.monotonic() - started:5.1f}s] pgha's response started: following {location}")
        return show(client, location, "alert response (Prometheus via Alertmanager: replication lag)")


def cmd_demo(args: argparse.Namespace) -> int:
    from devhost.host import DevHost

    configure("warning")
    (port,) = ports.free_ports(1)
    # a task hub of its own: it runs beside a `pgha serve` of the same PGHA_HOME, and leaves it no runs
    os.environ.setdefault("PGHA_TASK_HUB", "demo")
    # the monitoring at the quick pace: the demo's fault is an alert within seconds, not CNPG's 5 minutes
    os.environ.setdefault("PGHA_MONITORING_PACE", "quick")
    say("pgha demo: deploy a 3-instance PostgreSQL cluster (sync standby, WAL archived to Azurite) through the API,")
    say("prove its backups by restoring one into a new cluster, rehearse a failover, roll a restart-requiring")
    say("parameter through the instances, answer an alert Prometheus raises on a real fault,")
    say("then tear everything down")
    with DevHost(port=port) as host, host.client() as client:
        say(f"devhost at {host.url}\nPOST /api/clusters {json.dumps(DEMO_SPEC)}")
        result, report = run_and_show(client, "POST", "/api/clusters", DEMO_SPEC, "deploy")
        if result.status_code != 200:
            return 1
        status = client.get(f"/api/clusters/{DEMO_SPEC['name']}").json()
        say(f"\nGET /api/clusters/{DEMO_SPEC['name']}: {status['phase']}, primary {status['currentPrimary']}, "
            f"{status['synchronousStandbyNames']}")
        for instance in status["instancesStatus"]:
            say(f"  {instance['name']:12} {instance['role']:8} {instance['syncState']:8} lsn {instance['lsn']}")
        endpoints = report.get("result", {}).get("endpoints", {})
        say(f"rw endpoint: {endpoints.get('rw')}\nro endpoint: {endpoints.get('ro')}")
        say(f"report stored at {report.get('location', {}).get('markdown')} in Azurite")

        verify = {"backup": "new", "restoreTest": True, "checks": [
            {"name": "datasample rows", "query": "SELECT count(*) FROM datasample", "expected": 3}]}
        result, report = run_and_show(client, "POST", f"/api/clusters/{DEMO_SPEC['name']}/backups", verify,
                                      "backup verification")
        restore = report.get("result", {}).get("restoreTest")
        if restore:
            say(f"restore test: {restore['restoreCluster']['name']} ready and checked "
                f"{restore['restoreSeconds']}s after the request; "
                + ", ".join(f"{c['name']} = {c['got']} ({'ok' if c['ok'] else 'FAILED'})" for c in restore["checks"]))
        if result.status_code != 200:
            return 1

        result, report = run_and_show(client, "POST", f"/api/clusters/{DEMO_SPEC['name']}/drills/failover",
                                      {"mode": "graceful"}, "failover drill")
        drill = report.get("result", {})
        if "rtoSeconds" in drill:
            say(f"failover to {drill['failoverTo']} and back: RTO {drill['rtoSeconds']['failover']}s at the failover, "
                f"{drill['rtoSeconds']['switchback']}s at the switch-back; RPO {drill['rpoLostWrites']} of "
                f"{drill['probe']['acknowledged']} acknowledged writes lost")
        if result.status_code != 200:
            return 1

        change = {"postgresql": {"parameters": {"shared_buffers": "160MB"}}}
        result, report = run_and_show(client, "PATCH", f"/api/clusters/{DEMO_SPEC['name']}", change,
                                      "rolling update (shared_buffers needs a restart)")
        update = report.get("result", {})
        if "restarts" in update:
            say("rolling update: " + ", ".join(f"{r['instance']} ({r['role']}) RTO {r['rtoSeconds']}s"
                                               for r in update["restarts"])
                + f"; RPO {update['rpoLostWrites']} of {update['probe']['acknowledged']} acknowledged writes lost")
        if result.status_code != 200:
            return 1

        result, report = answer_a_real_alert(host, client, DEMO_SPEC["name"])
        if result.status_code != 200:
            return 1
        diagnosis = report.get("result", {}).get("diagnosis", {})
        say("diagnosis: " + ", ".join(f"{s['name']} lags {s['lagBytes']} bytes ({s['state']})"
                                      for s in diagnosis.get("standbys", [])))
        if args.keep:
            say("\n--keep: the cluster stays up; `pgha status` shows it, `pgha down` stops everything")
            return 0
        run_and_show(client, "DELETE", f"/api/clusters/{DEMO_SPEC['name']}?deleteBackups=true", None, "teardown")
    stopped = local().stop_all()
    say(f"\nlocal stack stopped ({', '.join(stopped)}); demo done")
    return 0


def api_client(args: argparse.Namespace) -> httpx.Client:
    """A client of a running pgha (`pgha serve`, or a Function App with --url and PGHA_FUNCTION_KEY)."""
    from devhost.host import keyed_client
    from devhost.keys import function_key

    return keyed_client(args.url, function_key(Settings.from_env().home))


def setting(text: str) -> tuple[list[str], Any]:
    """`postgresql.parameters.shared_buffers=256MB` as a path and a value (JSON when it reads as JSON)."""
    path, sep, raw = text.partition("=")
    if not sep or not path:
        raise Refused(f"--set {text!r}: write FIELD=VALUE, e.g. instances=4")
    keys = path.split(".")
    if keys[:2] == ["postgresql", "parameters"]:
        return keys, None if raw == "null" else raw  # PostgreSQL's values are strings, `200` included
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return keys, value


def cmd_update(args: argparse.Namespace) -> int:
    """PATCH a cluster: a partial ClusterSpec from --patch and each --set; --dry-run prints the change plan."""
    patch: dict[str, Any] = {}
    if args.patch:
        import yaml

        try:
            with open(args.patch) as source:
                patch = yaml.safe_load(source) or {}
        except (OSError, yaml.YAMLError) as err:
            raise Refused(f"cannot read {args.patch}: {err}") from None
    for text in args.set or []:
        path, value = setting(text)
        node = patch
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    if not patch:
        raise Refused("nothing to change: give --set FIELD=VALUE or --patch FILE")
    url = f"/api/clusters/{args.name}?namespace={args.namespace}" if args.namespace else f"/api/clusters/{args.name}"
    with api_client(args) as client:
        if args.dry_run:
            answer = client.patch(url, params={"dryRun": "true"}, json=patch)
            if answer.status_code != 200:
                raise Refused(f"{answer.status_code} {answer.text}")
            say(f"change plan: {answer.json()['summary']}")
            for change in answer.json()["changes"]:
                say(f"  {change['kind']:9} {change['field']:40} {change['note']}")
            return 0
        result, _ = run_and_show(client, "PATCH", url, patch, "update")
    return 0 if result.status_code == 200 else 1


def cmd_switchover(args: argparse.Namespace) -> int:
    """A planned switchover (`kubectl cnpg promote`), to --target or the most advanced in-sync standby."""
    url = f"/api/clusters/{args.name}/switchover" + (f"?namespace={args.namespace}" if args.namespace else "")
    with api_client(args) as client:
        result, _ = run_and_show(client, "POST", url, {"target": args.target} if args.target else {}, "switchover")
    return 0 if result.status_code == 200 else 1


def cmd_rotate(args: argparse.Namespace) -> int:
    """A new password for the app owner on every cluster that uses its secret, proven."""
    url = f"/api/clusters/{args.name}/credentials/rotate" + (f"?namespace={args.namespace}" if args.namespace else "")
    with api_client(args) as client:
        result, _ = run_and_show(client, "POST", url, {}, "credential rotation")
    return 0 if result.status_code == 200 else 1


def cmd_report(args: argparse.Namespace) -> int:
    """A run's report as Markdown; --open writes its page (charts and all) and prints the file's path."""
    url = f"/api/operations/{quote(args.id, safe='')}/report"
    with api_client(args) as client:
        answer = client.get(url, params={"format": "html" if args.open else "markdown"})
    if answer.status_code != 200:
        raise Refused(f"{args.id}: {answer.status_code} {answer.text[:300]}")
    if not args.open:
        sys.stdout.write(answer.text)
        return 0
    fd, path = tempfile.mkstemp(prefix=f"pgha-report-{args.id[:80]}-", suffix=".html")  # never a path made for us
    with os.fdopen(fd, "w", encoding="utf-8") as page:
        page.write(answer.text)
    say(path)
    return 0


class Refused(Exception):
    """A command that cannot go on: its message goes to stderr, exit code 2."""


def load_spec(path: str) -> Any:
    """A ClusterSpec from a JSON or YAML file, or Refused naming the file (and the field)."""
    import yaml


    try:
        with open(path) as source:
            return parse_spec(yaml.safe_load(source))
    except (OSError, yaml.YAMLError) as err:
        raise Refused(f"cannot read {path}: {err}") from None
    except SpecError as err:
        raise Refused(f"{path}: {err.field}: {err.message}") from None


def cmd_plan(args: argparse.Namespace) -> int:
    """Print every object and Azure call the runbook's first run would make on AKS; touch nothing."""
    from triggers.plans import plan, render

    if args.runbook == "monitoring":
        from shared.platforms import monitoring_plan

        namespaces = args.namespace or [load_spec(args.spec).namespace if args.spec
                                        else Settings.from_env().default_namespace]
        sys.stdout.write(render(monitoring_plan(namespaces)))
        return 0
    if not args.spec:
        raise Refused(f"plan {args.runbook}: --spec is required")
    spec = load_spec(args.spec)
    try:
        entries = plan(args.runbook, spec)
    except PreflightFailed as err:
        raise Refused(f"refused by the pre-flight: {err}") from None
    sys.stdout.write(render(entries))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the environment read-only; a table (or JSON), exit 1 on any FAIL."""
    import dataclasses


    logging.getLogger("azure").setLevel(logging.CRITICAL)  # the doctor says what failed, in one line
    settings = Settings.from_env()
    if args.platform:
        settings = dataclasses.replace(settings, platform=args.platform)
    namespace = args.namespace or settings.default_namespace
    spec = load_spec(args.spec) if args.spec else ClusterSpec(name=PROBE, namespace=namespace)
    diagnosis = look(settings.platform, lambda: platform_for(settings), spec, args.delete_backups)
    say(json.dumps(diagnosis.dump(), indent=2) if args.json else diagnosis.table())
    return 1 if diagnosis.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgha", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start etcd and Azurite (and members of existing clusters)").set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop everything pgha started").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="the stack and every local cluster").set_defaults(fn=cmd_status)
    serve = sub.add_parser("serve", help="run function_app.py on the devhost")
    serve.add_argument("--port", type=int, default=7071)
    serve.set_defaults(fn=cmd_serve)
    demo = sub.add_parser("demo", help="deploy a cluster through the API, show it, tear it down")
    demo.add_argument("--keep", action="store_true", help="leave the cluster and the stack running")
    demo.set_defaults(fn=cmd_demo)
    planning = sub.add_parser("plan", help="print what a runbook would apply on AKS (YAML), touching nothing")
    planning.add_argument("runbook", choices=[*PLANNED, "monitoring"],
                          help="a runbook, or `monitoring`: the alert rules and the routes that call pgha")
    planning.add_argument("--platform", choices=["aks"], default="aks")
    planning.add_argument("--spec", help="a ClusterSpec, JSON or YAML (a runbook's plan needs one)")
    planning.add_argument("--namespace", action="append",
                          help="monitoring: a namespace holding clusters, for its AlertmanagerConfig (repeatable; "
                               "default: the spec's, else PGHA_DEFAULT_NAMESPACE)")
    planning.set_defaults(fn=cmd_plan)
    doctor = sub.add_parser("doctor", help="check the environment before a first run, read-only (exit 1 on a FAIL)")
    doctor.add_argument("--platform", choices=["local", "aks"], help="default: PGHA_PLATFORM")
    doctor.add_argument("--spec", help="a ClusterSpec (JSON or YAML) to check for; default: every default")
    doctor.add_argument("--namespace", help="where a default cluster would go (default: PGHA_DEFAULT_NAMESPACE)")
    doctor.add_argument("--delete-backups", action="store_true", help="blob delete is required (teardown's option)")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")
    doctor.set_defaults(fn=cmd_doctor)
    default_url = os.environ.get("PGHA_URL", "http://127.0.0.1:7071")
    update = sub.add_parser("update", help="change a running cluster (PATCH /api/clusters/NAME) and follow the run")
    update.add_argument("name")
    update.add_argument("--set", action="append", metavar="FIELD=VALUE",
                        help="e.g. instances=4 or postgresql.parameters.shared_buffers=256MB (repeatable)")
    update.add_argument("--patch", help="a partial ClusterSpec, JSON or YAML (merge patch)")
    update.add_argument("--dry-run", action="store_true", help="print the change plan, touching nothing")
    switchover = sub.add_parser("switchover", help="switch the primary over to an in-sync standby and follow the run")
    switchover.add_argument("name")
    switchover.add_argument("--target", help="the instance to promote (default: the most advanced in-sync standby)")
    rotate = sub.add_parser("rotate", help="rotate the app owner's password (every cluster sharing its secret)")
    rotate.add_argument("name")
    report = sub.add_parser("report", help="print a run's report (Markdown); --open writes its page and prints "
                                           "the path")
    report.add_argument("id", help="the operation id")
    report.add_argument("--open", action="store_true", help="write the report's page (HTML, with its charts)")
    report.set_defaults(fn=cmd_report)
    report.add_argument("--url", default=default_url, help="pgha's base URL (default: PGHA_URL or `pgha serve`'s)")
    for verb, fn in ((update, cmd_update), (switchover, cmd_switchover), (rotate, cmd_rotate)):
        verb.add_argument("--namespace", help="default: PGHA_DEFAULT_NAMESPACE on the server")
        verb.add_argument("--url", default=default_url, help="pgha's base URL (default: PGHA_URL or `pgha serve`'s)")
        verb.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except Refused as err:
        print(f"pgha {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
