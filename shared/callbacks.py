"""Callback URLs: where a run POSTs its report when it ends (a Logic App's HTTP Webhook action, an
alert receiver).

A callback URL carries its own credential (a Logic App trigger's `sig=`, a SAS token), so it is kept
in blob container `callbacks/` under the operation id and read by the activity that posts: it never
enters orchestration input, history, custom status or reports.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.exceptions import ResourceNotFoundError

from shared import objectstore

CONTAINER = "callbacks"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
ATTEMPTS = 4
TIMEOUT_SECONDS = 10.0


class CallbackError(ValueError):
    pass


def check_url(url: object, allowed_hosts: tuple[str, ...] = ("*",)) -> str:
    """An absolute http(s) URL to an allowed host; anything else is refused before a run starts."""
    if not isinstance(url, str) or len(url) > 2048:
        raise CallbackError("must be an http or https URL of at most 2048 characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise CallbackError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackError("must be an absolute http or https URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise CallbackError("must be https: its key and the report travel in it (http only on loopback)")
    if not any(fnmatch.fnmatchcase(parts.hostname.lower(), pattern) for pattern in allowed_hosts):
        raise CallbackError(f"host {parts.hostname} is not among the allowed callback hosts (PGHA_CALLBACK_HOSTS)")
    return url


def register(connection: str, operation_id: str, url: str) -> None:
    """Keep the URL for the run, and the run for the URL (a webhook unsubscribes by its callback URL)."""
    objectstore.put(connection, CONTAINER, operation_id, url, overwrite=True)
    objectstore.put(connection, CONTAINER, _by_url(url), operation_id, overwrite=True)


def forget(connection: str, operation_id: str, url: str) -> None:
    """Once delivered, the URL (a credential) is not kept."""
    client = objectstore.container(connection, CONTAINER)
    for name in (operation_id, _by_url(url)):
        with contextlib.suppress(ResourceNotFoundError):
            client.delete_blob(name)


def operation_for(connection: str, url: str) -> str | None:
    try:
        return objectstore.container(connection, CONTAINER).download_blob(_by_url(url)).readall().decode()
    except ResourceNotFoundError:
        return None


def _by_url(url: str) -> str:
    return "by-url/" + hashlib.sha256(url.encode()).hexdigest()


def lookup(connection: str, operation_id: str) -> str | None:
    try:
        return objectstore.container(connection, CONTAINER).download_blob(operation_id).readall().decode()
    except ResourceNotFoundError:
        return None


def where(url: str) -> str:
    """The receiver named for a report: scheme, host and path, never the query that holds its key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def post(url: str, report: dict[str, Any], attempts: int = ATTEMPTS) -> str:
    """POST the report, retrying with back-off (1, 2, 4 s) on a network error, 408, 429 or 5xx."""
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(2 ** (attempt - 1))
        try:
            response = httpx.post(url, json=report, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as err:
            last = type(err).__name__
            continue
        if response.is_success:
            return f"{where(url)} answered {response.status_code} (attempt {attempt + 1})"
        last = f"HTTP {response.status_code}"
        if response.status_code not in (408, 429) and response.status_code < 500:
            break
    raise RuntimeError(f"callback {where(url)} failed after {attempt + 1} attempt(s): {last}")
