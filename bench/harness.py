"""What both benchmarks share: a state directory of their own, the stack and the devhost up before any
clock starts, and the printout with the ratio as its last line."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from devhost.host import DevHost
    from shared.platforms.local.platform import LocalPlatform


def rounds(doc: str | None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args().rounds


@contextmanager
def own_stack() -> Iterator[LocalPlatform]:
    """A state directory of the benchmark's own (unless PGHA_HOME names one) and its stack up; both gone after."""
    own_home = "PGHA_HOME" not in os.environ
    if own_home:
        home = Path(tempfile.mkdtemp(prefix="pgha-bench-", dir="/tmp"))
        home.chmod(0o755)
        os.environ["PGHA_HOME"] = str(home)

    from shared.platforms.local.platform import LocalPlatform
    from shared.settings import Settings

    platform = LocalPlatform(Settings.from_env())
    platform.stack.up()
    try:
        yield platform
    finally:
        platform.stop_all()
        if own_home:
            shutil.rmtree(os.environ["PGHA_HOME"], ignore_errors=True)


@contextmanager
def bench_session() -> Iterator[tuple[LocalPlatform, DevHost]]:
    """The stack and a devhost in this process, both up before any clock starts."""
    from devhost.host import DevHost
    from shared.ports import free_ports

    with own_stack() as platform:
        (port,) = free_ports(1)
        with DevHost(port=port, timers=False) as host:
            yield platform, host


@contextmanager
def served_session() -> Iterator[httpx.Client]:
    """`pgha serve` in a process of its own with a state directory of its own, and a keyed client: the senders
    are not the host's threads (an action group is another machine), so they do not share its interpreter."""
    import subprocess
    import sys

    from devhost.host import keyed_client
    from devhost.keys import function_key
    from shared.platforms.local.processes import wait_for_port
    from shared.ports import free_ports

    with own_stack() as platform:
        (port,) = free_ports(1)
        log = platform.home / "served.log"
        with open(log, "ab") as out:
            served = subprocess.Popen([sys.executable, "-m", "devhost.cli", "serve", "--port", str(port)],
                                      stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[1],
                                      env={**os.environ, "PGHA_TASK_HUB": "bench", "PGHA_LOG_LEVEL": "warning"})
        try:
            wait_for_port(port, 60, "pgha serve", served.pid, log)
            limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
            with keyed_client(f"http://127.0.0.1:{port}", function_key(platform.home), limits=limits) as api:
                yield api
        finally:
            served.terminate()
            try:
                served.wait(timeout=30)
            except subprocess.TimeoutExpired:
                served.kill()
                served.wait(timeout=10)


CLIENT_POLL_SECONDS = 0.1  # as often as (b)'s waits look: either clock stops within 0.1 s of its work's end


def follow(api: httpx.Client, response: httpx.Response) -> httpx.Response:
    """An operation's final answer, its Location polled every CLIENT_POLL_SECONDS."""
    assert response.status_code == 202, response.text
    while (status := api.get(response.headers["Location"])).status_code == 202:
        time.sleep(CLIENT_POLL_SECONDS)
    return status


def in_turn(round_no: int, raw: Callable[[int], object], orchestrated: Callable[[int], object]) -> None:
    """Both in each round, in an order swapped every round: neither always starts while the other's clean-up
    (stopped members still flushing) loads the machine."""
    for run in ((raw, orchestrated) if round_no % 2 == 0 else (orchestrated, raw)):
        run(round_no)


def print_ratio(what: str, orchestrated: list[float], raw_label: str, raw: list[float]) -> None:
    a, b = statistics.median(orchestrated), statistics.median(raw)
    print(f"(a) orchestrated {what}, median of {len(orchestrated)}: {a:.2f} s")
    print(f"(b) {raw_label}, median of {len(raw)}: {b:.2f} s")
    print(f"ratio a/b: {a / b:.2f}")
