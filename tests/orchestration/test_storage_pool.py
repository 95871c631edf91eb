"""pgha's storage client keeps a connection open for each thread that calls it at once: in an alert storm the
I/O pool's 32 threads claim alerts side by side, and a pool of requests' default 10 opened (and threw away) a
connection for every call beyond them."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared import objectstore
from shared.offload import THREADS
from shared.settings import Settings


def test_as_many_calls_at_once_as_the_io_pool_makes_open_no_connection_to_throw_away(
    devhost: Any, caplog: pytest.LogCaptureFixture
) -> None:
    connection = Settings.from_env().storage_connection  # Azurite, up with the devhost
    threads = THREADS
    container = objectstore.container(connection, "pool-test", create=True)

    def upload(n: int) -> None:
        container.upload_blob(f"blob-{n}", b"{}", overwrite=True)

    try:
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), ThreadPoolExecutor(threads) as pool:
            for wave in range(3):  # the waves after the first reuse the connections the first one opened
                list(pool.map(upload, range(wave * threads, (wave + 1) * threads)))
    finally:
        container.delete_container()
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert not discarded, f"{len(discarded)} connections opened for one call and thrown away"
    # and what keeps them, whether or not this run's uploads happened to overlap
    session = objectstore.transport().session
    assert session is not None and session.get_adapter("https://x")._pool_maxsize >= threads  # type: ignore[attr-defined]
