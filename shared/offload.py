"""Blocking storage calls (the Azure SDK's synchronous clients) run off the event loop in a pool sized for I/O.

asyncio.to_thread uses the loop's default executor: min(32, cpus + 4) threads, 6 on a 2-core host, so in an
alert storm a hundred first deliveries, each claiming a blob, queued for a thread rather than for storage.
These calls wait on the network and hold no CPU: 32 threads cost nothing while idle."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
THREADS = 32
IO = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="pgha-io")


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(IO, functools.partial(call, *args))
