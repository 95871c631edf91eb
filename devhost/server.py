"""The devhost's HTTP server: function_app.py's HTTP routes with their own handlers, and the
Durable Functions RPC routes that the real DurableOrchestrationClient calls, on durabletask."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devhost.engine import Engine

log = logging.getLogger("pgha.devhost")
RPC_PREFIX = "/runtime/webhooks/durabletask/"
TASK_HUB = "pgha"
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the Functions host's own limit is far higher; nothing of pgha's is near
Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


def route_pattern(template: str) -> re.Pattern[str]:
    """A Functions route template (`clusters/{name}`, `{id?}`, `{name:alpha}`) as a regex."""
    parts = []
    for segment in template.strip("/").split("/"):
        match = re.fullmatch(r"\{(\w+)(?::[^}?]+)?(\?)?\}", segment)
        if match:
            parts.append(f"(?P<{match.group(1)}>[^/]+)" + ("?" if match.group(2) else ""))
        else:
            parts.append(re.escape(segment))
    return re.compile("^/api/" + "/".join(parts) + "/?$")


class HttpFunction:
    def __init__(self, function: Any) -> None:
        trigger = function.get_trigger()
        self.name = function.get_function_name()
        self.pattern = route_pattern(trigger.route or self.name)
        self.methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or ["GET", "POST"])}
        self.auth_level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "function")
        self.request_param = trigger.name
        self.client_param = next(
            (b.name for b in function.get_bindings() if b.type == "durableClient"), None
        )
        self.handler = function.get_user_function()


class HttpServer(ThreadingHTTPServer):
    """A listen backlog for bursts (an action group's retries, a fan of Logic App calls): the default of 5
    resets connections when 50 arrive at once."""

    request_queue_size = 256
    daemon_threads = True


class DevServer:
    """Serves /api/* from the app's HTTP functions and /runtime/webhooks/durabletask/* from the engine."""

    def __init__(
        self, engine: Engine, http_functions: list[Any], key: str, host: str = "127.0.0.1", port: int = 7071
    ) -> None:
        self.engine = engine
        self.key = key
        # the app's own durable clients reach the engine under a path nobody else knows (in Azure, the
        # host's local RPC port); the public /runtime/webhooks/durabletask/ routes need the key
        self.internal_rpc = f"/_rpc/{secrets.token_urlsafe(16)}/"
        self.functions = [HttpFunction(f) for f in http_functions]
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="devhost-loop", daemon=True)
        self.httpd = HttpServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="devhost-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._loop_thread.start()
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(timeout=5)

    # ---- the durable client binding --------------------------------------------------------------
    def starter_binding(self) -> str:
        base = f"{self.url}{self.internal_rpc}"
        instance = f"{base}instances/INSTANCEID"
        return json.dumps({
            "taskHubName": TASK_HUB,
            "creationUrls": {
                "createNewInstancePostUri": f"{base}orchestrators/{{functionName}}[/{{instanceId}}]",
                "createAndWaitOnNewInstancePostUri": f"{base}orchestrators/{{functionName}}[/{{instanceId}}]",
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": instance,
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}",
                "purgeHistoryDeleteUri": instance,
                "restartPostUri": f"{instance}/restart",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}",
                "resumePostUri": f"{instance}/resume?reason={{text}}",
            },
            "rpcBaseUrl": base,
            "baseUrl": base,
        })

    # ---- dispatch --------------------------------------------------------------------------------
    def dispatch(self, method: str, raw_url: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(raw_url)
        query = dict(parse_qsl(parts.query))
        if parts.path.startswith(self.internal_rpc):
            return self._rpc(method, parts.path[len(self.internal_rpc):], query, body)
        if parts.path.startswith(RPC_PREFIX):
            if not self.authorized(headers, query):
                return UNAUTHORIZED
            return self._rpc(method, parts.path[len(RPC_PREFIX):], query, body)
        for function in self.functions:
            match = function.pattern.match(parts.path)
            if match and method in function.methods:
                if function.auth_level != "anonymous" and not self.authorized(headers, query):
                    return UNAUTHORIZED
                return self._invoke(function, method, raw_url, headers, body, match)
        allowed = any(f.pattern.match(parts.path) for f in self.functions)
        if allowed:
            return _json(405, {"code": "MethodNotAllowed", "message": f"{method} is not allowed on {parts.path}"})
        return _json(404, {"code": "NotFound", "message": f"no route {parts.path}"})

    def authorized(self, headers: dict[str, str], query: dict[str, str]) -> bool:
        """The Functions host's check: the key in `x-functions-key` or in `?code=`, compared in constant time."""
        given = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None) or query.get("code", "")
        return bool(self.key) and hmac.compare_digest(given.encode(), self.key.encode())

    def _invoke(
        self, function: HttpFunction, method: str, raw_url: str, headers: dict[str, str], body: bytes,
        match: re.Match[str],
    ) -> Answer:
        parts = urlsplit(raw_url)
        request = func.HttpRequest(
            method=method, url=f"{self.url}{raw_url}", headers=headers, params=dict(parse_qsl(parts.query)),
            route_params={k: unquote(v) for k, v in match.groupdict().items() if v is not None}, body=body,
        )
        kwargs: dict[str, Any] = {function.request_param: request}
        if function.client_param:
            kwargs[function.client_param] = self.starter_binding()
        try:
            result = function.handler(**kwargs)
            if asyncio.iscoroutine(result):
                result = asyncio.run_coroutine_threadsafe(result, self.loop).result(timeout=300)
        except Exception:
            log.exception("function %s failed", function.name)
            return _json(500, {"code": "InternalError", "message": f"function {function.name} failed"})
        response: func.HttpResponse = result
        out_headers = dict(response.headers)
        out_headers.setdefault("Content-Type", response.mimetype or "text/plain")
        return response.status_code, out_headers, response.get_body() or b""

    def _rpc(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        engine = self.engine
        if method == "POST" and segments[0] == "orchestrators" and len(segments) in (2, 3):
            name = segments[1]
            instance_id = segments[2] if len(segments) == 3 else None
            data = json.loads(body) if body.strip() else None
            if isinstance(data, str):  # the client sends json.dumps(input) as a JSON string
                data = json.loads(data)
            try:
                instance_id = engine.start_new(name, instance_id, data)
            except KeyError:
                return _json(400, {"ExceptionMessage": f"The function '{name}' doesn't exist"})
            except Exception as err:  # e.g. the id exists already
                return _json(409, {"ExceptionMessage": str(err)})
            log.info("Started orchestration %s (%s)", name, instance_id)
            return _json(202, {"id": instance_id})
        if segments[0] != "instances" or len(segments) < 2:
            return _json(404, "not found")
        instance_id = segments[1]
        current = engine.status(instance_id)
        if len(segments) == 2 and method == "GET":
            if current is None:
                return _json(404, f"instance {instance_id} not found")
            if query.get("showInput", "").lower() == "true":
                current = engine.status(instance_id, show_input=True)
            if current is not None and query.get("showHistory", "").lower() == "true":
                with_payloads = query.get("showHistoryOutput", "").lower() == "true"
                current["historyEvents"] = engine.history_json(instance_id, with_payloads)
            running = current is not None and current["runtimeStatus"] in ("Running", "Pending")
            return _json(202 if running else 200, current)
        if method == "POST" and len(segments) >= 3 and segments[2] in ("raiseEvent", "terminate"):
            if current is None:
                return _json(404, f"instance {instance_id} not found")
            if current["runtimeStatus"] not in ("Running", "Pending", "Suspended"):
                return _json(410, f"instance {instance_id} is {current['runtimeStatus']}")
            if segments[2] == "raiseEvent":
                engine.raise_event(instance_id, segments[3], json.loads(body) if body.strip() else None)
            else:
                engine.terminate(instance_id, query.get("reason", ""))
            return _json(202, None)
        return _json(404, "not found")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in one write, with TCP_NODELAY: two small writes met the client's
            # delayed ACK and Nagle, and every answer (the app's own RPC calls too) waited 40 ms
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_REQUEST_BYTES:
                    self.close_connection = True  # the body is not read: the connection cannot be reused
                    code = 413 if length > 0 else 400
                    status, headers, payload = _json(code, {
                        "code": "PayloadTooLarge" if code == 413 else "InvalidRequest",
                        "message": f"request body must be 0..{MAX_REQUEST_BYTES} bytes with a valid Content-Length",
                    })
                else:
                    body = self.rfile.read(length) if length else b""
                    status, headers, payload = server.dispatch(
                        self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self._headers_buffer.append(b"\r\n" + payload)  # end_headers' blank line, then the body
                self.flush_headers()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        return Handler


def _json(status: int, body: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


UNAUTHORIZED: Answer = _json(401, {
    "code": "Unauthorized", "message": "a function key is required: x-functions-key header or code query",
})
