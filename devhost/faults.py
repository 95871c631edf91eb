"""A fault the demo makes on a running local cluster for the monitoring to see: nothing here talks to pgha,
which learns of it only from Alertmanager."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HELD = "pgha_demo_held"
WRITES = "pgha_demo_writes"


@contextmanager
def replay_held_back(platform: Any, namespace: str, name: str) -> Iterator[None]:
    """A reader on a standby keeps a lock that the primary's DROP TABLE needs: that standby's replay waits
    (up to max_standby_streaming_delay, 30 s by default) while the primary's writes keep arriving, as a long
    report on a standby holds replay back. Ends when the block ends."""
    with platform.connect(namespace, name, "rw") as primary:
        primary.execute(f"CREATE TABLE IF NOT EXISTS {HELD} (x int)")
        primary.execute(f"CREATE TABLE IF NOT EXISTS {WRITES} (at timestamptz)")
        primary.commit()
    time.sleep(1)  # the standbys have replayed the table
    stop = threading.Event()

    def write() -> None:
        with platform.connect(namespace, name, "rw") as primary:
            primary.execute(f"DROP TABLE {HELD}")
            primary.commit()
            while not stop.wait(0.5):
                primary.execute(f"INSERT INTO {WRITES} VALUES (now())")
                primary.commit()

    with platform.connect(namespace, name, "ro") as reader:
        reader.autocommit = False
        reader.execute(f"SELECT count(*) FROM {HELD}")  # its transaction stays open, and its lock with it
        writer = threading.Thread(target=write, name="demo-writes", daemon=True)
        writer.start()
        try:
            yield
        finally:
            stop.set()
            writer.join(10)
