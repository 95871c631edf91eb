"""One shape for every answer: JSON bodies, and errors as `{code, message, field?}`."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared.model import SpecError, parse_model

log = logging.getLogger("pgha.http")
MAX_BODY_BYTES = 256 * 1024


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None,
        extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.extra, self.headers = extra or {}, headers or {}

    def response(self) -> func.HttpResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return json_response(self.status, {**body, **self.extra}, self.headers)


def unexpected(err: Exception) -> func.HttpResponse:
    """A failure of storage or of the durable runtime: logged, and answered 503 in the one error shape
    (callers such as Azure Monitor's action groups retry a 503)."""
    return unavailable(None, err).response()


def unavailable(doing: str | None, err: Exception) -> ApiError:
    """The 503 for a failure of storage or of the runtime, saying what pgha was doing (never the error's text:
    it may quote a connection string)."""
    log.error("request failed%s: %s", f" while {doing}" if doing else "", type(err).__name__, exc_info=err)
    where = f" while {doing}" if doing else ""
    return ApiError(503, "Unavailable", f"pgha could not complete the request{where} ({type(err).__name__}); "
                    "try again")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, indent=2, default=str), status_code=status, mimetype="application/json",
        headers=headers or {},
    )


def read_json(req: func.HttpRequest, required: bool = True) -> Any:
    raw = req.get_body() or b""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"request body over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "InvalidRequest", "a JSON body is required", "body")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, "InvalidJson", f"body is not valid JSON: {err}", "body") from None
    except RecursionError:
        raise ApiError(400, "InvalidJson", "body is nested too deeply", "body") from None


def query_flag(req: func.HttpRequest, name: str) -> bool:
    value = (req.params.get(name) or "").lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise ApiError(400, "InvalidQuery", f"{name} must be true or false", name)


def base_url(req: func.HttpRequest) -> str:
    """Scheme and host of the request, so Location headers are absolute as Logic Apps expects."""
    from urllib.parse import urlsplit

    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def request_model(req: func.HttpRequest, kind: type[Any]) -> Any:
    """An optional JSON body validated into `kind`; a 400 names the field (`checks.0.query`) when it is bad."""
    return parse_request(kind, read_json(req, required=False))


def parse_request(kind: type[Any], body: object) -> Any:
    try:
        return parse_model(kind, body)
    except SpecError as err:
        raise ApiError(400, "InvalidRequest", err.message, err.field) from None
