"""Azure Blob access shared by reports, locks and backup inventory (Azurite locally, Azure in production)."""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from datetime import datetime

import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# pgha's blobs are small control-plane records (locks, reports, claims, the archive's listing): a store that
# does not answer fails a call in seconds, and the caller decides (an HTTP 503, an activity's own retries).
# The SDK's default (ExponentialRetry: 3 retries from 15 s) holds each call for about a minute instead.
RETRY = {"retry_total": 2, "retry_connect": 2, "initial_backoff": 1, "increment_base": 2, "random_jitter_range": 0.5}
CONNECT_SECONDS = 10
# Connections kept open per host: as many as the threads that call storage at once (the I/O pool's 32 in
# shared/offload.py, the activities' 10). requests keeps 10; in an alert storm every call beyond them opened a
# connection and threw it away after one request (a TCP handshake locally, a TLS one on Azure).
POOL = 64


def transport() -> RequestsTransport:
    """The transport the storage SDK makes for itself (its read timeout of 60 s and 256 KiB blocks, from
    azure/storage/blob/_shared/base_client.py; urllib3 retrying nothing, as azure-core's _init_session sets it:
    the SDK's retry policy decides), on a session whose pool holds POOL connections. The adapter is requests'
    own, not azure-core's private BiggerBlockSizeHTTPAdapter: pgha's blobs are records of a few KiB."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=POOL, max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=False, connection_timeout=CONNECT_SECONDS,
                             read_timeout=60, connection_data_block_size=256 * 1024)


@functools.lru_cache(maxsize=8)
def service(connection: str) -> BlobServiceClient:
    """A client from a connection string, or from an account URL with DefaultAzureCredential; one per
    connection for the process (the SDK's clients are thread-safe and keep their connections open)."""
    if not connection:
        raise RuntimeError("no storage configured: set PGHA_STORAGE_CONNECTION or AzureWebJobsStorage")
    if connection.startswith("https://"):
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(connection, credential=DefaultAzureCredential(), transport=transport(), **RETRY)
    return BlobServiceClient.from_connection_string(connection, transport=transport(), **RETRY)


def container(connection: str, name: str, create: bool = False) -> ContainerClient:
    client = service(connection).get_container_client(name)
    if create:
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
    return client


def put(connection: str, container_name: str, name: str, data: str | bytes, **options: object) -> None:
    """Upload `name`, making the container on the first miss only: one call where asking first costs two."""
    client = container(connection, container_name)
    try:
        client.upload_blob(name, data, **options)  # type: ignore[arg-type]
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        client.upload_blob(name, data, **options)  # type: ignore[arg-type]


# a look that should answer at once (the doctor's): one try, a short connect; not the SDK's minutes of retries
QUICK = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 10}


def container_exists(client: ContainerClient, **options: object) -> bool:
    """`options` go to the request (azure-core's per-call `retry_total`, timeouts; see QUICK)."""
    try:
        client.get_container_properties(**options)
        return True
    except ResourceNotFoundError:
        return False


def list_names(client: ContainerClient, prefix: str) -> list[str]:
    if not container_exists(client):
        return []
    return [blob.name for blob in client.list_blobs(name_starts_with=prefix)]


def wait_for(client: ContainerClient, prefix: str, seconds: float, every: float = 0.5) -> bool:
    """Whether a blob under `prefix` appears within `seconds` (an archived WAL segment, say)."""
    deadline = time.monotonic() + seconds
    while True:
        if list_names(client, prefix):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def delete_prefix(client: ContainerClient, prefix: str) -> int:
    """Delete every blob under `prefix`; idempotent, returns how many were deleted."""
    deleted = 0
    for name in list_names(client, prefix):
        try:
            client.delete_blob(name)
            deleted += 1
        except ResourceNotFoundError:
            pass
    return deleted


@dataclass(frozen=True)
class Blob:
    name: str
    last_modified: datetime | None


class Container:
    """A container as the Platform port hands it out: what pgha's steps do with one, so none of them sees the
    SDK. Each call goes through this module's functions (and so through a test's replacement of them)."""

    def __init__(self, client: ContainerClient) -> None:
        self.client = client

    @property
    def name(self) -> str:
        return self.client.container_name

    def exists(self, **options: object) -> bool:
        return container_exists(self.client, **options)

    def names(self, prefix: str) -> list[str]:
        """The blob names under `prefix`; none when the container is missing."""
        return list_names(self.client, prefix)

    def blobs(self, prefix: str) -> list[Blob]:
        """The blobs under `prefix`, with their times; a missing container raises (ResourceNotFoundError)."""
        return [Blob(b.name, b.last_modified) for b in self.client.list_blobs(name_starts_with=prefix)]

    def read(self, name: str) -> bytes:
        return self.client.download_blob(name).readall()

    def wait_for(self, prefix: str, seconds: float, every: float = 0.5) -> bool:
        return wait_for(self.client, prefix, seconds, every)

    def delete_prefix(self, prefix: str) -> int:
        return delete_prefix(self.client, prefix)
