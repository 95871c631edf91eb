"""Operation ids: unique per run and URL-safe (no `/ \\ # ?`), so reports never overwrite each other."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def new_operation_id(runbook: str, namespace: str, name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{runbook}-{namespace}-{name}-{stamp}-{secrets.token_hex(3)}"


def is_operation_id(value: str) -> bool:
    return bool(SAFE.match(value))
