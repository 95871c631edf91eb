"""The devhost's function key: what Azure's host keys are to a Function App, checked the same way
(`x-functions-key` header or `code` query) on every route that is not anonymous."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

KEY_SETTING = "PGHA_FUNCTION_KEY"


def key_file(home: Path) -> Path:
    return home / "devhost" / "function-key"


def function_key(home: Path) -> str:
    """PGHA_FUNCTION_KEY when set; otherwise the key kept in PGHA_HOME, made (0600) on first use.

    Never empty: an empty key would let every request through."""
    configured = os.environ.get(KEY_SETTING, "").strip()
    if configured:
        return configured
    path = key_file(home)
    for _ in range(50):
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if key:
            return key
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
        try:
            if path.exists():  # empty (truncated): replace it
                os.replace(draft, path)
            else:
                os.link(draft, path)  # atomic, and only if no other devhost made one meanwhile
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
        time.sleep(0.01)
    raise RuntimeError(f"cannot read or make the function key in {path}")
