"""Timer triggers on their NCRONTAB schedules (6 fields, leading seconds), as the Functions host fires them."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.functions.timer import TimerRequest
from croniter import croniter

log = logging.getLogger("pgha.devhost")


class TimerFunction:
    def __init__(self, function: Any, client_binding: Callable[[], str] | None = None) -> None:
        trigger = function.get_trigger()
        self.name = function.get_function_name()
        self.schedule = trigger.schedule
        self.run_on_startup = bool(getattr(trigger, "run_on_startup", False))
        self.param = trigger.name
        self.handler = function.get_user_function()
        self.client_param = next((b.name for b in function.get_bindings() if b.type == "durableClient"), None)
        self.client_binding = client_binding
        self.loop: asyncio.AbstractEventLoop | None = None
        self.fired = 0

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.schedule, moment, second_at_beginning=True).get_next(datetime)

    def fire(self, past_due: bool = False) -> None:
        self.fired += 1
        try:
            kwargs: dict[str, Any] = {self.param: TimerRequest(past_due=past_due)}
            if self.client_param and self.client_binding:
                kwargs[self.client_param] = self.client_binding()
            result = self.handler(**kwargs)
            if asyncio.iscoroutine(result):
                if self.loop is not None:  # the host's loop: the durable client's HTTP session lives there
                    asyncio.run_coroutine_threadsafe(result, self.loop).result(timeout=300)
                else:
                    asyncio.run(result)
        except Exception:
            log.exception("timer %s failed", self.name)


class Timers:
    def __init__(self, functions: list[Any], client_binding: Callable[[], str] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.timers = [TimerFunction(f, client_binding) for f in functions]
        for timer in self.timers:
            timer.loop = loop
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for timer in self.timers:
            thread = threading.Thread(target=self._run, args=(timer,), name=f"timer-{timer.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, timer: TimerFunction) -> None:
        if timer.run_on_startup:
            timer.fire()
        due = timer.next_after(datetime.now(UTC))
        while not self._stop.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
            late = (datetime.now(UTC) - due).total_seconds() > 60
            timer.fire(past_due=late)
            due = timer.next_after(max(due, datetime.now(UTC)))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
