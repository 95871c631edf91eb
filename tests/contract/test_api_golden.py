"""Golden snapshots of the HTTP API, taken before a refactor of its internals and compared after it.

The devhost (the session's `devhost` fixture) serves function_app.py with the **scripted platform**
installed; a fixed set of requests covers every HTTP route of function_app.py / triggers/*.py: good
requests (202/201 starts, 200 reads, each started run followed until it stops answering 202) and bad ones
(a 400 naming the field for each kind of invalid input, 404 unknown cluster / operation, 409 busy or not
running, 401 without the function key, 413, 503). Two files hold what they answered:

- `fixtures/golden/openapi.json`: the body of `GET /api/openapi.json`, normalised (its `host`), written with
  `json.dumps(..., indent=2, sort_keys=True)`;
- `fixtures/golden/routes.json`: per route (`METHOD /api/template`, plus one group for the devhost's own
  404/405/401 answers), per request label, the answer: `request` (the request line), `status`, `headers`
  (every response header but the transport's Server, Date and Content-Length) and `body`, the body's SHAPE:
  objects keep their keys, lists their length, and every scalar becomes its JSON type (`<str>`, `<int>`,
  `<float>`, `<bool>`, `<null>`), except the scalars under the keys in `VALUES` (error codes, fields and
  messages, runbooks, statuses, step names and outcomes, ids...), which are kept as values. A body that
  is not JSON (the Markdown report) is kept as its lines.

What is genuinely variable is masked by `Normaliser`, in headers, request lines, kept values and
Markdown lines alike, and nothing else:

- the function key → `<key>` (the `?code=` of a caller and of the Location it gets back);
- `127.0.0.1:<port>`, the devhost's and the callback receiver's host → `<host>`;
- an operation id's time stamp and random suffix: `deploy-default-gold-a-20261202T030812Z-252b83` →
  `deploy-default-gold-a-<stamp>-<hex>` (runbook, namespace and cluster stay; alert ids are already
  deterministic: a hash of the alert's id);
- an ISO-8601 time with a numeric UTC offset, as Python writes them (`...T03:08:12.550146+00:00`) →
  `<time>`, and a duration as the Markdown report writes it (`0.4 s`) → `<n> s`.

Everything else is compared exactly. The answers are those under the settings the `scripted` fixture
sets (short alert grace, `primaryUnavailable=approval`, one activity attempt, 0.1 s polls); the periodic
timer of triggers/schedules.py has no HTTP route and is not here. Requests that do not depend on what
runs are sent concurrently (the devhost answers each request ~40 ms late; see `Snapshots.batch`) and kept
in a fixed order; every run the test starts is followed to its end, so none outlives the scripted platform.

Regenerate both files (then review their diff before committing it):

    PGHA_GOLDEN_WRITE=1 PYTHONPATH=. python -m pytest tests/contract/test_api_golden.py -q -p no:cacheprovider
"""

from __future__ import annotations

import difflib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from devhost.server import route_pattern
from shared import locks
from shared.platforms import installed
from shared.spec import parse_spec
from tests.alert_payloads import LOG, METRIC, PROMETHEUS, alert
from tests.receiver import Receiver
from tests.scripted_platform import ScriptedPlatform

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
WRITE = os.environ.get("PGHA_GOLDEN_WRITE") == "1"
IGNORED_HEADERS = {"server", "date", "content-length"}  # the HTTP server's own, not the API's
# the keys whose scalar values are part of the contract, wherever they are in a body: kept (normalised)
VALUES = {
    "code", "field", "message", "note", "id", "operationId", "statusQueryGetUri", "runbook", "namespace", "name",
    "runtimeStatus", "status", "step", "outcome", "error", "playbook", "policy", "duplicate", "resolved", "cancel",
    "decision", "action", "platform", "verdict", "phase", "healthy",
}
SPEC = {"instances": 1, "synchronousReplicas": 0}
NO_SUCH_OP = "gold-no-such-operation"
JSON = {"Content-Type": "application/json"}
Ask = tuple[str, str, str, dict[str, Any]]


class Normaliser:
    """Masks what is genuinely variable between runs (see the module docstring); nothing else."""

    STAMP = re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b")
    HOST = re.compile(r"\b127\.0\.0\.1:\d+")
    TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2}")
    SECONDS = re.compile(r"(?<![\w.])\d+\.\d s\b")

    def __init__(self, key: str) -> None:
        self.keys = sorted({key, quote(key, safe="")}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for key in self.keys:
            value = value.replace(key, "<key>")
        value = self.HOST.sub("<host>", value)
        value = self.STAMP.sub("<stamp>-<hex>", value)
        value = self.TIME.sub("<time>", value)
        return self.SECONDS.sub("<n> s", value)

    def shape(self, value: Any, keep: bool = False) -> Any:
        """The body's keys and JSON types; the scalars under VALUES' keys as (normalised) values."""
        if isinstance(value, dict):
            return {k: self.shape(v, k in VALUES) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.shape(item, keep) for item in value]
        if keep:
            return self.text(value) if isinstance(value, str) else value
        if value is None:
            return "<null>"
        return f"<{type(value).__name__}>"  # bool, int, float, str


class PageShape(HTMLParser):
    """A page's elements in order, each as `tag#id.class` (its words, which say times and ages, left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.found.append(tag + (f"#{named['id']}" if named.get("id") else "")
                          + (f".{named['class']}" if named.get("class") else ""))


def page_shape(page: str) -> list[str]:
    parser = PageShape()
    parser.feed(page)
    return parser.found


def ask(label: str, method: str, url: str, **kwargs: Any) -> Ask:
    """A request to snapshot: `anonymous=True` sends it without the function key."""
    return label, method, url, kwargs


class Snapshots:
    """Sends requests and keeps each normalised answer under its route and label."""

    def __init__(self, url: str, key: str, routes: list[tuple[str, str]]) -> None:
        self.key = key
        self.normaliser = Normaliser(key)
        self.routes = [(method, template, route_pattern(template)) for method, template in routes]
        self.taken: dict[str, dict[str, Any]] = {f"{m} /api/{t}": {} for m, t in routes}
        self.keyed = httpx.Client(base_url=url, headers={"x-functions-key": key}, timeout=60)
        self.anonymous = httpx.Client(base_url=url, timeout=60)
        self.pool = ThreadPoolExecutor(max_workers=12)

    def close(self) -> None:
        self.pool.shutdown()
        self.keyed.close()
        self.anonymous.close()

    def send(self, method: str, url: str, anonymous: bool = False, **kwargs: Any) -> httpx.Response:
        return (self.anonymous if anonymous else self.keyed).request(method, url, **kwargs)

    def __call__(self, label: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.send(method, url, **kwargs)
        self.keep(label, response)
        return response

    def batch(self, *asks: Ask) -> list[httpx.Response]:
        """Requests whose answers do not depend on one another, sent at once (the devhost's answers each
        wait ~40 ms for a delayed ACK) and kept in the order given."""
        futures = [self.pool.submit(self.send, method, url, **kwargs) for _, method, url, kwargs in asks]
        responses = [future.result() for future in futures]
        for (label, *_), response in zip(asks, responses, strict=True):
            self.keep(label, response)
        return responses

    def group(self, method: str, path: str) -> str:
        for route_method, template, pattern in self.routes:
            if route_method == method and pattern.match(path):
                return f"{method} /api/{template}"
        return "(devhost: no such route or method)"

    def keep(self, label: str, response: httpx.Response) -> None:
        request = response.request
        parts = urlsplit(str(request.url))
        group = self.taken.setdefault(self.group(request.method, parts.path), {})
        assert label not in group, f"two snapshots of {request.method} {parts.path} labelled {label!r}"
        text = self.normaliser.text
        entry: dict[str, Any] = {
            "request": text(f"{request.method} {parts.path}" + (f"?{parts.query}" if parts.query else "")),
            "status": response.status_code,
            "headers": {k: text(v) for k, v in sorted(response.headers.items()) if k not in IGNORED_HEADERS},
        }
        if response.headers.get("content-type", "").startswith("application/json"):
            entry["body"] = self.normaliser.shape(response.json())
        elif response.headers.get("content-type", "").startswith("text/html"):
            entry["html"] = page_shape(response.text)
        else:
            entry["text"] = [text(line) for line in response.text.splitlines()]
        group[label] = entry

    def follow(self, label: str | None, location: str, timeout: float = 60) -> httpx.Response:
        """Poll an operation until it stops answering 202; that answer kept under `label` (when given)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.keyed.get(location)
            if response.status_code != 202:
                if label:
                    self.keep(label, response)
                return response
            assert time.monotonic() < deadline, f"{location} still running after {timeout}s: {response.text}"
            time.sleep(0.05)

    def until(self, location: str, ready: Callable[[dict[str, Any]], bool], timeout: float = 30) -> None:
        """Poll a running operation (nothing kept) until `ready(customStatus)`."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.keyed.get(location)
            assert response.status_code == 202, response.text
            custom = response.json().get("customStatus") or {}
            if ready(custom):
                return
            assert time.monotonic() < deadline, f"{location} never got there: {custom}"
            time.sleep(0.05)


def app_routes() -> list[tuple[str, str]]:
    """(METHOD, route template) of every HTTP function of function_app.py."""
    import function_app

    routes = []
    function_app.app.functions_bindings = {}  # get_functions() is not idempotent
    for function in function_app.app.get_functions():
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger":
            routes += [(str(getattr(m, "value", m)).upper(), trigger.route) for m in trigger.methods]
    return routes


def with_cluster(platform: ScriptedPlatform, name: str, instances: int = 1) -> None:
    spec = parse_spec({"name": name, "instances": instances, "synchronousReplicas": 1 if instances > 1 else 0})
    platform.clusters[(spec.namespace, spec.name)] = spec


def at_step(step: str) -> Callable[[dict[str, Any]], bool]:
    return lambda custom: custom.get("step") == step


def pending(custom: dict[str, Any]) -> bool:
    return bool(custom.get("pendingApproval"))


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedPlatform]:
    monkeypatch.setenv("PGHA_ALERT_GRACE_SECONDS", "1")
    monkeypatch.setenv("PGHA_ALERT_RECOVERY_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("PGHA_ALERT_POLICY", "primaryUnavailable=approval")
    monkeypatch.setenv("PGHA_ACTIVITY_ATTEMPTS", "1")  # a step the scripted platform cannot do fails at once
    monkeypatch.setenv("PGHA_POLL_SECONDS", "0.1")
    with installed(ScriptedPlatform()) as platform:
        yield platform  # type: ignore[misc]


def invalid_requests(receiver: Receiver) -> list[Ask]:
    """Requests refused whatever runs (bad input, unknown things, no key), and reads of settled state."""
    anon = {"anonymous": True}
    hook = f"{receiver.url}/bad"
    big = b'{"name": "' + b"x" * (300 * 1024) + b'"}'
    essentials = PROMETHEUS["data"]["essentials"]
    operations = [
        request
        for method, suffix in (("GET", ""), ("GET", "/report"), ("POST", "/approve"), ("POST", "/reject"),
                               ("POST", "/cancel"))
        for request in (ask("unknown operation", method, f"/api/operations/{NO_SUCH_OP}{suffix}"),
                        ask("invalid operation id", method, f"/api/operations/bad%20id{suffix}"),
                        ask("no key", method, f"/api/operations/{NO_SUCH_OP}{suffix}", **anon))
    ]
    return [
        # GET /api/clusters/{name}
        ask("deployed cluster", "GET", "/api/clusters/gold-a"),
        ask("unknown cluster", "GET", "/api/clusters/gold-none"),
        ask("other namespace", "GET", "/api/clusters/gold-a?namespace=elsewhere"),
        ask("invalid cluster name", "GET", "/api/clusters/Not_A_Name"),
        ask("bad namespace", "GET", "/api/clusters/gold-a?namespace=Not_A_Namespace"),
        ask("no key", "GET", "/api/clusters/gold-a", **anon),
        ask("wrong key (header)", "GET", "/api/clusters/gold-a", headers={"x-functions-key": "wrong"}, **anon),
        ask("wrong key (?code=)", "GET", "/api/clusters/gold-a?code=wrong", **anon),
        # POST /api/clusters
        ask("dryRun=true", "POST", "/api/clusters?dryRun=true", json={"name": "gold-dry", **SPEC}),
        ask("bad dryRun flag", "POST", "/api/clusters?dryRun=maybe", json={"name": "gold-dry", **SPEC}),
        ask("dryRun with invalid spec", "POST", "/api/clusters?dryRun=true", json={"name": "gold-dry", "instances": 0}),
        ask("no body", "POST", "/api/clusters"),
        ask("invalid JSON", "POST", "/api/clusters", content=b"{not json", headers=JSON),
        ask("array body", "POST", "/api/clusters", json=[]),
        ask("missing name", "POST", "/api/clusters", json=SPEC),
        ask("invalid name", "POST", "/api/clusters", json={"name": "Not_A_Name"}),
        ask("instances out of range", "POST", "/api/clusters", json={"name": "gold-x", "instances": 0}),
        ask("instances not a number", "POST", "/api/clusters", json={"name": "gold-x", "instances": "three"}),
        ask("unknown field", "POST", "/api/clusters", json={"name": "gold-x", "colour": "blue"}),
        ask("invalid nested field", "POST", "/api/clusters", json={"name": "gold-x", "storage": {"size": "lots"}}),
        ask("bad namespace in body", "POST", "/api/clusters", json={"name": "gold-x", "namespace": "Not_A_Namespace"}),
        ask("bad namespace query", "POST", "/api/clusters?namespace=Not_A_Namespace", json={"name": "gold-x"}),
        ask("callbackUrl not http", "POST", "/api/clusters", json={"name": "gold-x", "callbackUrl": "ftp://example.com/x"}),
        ask("callbackUrl host not allowed", "POST", "/api/clusters",
            json={"name": "gold-x", "callbackUrl": "https://evil.example.com/hook"}),
        ask("body too large", "POST", "/api/clusters", content=big, headers=JSON),
        ask("no key", "POST", "/api/clusters", json={"name": "gold-x"}, **anon),
        # DELETE /api/clusters/{name}
        ask("bad deleteBackups flag", "DELETE", "/api/clusters/gold-a?deleteBackups=maybe"),
        ask("unknown body field", "DELETE", "/api/clusters/gold-a", json={"colour": "blue"}),
        ask("deleteBackups not a boolean", "DELETE", "/api/clusters/gold-a", json={"deleteBackups": "yes"}),
        ask("unknown cluster", "DELETE", "/api/clusters/gold-none"),
        ask("invalid cluster name", "DELETE", "/api/clusters/Not_A_Name"),
        ask("no key", "DELETE", "/api/clusters/gold-a", **anon),
        # POST /api/clusters/{name}/backups
        ask("invalid backup kind", "POST", "/api/clusters/gold-bk/backups", json={"backup": "bogus"}),
        ask("windowHours out of range", "POST", "/api/clusters/gold-bk/backups", json={"windowHours": 0}),
        ask("check that writes", "POST", "/api/clusters/gold-bk/backups",
            json={"checks": [{"name": "rows", "query": "DELETE FROM t", "expected": 1}]}),
        ask("unknown field", "POST", "/api/clusters/gold-bk/backups", json={"colour": "blue"}),
        ask("array body", "POST", "/api/clusters/gold-bk/backups", json=[]),
        ask("invalid JSON", "POST", "/api/clusters/gold-bk/backups", content=b"{not json", headers=JSON),
        ask("unknown cluster", "POST", "/api/clusters/gold-none/backups", json={}),
        ask("no key", "POST", "/api/clusters/gold-bk/backups", json={}, **anon),
        # POST /api/clusters/{name}/restores
        ask("same name as the source", "POST", "/api/clusters/gold-rs/restores", json={"name": "gold-rs"}),
        ask("invalid targetLSN", "POST", "/api/clusters/gold-rs/restores", json={"targetLSN": "nope"}),
        ask("invalid targetLsn", "POST", "/api/clusters/gold-rs/restores", json={"targetLsn": "nope"}),
        ask("targetTime and targetLsn", "POST", "/api/clusters/gold-rs/restores",
            json={"targetTime": "2026-01-01T00:00:00Z", "targetLsn": "0/1"}),
        ask("targetTime without zone", "POST", "/api/clusters/gold-rs/restores",
            json={"targetTime": "2026-01-01T00:00:00"}),
        ask("unknown field", "POST", "/api/clusters/gold-rs/restores", json={"colour": "blue"}),
        ask("unknown cluster", "POST", "/api/clusters/gold-none/restores", json={}),
        ask("unknown sourceServerName", "POST", "/api/clusters/gold-none/restores",
            json={"sourceServerName": "gold-old"}),
        ask("no key", "POST", "/api/clusters/gold-rs/restores", json={}, **anon),
        # POST /api/clusters/{name}/drills/failover
        ask("invalid mode", "POST", "/api/clusters/gold-dr/drills/failover", json={"mode": "explode"}),
        ask("dryRun not a boolean", "POST", "/api/clusters/gold-dr/drills/failover", json={"dryRun": "perhaps"}),
        ask("unknown cluster", "POST", "/api/clusters/gold-none/drills/failover", json={"mode": "crash"}),
        ask("no key", "POST", "/api/clusters/gold-dr/drills/failover", json={}, **anon),
        # POST /api/clusters/{name}/switchover (added after the snapshots were first taken)
        ask("target not an instance", "POST", "/api/clusters/gold-dr/switchover", json={"target": "gold-dr-9"}),
        ask("unknown field", "POST", "/api/clusters/gold-dr/switchover", json={"to": "gold-dr-2"}),
        ask("unknown cluster", "POST", "/api/clusters/gold-none/switchover", json={}),
        ask("no key", "POST", "/api/clusters/gold-dr/switchover", json={}, **anon),
        # PATCH /api/clusters/{name} (added after the snapshots were first taken)
        ask("dry run", "PATCH", "/api/clusters/gold-dr?dryRun=true",
            json={"postgresql": {"parameters": {"shared_buffers": "64MB", "work_mem": "8MB"}}}),
        ask("nothing to change", "PATCH", "/api/clusters/gold-dr", json={"instances": 1}),
        ask("volume shrink", "PATCH", "/api/clusters/gold-dr", json={"storage": {"size": "1Gi"}}),
        ask("name changed", "PATCH", "/api/clusters/gold-dr", json={"name": "gold-other"}),
        ask("unknown field", "PATCH", "/api/clusters/gold-dr", json={"colour": "blue"}),
        ask("no body", "PATCH", "/api/clusters/gold-dr"),
        ask("unknown cluster", "PATCH", "/api/clusters/gold-none", json={"instances": 2}),
        ask("no key", "PATCH", "/api/clusters/gold-dr", json={"instances": 2}, **anon),
        # POST /api/clusters/{name}/credentials/rotate (added after the snapshots were first taken)
        ask("unknown field", "POST", "/api/clusters/gold-dr/credentials/rotate", json={"password": "mine"}),
        ask("unknown cluster", "POST", "/api/clusters/gold-none/credentials/rotate", json={}),
        ask("no key", "POST", "/api/clusters/gold-dr/credentials/rotate", json={}, **anon),
        # POST /api/alerts
        ask("invalid JSON", "POST", "/api/alerts", content=b"{not json", headers=JSON),
        ask("not the common schema", "POST", "/api/alerts", json={**PROMETHEUS, "schemaId": "Microsoft.Insights/x"}),
        ask("no essentials", "POST", "/api/alerts", json={"schemaId": "azureMonitorCommonAlertSchema", "data": {}}),
        ask("empty alertId", "POST", "/api/alerts",
            json={**PROMETHEUS, "data": {"essentials": {**essentials, "alertId": ""}}}),
        ask("unknown monitorCondition", "POST", "/api/alerts",
            json={**PROMETHEUS, "data": {"essentials": {**essentials, "monitorCondition": "Maybe"}}}),
        ask("array body", "POST", "/api/alerts", json=[]),
        ask("no body", "POST", "/api/alerts"),
        ask("body too large", "POST", "/api/alerts", content=b"[" * 300_000, headers=JSON),
        ask("Resolved, nothing running", "POST", "/api/alerts",
            json=alert(PROMETHEUS, "gold-6", "gold-al1", condition="Resolved")),
        ask("no key", "POST", "/api/alerts", json=PROMETHEUS, **anon),
        # POST /api/subscriptions
        ask("unknown operation", "POST", "/api/subscriptions", json={"operation": "explode", "callbackUrl": hook}),
        ask("no callbackUrl", "POST", "/api/subscriptions", json={"operation": "deploy", "request": SPEC}),
        ask("bad callbackUrl", "POST", "/api/subscriptions", json={"operation": "deploy", "callbackUrl": "not a url"}),
        ask("invalid cluster name", "POST", "/api/subscriptions",
            json={"operation": "restore", "cluster": "Not_A_Name", "callbackUrl": hook}),
        ask("request not an object", "POST", "/api/subscriptions",
            json={"operation": "deploy", "request": [], "callbackUrl": hook}),
        ask("unknown field", "POST", "/api/subscriptions",
            json={"operation": "deploy", "extra": 1, "callbackUrl": hook}),
        ask("invalid spec", "POST", "/api/subscriptions",
            json={"operation": "deploy", "request": {"name": "gold-x", "instances": 0}, "callbackUrl": hook}),
        ask("teardown of unknown cluster", "POST", "/api/subscriptions",
            json={"operation": "teardown", "cluster": "gold-none", "callbackUrl": hook}),
        ask("no body", "POST", "/api/subscriptions"),
        ask("no key", "POST", "/api/subscriptions", json={"operation": "deploy", "callbackUrl": hook}, **anon),
        # DELETE /api/subscriptions/{id} and DELETE /api/subscriptions
        ask("unknown id", "DELETE", f"/api/subscriptions/{NO_SUCH_OP}"),
        ask("invalid id", "DELETE", "/api/subscriptions/bad%20id"),
        ask("no key", "DELETE", f"/api/subscriptions/{NO_SUCH_OP}", **anon),
        ask("unknown callbackUrl", "DELETE", "/api/subscriptions", json={"callbackUrl": f"{receiver.url}/other"}),
        ask("extra field", "DELETE", "/api/subscriptions", json={"callbackUrl": hook, "extra": 1}),
        ask("no callbackUrl", "DELETE", "/api/subscriptions", json={}),
        ask("no body", "DELETE", "/api/subscriptions"),
        ask("no key", "DELETE", "/api/subscriptions", json={"callbackUrl": hook}, **anon),
        # /api/operations/{id}[/report|/approve|/reject|/cancel]
        *operations,
        ask("operation without a report yet (markdown)", "GET", f"/api/operations/{NO_SUCH_OP}/report?format=markdown"),
    ]


def take(
    snap: Snapshots, platform: ScriptedPlatform, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The fixed sequence of requests; the OpenAPI document served. Every run it starts has ended when it returns."""
    anon = {"anonymous": True}
    for name in ("gold-bk", "gold-rs", "gold-dr"):
        with_cluster(platform, name)

    # ---- health, openapi, doctor, the devhost's own answers ------------------------------------------
    served, *_ = snap.batch(
        ask("keyed", "GET", "/api/openapi.json"),
        ask("no key", "GET", "/api/openapi.json", **anon),
        ask("anonymous", "GET", "/api/health", **anon),
        ask("default spec", "GET", "/api/doctor"),
        ask("deleteBackups=true", "GET", "/api/doctor?deleteBackups=true"),
        ask("bad namespace", "GET", "/api/doctor?namespace=Not_A_Namespace"),
        ask("bad deleteBackups flag", "GET", "/api/doctor?deleteBackups=maybe"),
        ask("no key", "GET", "/api/doctor", **anon),
        ask("spec", "POST", "/api/doctor", json={"name": "gold-doctor", **SPEC}),
        ask("no body", "POST", "/api/doctor"),
        ask("invalid instances", "POST", "/api/doctor", json={"name": "gold-doctor", "instances": 0}),
        ask("no key", "POST", "/api/doctor", json={"name": "gold-doctor"}, **anon),
        ask("unknown route", "GET", "/api/nothing-here"),
        ask("method not allowed", "PUT", "/api/clusters", json={}),
        ask("durable webhook without key", "GET", "/runtime/webhooks/durabletask/instances/x", **anon),
    )
    with monkeypatch.context() as misconfigured:
        misconfigured.setenv("PGHA_RETRY_AFTER_SECONDS", "soon")
        snap("misconfigured setting", "GET", "/api/health", **anon)

    def unreachable(*args: object, **kwargs: object) -> None:
        from azure.core.exceptions import ServiceRequestError

        raise ServiceRequestError("storage unreachable")

    with monkeypatch.context() as broken:
        broken.setattr(locks, "holder", unreachable)
        snap("storage unreachable", "POST", "/api/clusters", json={"name": "gold-503", **SPEC})

    # ---- deploy: the good run and its report; then everything refused whatever runs -------------------
    deploy = snap("valid spec", "POST", "/api/clusters", json={"name": "gold-a", **SPEC}).headers["Location"]
    snap.follow("deploy finished", deploy)
    snap.batch(
        ask("deploy report (json)", "GET", f"{deploy}/report"),
        ask("deploy report (?format=json)", "GET", f"{deploy}/report?format=json"),
        ask("deploy report (?format=markdown)", "GET", f"{deploy}/report?format=markdown"),
        ask("deploy report (?format=html, key as ?code=)", "GET", f"{deploy}/report?format=html&code={snap.key}",
            **anon),
        ask("deploy report (?format=pdf)", "GET", f"{deploy}/report?format=pdf"),
        ask("fleet page (key as ?code=)", "GET", f"/api/dashboard?code={snap.key}", **anon),
        ask("key as ?code=", "GET", f"/api/clusters/gold-a?code={snap.key}", **anon),
        *invalid_requests(receiver),
    )

    # ---- teardown ----------------------------------------------------------------------------------------
    teardown = snap("existing cluster", "DELETE", "/api/clusters/gold-a").headers["Location"]
    snap.follow("teardown finished", teardown)
    snap("teardown report (markdown)", "GET", f"{teardown}/report?format=markdown")

    # ---- runs that wait (never ready): 409 busy, cancel, unsubscribe ---------------------------------------
    platform.polls_until_ready = None
    by_id = snap("deploy with callbackUrl", "POST", "/api/subscriptions", json={
        "operation": "deploy", "request": {"name": "gold-sub1", **SPEC}, "callbackUrl": f"{receiver.url}/one"})
    by_callback = snap.send("POST", "/api/subscriptions", json={
        "operation": "deploy", "request": {"name": "gold-sub2", **SPEC}, "callbackUrl": f"{receiver.url}/two"})
    assert by_callback.status_code == 201, by_callback.text
    busy = snap("busy: deploy", "POST", "/api/clusters", json={"name": "gold-busy", **SPEC}).headers["Location"]
    sub1 = by_id.json()["id"]
    waiting = [by_id.json()["statusQueryGetUri"], by_callback.json()["statusQueryGetUri"], busy]
    for location in waiting:
        snap.until(location, at_step("synchronous standby"))
    snap.batch(
        ask("running", "GET", busy),
        ask("running, key as ?code=", "GET", f"{busy}?code={snap.key}", **anon),
        ask("with an operation running", "GET", "/api/clusters/gold-busy"),
        ask("busy cluster", "POST", "/api/clusters", json={"name": "gold-busy", **SPEC}),
        ask("busy cluster", "DELETE", "/api/clusters/gold-busy"),
        ask("busy cluster", "POST", "/api/clusters/gold-busy/backups", json={}),
        ask("busy cluster", "POST", "/api/clusters/gold-busy/restores", json={"name": "gold-busy-copy"}),
        ask("busy cluster", "POST", "/api/clusters/gold-busy/drills/failover", json={}),
        ask("busy cluster", "POST", "/api/subscriptions",
            json={"operation": "teardown", "cluster": "gold-busy", "callbackUrl": f"{receiver.url}/busy"}),
        ask("nothing pending", "POST", f"{busy}/approve", json={}),
        ask("nothing pending", "POST", f"{busy}/reject", json={}),
    )
    snap.batch(
        ask("running operation", "POST", f"{busy}/cancel"),
        ask("running subscription", "DELETE", f"/api/subscriptions/{sub1}"),
        ask("running subscription", "DELETE", "/api/subscriptions", json={"callbackUrl": f"{receiver.url}/two"}),
    )
    snap.follow("canceled by /cancel", busy)
    snap.follow("canceled by unsubscribe", waiting[0])
    snap.follow(None, waiting[1])
    platform.polls_until_ready = 1
    snap.batch(
        ask("ended operation", "POST", f"{busy}/cancel"),
        ask("ended operation", "POST", f"{busy}/approve", json={}),
        ask("ended operation", "POST", f"{busy}/reject", json={}),
        ask("ended subscription", "DELETE", f"/api/subscriptions/{sub1}"),
        ask("ended subscription", "DELETE", "/api/subscriptions", json={"callbackUrl": f"{receiver.url}/two"}),
        ask("canceled run's report", "GET", f"{busy}/report"),
    )

    # ---- backups, restores, drills: each run ends (422) on the scripted platform --------------------------
    started = snap.batch(
        ask("new backup", "POST", "/api/clusters/gold-bk/backups", json={}),
        ask("new cluster", "POST", "/api/clusters/gold-rs/restores", json={"name": "gold-rs-copy"}),
        ask("graceful", "POST", "/api/clusters/gold-dr/drills/failover", json={}),
    )
    for finished, response in zip(("verify_backups", "restore_cluster", "failover_drill"), started, strict=True):
        snap.follow(f"{finished} finished", response.headers["Location"])

    # ---- alerts: approval, rejection, Resolved; a duplicate; an unknown cluster ----------------------------
    platform.primary_up, platform.ha_paused = False, True
    for name in ("gold-al1", "gold-al2", "gold-al3"):
        with_cluster(platform, name, instances=3)
    approval = snap("Fired (Prometheus)", "POST", "/api/alerts", json=alert(PROMETHEUS, "gold-1", "gold-al1"))
    snap("Fired again (duplicate)", "POST", "/api/alerts", json=alert(PROMETHEUS, "gold-1", "gold-al1"))
    rejected = snap.send("POST", "/api/alerts", json=alert(PROMETHEUS, "gold-2", "gold-al2")).headers["Location"]
    resolved = snap.send("POST", "/api/alerts", json=alert(PROMETHEUS, "gold-3", "gold-al3")).headers["Location"]
    approved = approval.headers["Location"]
    for location in (approved, rejected, resolved):
        snap.until(location, pending)
    snap.batch(
        ask("waiting for an approval", "GET", approved),
        ask("decision too long", "POST", f"{approved}/approve", json={"by": "x" * 201}),
        ask("decision not an object", "POST", f"{approved}/approve", json=["yes"]),
        ask("waiting for an approval", "POST", f"{rejected}/reject",
            json={"by": "oncall@example.com", "comment": "no"}),
        ask("Resolved while its run waits", "POST", "/api/alerts",
            json=alert(PROMETHEUS, "gold-3", "gold-al3", condition="Resolved")),
    )
    snap.follow("rejected alert response finished", rejected)
    snap.follow("resolved alert response finished", resolved)
    snap("waiting for an approval", "POST", f"{approved}/approve", json={"by": "oncall@example.com"})
    snap.follow("approved alert response finished", approved)  # it resumed the HA manager: a primary again
    assert platform.primary_up and not platform.ha_paused
    lag, log = snap.batch(
        ask("Fired (platform metric), unknown cluster", "POST", "/api/alerts",
            json=alert(METRIC, "gold-4", "gold-none-lag")),
        ask("Fired (log search)", "POST", "/api/alerts", json=alert(LOG, "gold-5", "gold-al1")),
    )
    snap.follow("alert for an unknown cluster finished", lag.headers["Location"])
    snap.follow("log alert response finished", log.headers["Location"])
    return served.json()


def dumped(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def compare(name: str, actual: Any) -> str | None:
    """None when the golden file says `actual` (or has just been rewritten with it); what differs otherwise."""
    path = GOLDEN / name
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumped(actual))
        return None
    expected = path.read_text()
    if expected == dumped(actual):
        return None
    changed = []
    if name == "routes.json":  # which answers: `METHOD /api/route [label]`
        golden = json.loads(expected)
        changed = [f"{route} [{label}]" for route in sorted({*golden, *actual})
                   for label in sorted({*golden.get(route, {}), *actual.get(route, {})})
                   if golden.get(route, {}).get(label) != actual.get(route, {}).get(label)]
    diff = difflib.unified_diff(expected.splitlines(), dumped(actual).splitlines(), f"golden/{name}", "served",
                                lineterm="")
    return "\n".join([*(f"differs: {what}" for what in changed), *list(diff)[:300]])


def test_the_api_answers_as_its_golden_snapshots_say(
    devhost: Any, scripted: ScriptedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = Snapshots(devhost.url, devhost.key, app_routes())
    receiver = Receiver()
    try:
        served = take(snap, scripted, receiver, monkeypatch)
    finally:
        receiver.shutdown()
        snap.close()
    document = json.loads(snap.normaliser.text(json.dumps(served)))  # its `host`: `<host>`
    snap.taken["GET /api/openapi.json"]["keyed"]["body"] = {"$golden": "openapi.json"}  # compared whole, below
    missing = [route for route, taken in snap.taken.items() if not taken]
    assert not missing, f"routes without a snapshot: {missing}"
    differences = [diff for diff in (compare("openapi.json", document), compare("routes.json", snap.taken)) if diff]
    assert not differences, (
        "the API answers differently from its golden snapshots: explain each difference, or fix it "
        "(PGHA_GOLDEN_WRITE=1 rewrites them)\n" + "\n".join(differences))
