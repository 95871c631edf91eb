"""CNPG's schedule syntax, checked when a spec arrives rather than by the operator's webhook at the last
step of a deploy.

CNPG's ScheduledBackup webhook (internal/webhook/v1/scheduledbackup_webhook.go at v1.30.0) refuses a
schedule that `cron.Parse` of github.com/robfig/cron v1.2.0 refuses: six fields with leading seconds
(the day of week may be left out), each `*`, `?`, a value, a range `a-b`, a step `/n` or a list of
those; month and weekday names; or a descriptor (`@daily`, `@every 1h30m`, …).
"""

from __future__ import annotations

import re

FIELDS = (  # name, lowest, highest, names
    ("seconds", 0, 59, {}),
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: n for n, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}),
    ("day of week", 0, 6, {d: n for n, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")  # Go's time.ParseDuration


def check_schedule(schedule: str) -> str:
    """The schedule, or a ValueError that says which field is wrong and why."""
    text = schedule.strip()
    if text.startswith("@"):
        if text in DESCRIPTORS or (text.startswith("@every ") and DURATION.match(text[7:].strip())):
            return schedule
        raise ValueError(f"unrecognized descriptor {text!r}")
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"expected 6 fields (seconds minutes hours day-of-month month day-of-week), "
                         f"found {len(fields)}")
    for value, (name, low, high, names) in zip(fields, FIELDS, strict=False):
        for part in value.split(","):
            _check_part(part, name, low, high, names)
    return schedule


def _check_part(part: str, name: str, low: int, high: int, names: dict[str, int]) -> None:
    span, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{name}: step {step!r} must be a positive number")
    if span in ("*", "?"):
        return
    bounds = span.split("-")
    if len(bounds) > 2:
        raise ValueError(f"{name}: too many hyphens in {span!r}")
    numbers = [_number(b, name, names) for b in bounds]
    for number in numbers:
        if not low <= number <= high:
            raise ValueError(f"{name}: {number} is outside {low}-{high}")
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        raise ValueError(f"{name}: range {span!r} runs backwards")


def _number(text: str, name: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"{name}: {text!r} is not a number")
    return int(text)
