"""The devhost fires timer triggers on their NCRONTAB schedules, as the Functions host does."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime

import azure.functions as func

from devhost.engine import collect
from devhost.timers import TimerFunction, Timers

app = func.FunctionApp()
fired: list[tuple[float, bool]] = []
seen = threading.Event()


@app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", run_on_startup=True)
def every_second(timer: func.TimerRequest) -> None:
    fired.append((time.monotonic(), timer.past_due))
    if len(fired) >= 3:
        seen.set()


hourly_fired: list[float] = []


@app.timer_trigger(schedule="0 15 * ? * *", arg_name="timer")
def hourly_at_quarter_past(timer: func.TimerRequest) -> None:
    hourly_fired.append(time.monotonic())


def test_schedules_fire_on_time_and_on_startup() -> None:
    timers = Timers(collect(app).timers)
    assert sorted(t.name for t in timers.timers) == ["every_second", "hourly_at_quarter_past"]
    started = time.monotonic()
    timers.start()
    try:
        assert seen.wait(10), fired
    finally:
        timers.stop()
    assert fired[0][0] - started < 0.5  # runOnStartup
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(fired[1:])]  # after the startup run
    assert all(0.5 < gap < 1.5 for gap in gaps), gaps
    assert not any(past_due for _, past_due in fired)
    minute = datetime.now(UTC).minute
    if minute not in (14, 15, 16):  # the hourly one is not due while the test runs
        assert hourly_fired == []


def test_cnpg_style_six_field_schedule() -> None:
    timer = next(t for t in Timers(collect(app).timers).timers if t.name == "hourly_at_quarter_past")
    assert isinstance(timer, TimerFunction)
    after = timer.next_after(datetime(2026, 1, 1, 10, 20, tzinfo=UTC))
    assert after == datetime(2026, 1, 1, 11, 15, tzinfo=UTC)
