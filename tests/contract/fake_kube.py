"""FakeKubeApi: a test double of the Kubernetes API server, at the HTTP level (no Kubernetes can run here).

It keeps objects by their REST path and answers the verbs pgha uses the way the API server documents
them: POST creates (409 AlreadyExists), GET reads (404 NotFound) and lists by equality label
selectors, PATCH with `application/apply-patch+yaml` (server-side apply: create or merge) or
`application/merge-patch+json` (RFC 7386), the `/status` subresource with `metadata.resourceVersion`
as an optimistic lock (409 Conflict), DELETE. Every request is recorded (method, path, query, content
type, body) for the tests to assert; `script` lets a test play the operator when objects change.

`pods/<name>/exec` is served as the API server does, over a websocket with the `v4.channel.k8s.io`
subprotocol (k8s.io/apimachinery/pkg/util/remotecommand, and kubernetes' Python stream/ws_client.py):
frames whose first byte is the channel (1 stdout, 2 stderr, 3 the final Status, with the exit code as
`details.causes[0].message` when it is not 0). What runs is up to `on_exec`, the operator double's.

Authorization is RBAC's: with `rbac` set, every request is mapped to its attributes as the apiserver's
RequestInfoFactory does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go: verb from the method, and
`list` for a GET of a collection; API group, resource and subresource, namespace, name) and refused with
403 Forbidden in the apiserver's words (endpoints/handlers/responsewriters/errors.go, forbiddenMessage)
unless granted; a server-side apply that creates needs `create` too (endpoints/handlers/patch.go), and
a websocket exec `get` and `create` on pods/exec (1.35's AuthorizePodWebsocketUpgradeCreatePermission).
`POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers from the same grants, as `kubectl
auth can-i` sees it (k8s.io/api/authorization/v1 SelfSubjectAccessReview; every authenticated user may
create one, system:basic-user).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.contract.admission import Invalid, admit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
Exec = Callable[["FakeKubeApi", str, str, str, list[str]], tuple[str, str, int]]


@dataclass(frozen=True)
class Attributes:
    """What RBAC decides on: `resource` carries its subresource (`pods/exec`); namespace None cluster-wide."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    name: str | None = None


Authorizer = Callable[[Attributes], bool]


def attributes(method: str, rest_path: str) -> Attributes:
    segments = rest_path.strip("/").split("/")
    group, tail = ("", segments[2:]) if segments[0] == "api" else (segments[1], segments[3:])
    namespace = None
    if len(tail) >= 3 and tail[0] == "namespaces":
        namespace, tail = tail[1], tail[2:]
    resource, name = tail[0], (tail[1] if len(tail) > 1 else None)
    if len(tail) > 2:
        resource = f"{resource}/{tail[2]}"
    verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection"}[method]
    return Attributes(verb, group, resource, namespace, name)


def forbidden(asked: Attributes, user: str) -> dict[str, Any]:
    what = f'{asked.resource} "{asked.name}"' if asked.name else asked.resource
    where = f'in the namespace "{asked.namespace}"' if asked.namespace else "at the cluster scope"
    message = (f'{what} is forbidden: User "{user}" cannot {asked.verb} resource "{asked.resource}" in API group '
               f'"{asked.group}" {where}')
    answer = status(403, "Forbidden", message)
    answer["details"] = {"name": asked.name or "", "group": asked.group, "kind": asked.resource.split("/")[0]}
    return answer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    authorization: str = ""


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also how this double approximates server-side apply)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message,
            "code": code}


@dataclass
class FakeKubeApi:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # REST path of the object -> object
    requests: list[Request] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path suffix, code): fail once
    stalls: list[tuple[str, str, float]] = field(default_factory=list)  # (method, path suffix, seconds): once
    on_write: list[Callable[[FakeKubeApi, str, dict[str, Any]], None]] = field(default_factory=list)
    on_read: list[Callable[[FakeKubeApi, str], None]] = field(default_factory=list)
    on_exec: Exec | None = None  # (api, namespace, pod, container, command) -> (stdout, stderr, exit code)
    cnpg_version: str = "1.30"  # whose published CRDs admit writes (tests/contract/admission.py)
    warnings: list[str] = field(default_factory=list)  # the Warning headers the server would have sent
    rbac: Authorizer | None = None  # None: cluster-admin
    user: str = "9e3b7c1a-0000-4000-8000-00000000c0de"  # the caller's Entra object id, as AKS names users
    lock: threading.RLock = field(default_factory=threading.RLock)
    _versions: Any = field(default_factory=lambda: itertools.count(1000))

    # ---- state helpers for tests -----------------------------------------------------------------
    def put(self, obj_path: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
            self.objects[obj_path] = obj
            return obj

    def get(self, obj_path: str) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.objects.get(obj_path))

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]

    def writes(self) -> list[str]:
        """What changed the cluster: an access review is a POST the API server stores nothing of."""
        return [f"{r.method} {r.path}" for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")
                and not r.path.endswith("/selfsubjectaccessreviews")]

    # ---- HTTP ------------------------------------------------------------------------------------
    def handle(self, method: str, raw: str, content_type: str, body: bytes, auth: str) -> tuple[int, Any]:
        parts = urlsplit(raw)
        query = dict(parse_qsl(parts.query))
        parsed: Any = None
        if body:
            text = body.decode()
            parsed = json.loads(text) if text.strip() else None
        self.requests.append(Request(method, parts.path, query, content_type.split(";")[0], parsed, auth))
        for n, (m, suffix, seconds) in enumerate(self.stalls):
            if m == method and parts.path.endswith(suffix):
                del self.stalls[n]
                time.sleep(seconds)  # an API server that does not answer in time
                break
        for n, (m, suffix, code) in enumerate(self.failures):
            if m == method and parts.path.endswith(suffix):
                del self.failures[n]
                return code, status(code, "InternalError" if code >= 500 else "Conflict", "scripted failure")
        if parts.path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" and method == "POST":
            return 201, self.review(parsed)
        refused = self.refuse(attributes(method, parts.path))
        if refused is not None:
            return 403, refused
        with self.lock:
            if (method == "PATCH" and content_type.startswith("application/apply-patch")
                    and parts.path not in self.objects):
                refused = self.refuse(attributes("POST", parts.path.rsplit("/", 1)[0]))
                if refused is not None:
                    return 403, refused
            return self._dispatch(method, parts.path, query, content_type, parsed)

    def allowed(self, asked: Attributes) -> bool:
        return self.rbac is None or self.rbac(asked)

    def refuse(self, asked: Attributes) -> dict[str, Any] | None:
        return None if self.allowed(asked) else forbidden(asked, self.user)

    def review(self, body: dict[str, Any]) -> dict[str, Any]:
        """A SelfSubjectAccessReview answered from the same grants as every other request."""
        spec = (body.get("spec") or {}).get("resourceAttributes") or {}
        resource = spec.get("resource", "") + (f"/{spec['subresource']}" if spec.get("subresource") else "")
        asked = Attributes(spec.get("verb", ""), spec.get("group", ""), resource, spec.get("namespace") or None,
                           spec.get("name") or None)
        allowed = self.allowed(asked)
        reason = "" if allowed else "Azure does not have opinion for this user."  # AKS with Azure RBAC says so
        return {**body, "status": {"allowed": allowed, **({"reason": reason} if reason else {})}}

    def served(self, path: str) -> bool:
        """A custom resource is served only while its CRD exists (tests/contract/installed.py puts them):
        without it the API server answers 404 "the server could not find the requested resource"."""
        segments = path.strip("/").split("/")
        if segments[0] != "apis" or len(segments) < 4 or "." not in segments[1] or segments[1].endswith("k8s.io"):
            return True
        plural = segments[5] if segments[3] == "namespaces" and len(segments) > 5 else segments[3]
        return f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{segments[1]}" in self.objects

    def _dispatch(self, method: str, path: str, query: dict[str, str], content_type: str,
                  body: Any) -> tuple[int, Any]:
        subresource = path.endswith("/status")
        obj_path = path.removesuffix("/status")
        if not self.served(obj_path):
            return 404, status(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            for hook in self.on_read:
                hook(self, obj_path)
            if obj_path in self.objects:
                return 200, self.objects[obj_path]
            if self._is_collection(obj_path):
                return 200, {"kind": "List", "items": self._list(obj_path, query.get("labelSelector", ""))}
            return 404, status(404, "NotFound", f"{obj_path} not found")
        if method == "POST":
            target = f"{obj_path}/{body['metadata']['name']}"
            if target in self.objects:
                return 409, status(409, "AlreadyExists", f"{body['metadata']['name']} already exists")
            try:
                return 201, self._write(target, self._admit(body, query, None))
            except Invalid as refused:
                return refused.code, refused.status()
        if method == "PATCH":
            current = self.objects.get(obj_path)
            if subresource:
                if current is None:
                    return 404, status(404, "NotFound", f"{obj_path} not found")
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                    return 409, status(409, "Conflict", "the object has been modified; please apply your changes "
                                                        "to the latest version and try again")
                return 200, self._write(obj_path, {**current, "status": merge(current.get("status"),
                                                                                body.get("status") or {})})
            if current is None and not content_type.startswith("application/apply-patch"):
                return 404, status(404, "NotFound", f"{obj_path} not found")
            try:
                admitted = self._admit(merge(current, body), query, current)
            except Invalid as refused:
                return refused.code, refused.status()
            return (200 if current else 201), self._write(obj_path, admitted)
        if method == "DELETE":
            if obj_path not in self.objects:
                return 404, status(404, "NotFound", f"{obj_path} not found")
            gone = self.objects.pop(obj_path)
            for hook in self.on_write:
                hook(self, obj_path, {**gone, "deleted": True})
            return 200, status(200, "", "deleted") | {"status": "Success"}
        return 405, status(405, "MethodNotAllowed", method)

    def _admit(self, obj: dict[str, Any], query: dict[str, str], current: dict[str, Any] | None) -> dict[str, Any]:
        """Schema, names, CEL and CNPG's webhook rules, as the real server admits a write (admission.py);
        the object keeps what the server keeps (resourceVersion, status) across an update."""
        # a write to the main resource never sets status (the CRDs enable the status subresource)
        sent = {k: v for k, v in obj.items() if k != "status"}
        old = {k: v for k, v in current.items() if k != "status"} if current is not None else None
        stored, warnings = admit(sent, query.get("fieldValidation"), self.cnpg_version, old)
        self.warnings += warnings
        if current is not None and "status" in current:
            stored["status"] = current["status"]
        return stored

    def _write(self, obj_path: str, obj: dict[str, Any]) -> dict[str, Any]:
        stored = self.put(obj_path, obj)
        for hook in self.on_write:
            hook(self, obj_path, stored)
        return self.objects[obj_path]

    @staticmethod
    def _is_collection(rest_path: str) -> bool:
        """`/api/v1/namespaces/x/pods` or `/apis/g/v/namespaces/x/clusters` (or a cluster-scoped `.../namespaces`)."""
        segments = rest_path.strip("/").split("/")
        tail = segments[2:] if segments[0] == "api" else segments[3:]
        if tail and tail[0] == "namespaces" and len(tail) >= 3:
            return len(tail) == 3
        return len(tail) == 1

    def _list(self, collection: str, selector: str) -> list[dict[str, Any]]:
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        found = []
        for obj_path, obj in sorted(self.objects.items()):
            if obj_path.rsplit("/", 1)[0] != collection:
                continue
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                found.append(obj)
        return found


    def exec(self, raw: str) -> tuple[int, Any, tuple[str, str, int] | None]:
        """`GET …/pods/<pod>/exec?command=…&container=…`: 404 for a pod that is not there, else the run."""
        parts = urlsplit(raw)
        query = parse_qs(parts.query)
        self.requests.append(Request("GET", parts.path, {k: v[-1] for k, v in query.items()}, "", None))
        pod_path = parts.path.removesuffix("/exec")
        namespace, pod = pod_path.split("/")[4], pod_path.split("/")[6]
        for verb in ("get", "create"):
            refused = self.refuse(Attributes(verb, "", "pods/exec", namespace, pod))
            if refused is not None:
                return 403, refused, None
        if self.get(pod_path) is None:
            return 404, status(404, "NotFound", f'pods "{pod}" not found'), None
        if self.on_exec is None:
            return 400, status(400, "BadRequest", "no container runtime in this double"), None
        container = (query.get("container") or [""])[0]
        return 101, None, self.on_exec(self, namespace, pod, container, query.get("command") or [])


def frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """One unmasked, final websocket frame (server to client, RFC 6455 §5.2)."""
    size = len(payload)
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def exec_frames(stdout: str, stderr: str, code: int) -> bytes:
    final: dict[str, Any] = {"metadata": {}, "status": "Success"}
    if code:
        final = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                 "message": f"command terminated with non-zero exit code: exit status {code}",
                 "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
    out = frame(b"\x01" + stdout.encode()) if stdout else b""
    err = frame(b"\x02" + stderr.encode()) if stderr else b""
    return out + err + frame(b"\x03" + json.dumps(final).encode()) + frame(struct.pack("!H", 1000), 0x8)


class FakeKubeServer(ThreadingHTTPServer):
    def __init__(self, api: FakeKubeApi) -> None:
        self.api = api
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, answer: Any) -> None:
                payload = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _exec(self) -> None:
                code, answer, ran = outer.api.exec(self.path)
                if ran is None:
                    self._answer(code, answer)
                    return
                key = self.headers.get("Sec-WebSocket-Key", "")
                accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
                self.send_response(101, "Switching Protocols")
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
                self.end_headers()
                self.wfile.write(exec_frames(*ran))
                self.wfile.flush()
                self.close_connection = True

            def _serve(self) -> None:
                if self.command == "GET" and urlsplit(self.path).path.endswith("/exec"):
                    self._exec()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                self._answer(*outer.api.handle(self.command, self.path, self.headers.get("Content-Type", ""), body,
                                               self.headers.get("Authorization", "")))

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a stalled answer is no error of the server's."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def kubeconfig(self, token: str = "test-token") -> dict[str, Any]:
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }
