"""The devhost's function key: what Azure's host keys are to a Function App, checked the same way
(`x-functions-key` header or `code` query) on every route that is not anonymous."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_SETTING = "PGHA_FUNCTION_KEY"


def key_file(home: Path) -> Path:
    return home / "devhost" / "function-key"


def function_key(home: Path) -> str:
    """PGHA_FUNCTION_KEY when set; otherwise the key kept in PGHA_HOME, made (0600) on first use."""
    configured = os.environ.get(KEY_SETTING, "").strip()
    if configured:
        return configured
    path = key_file(home)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another devhost made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as out:
        out.write(key)
    return key
