"""Rotating the app owner's password, as steps that each survive a second delivery: the secret holds the
password in use (`password`), the next one while it is being set (`pending`), and the one before it until the
run has proven it refused (`previous`). Each step reads the secret's keys and answers them changed, or None
when the secret is already where that step leads; the adapters read and write their own store (a file
locally, a Kubernetes Secret on AKS). Passwords never leave the activity that moves them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Literal

from shared.secrets import generate_password
from shared.sql import SqlError

Keys = dict[str, str]
Which = Literal["password", "previous", "pending"]


def staged(keys: Keys) -> Keys | None:
    """A new password made and held as `pending` (kept if a delivery before this one made it); a `previous`
    an earlier rotation left behind goes: the password in use is the one to fall back to."""
    if "pending" in keys:
        return None
    return {**{k: v for k, v in keys.items() if k != "previous"}, "pending": generate_password()}


def committed(keys: Keys) -> Keys | None:
    """The pending password in use, the old one kept as `previous` until it is proven refused."""
    if "pending" not in keys:
        if "previous" in keys:
            return None  # committed by an earlier delivery
        raise RuntimeError("no new password is staged: nothing to commit")
    rest = {k: v for k, v in keys.items() if k != "pending"}
    return {**rest, "password": keys["pending"], "previous": keys["password"]}


def reverted(keys: Keys, committed: bool) -> Keys | None:
    """A rotation that could not be proven undone: before its commit the staged password dropped (the one in
    use never changed; a `previous` there is an earlier rotation's, never to come back), after it the previous
    one back in use."""
    if not committed:
        return {k: v for k, v in keys.items() if k != "pending"} if "pending" in keys else None
    if "previous" in keys:
        rest = {k: v for k, v in keys.items() if k not in ("previous", "pending")}
        return {**rest, "password": keys["previous"]}
    return None


def forgotten(keys: Keys) -> Keys | None:
    """The old password dropped once it is proven refused."""
    if "previous" not in keys:
        return None
    return {k: v for k, v in keys.items() if k != "previous"}


def refusal(error: Exception) -> str:
    """What a refused login says, the server's password line first (a multi-host endpoint adds one per host)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "password authentication failed" in line), " ".join(lines))[:300]


def refused_for_password(said: str | None) -> bool:
    """A login refused because of its password (not a server that did not answer)."""
    return said is not None and "password authentication failed" in said


def login(keys: Keys, which: Which, secret: str, session: Callable[[str], AbstractContextManager[Any]]) -> str | None:
    """None when a session opened with the secret's `which` password answers; else the refusal (a server that
    did not answer says so too: `refused_for_password` tells the two apart)."""
    if which not in keys:
        raise RuntimeError(f"secret {secret} holds no {which} password")
    try:
        with session(keys[which]) as opened:
            opened.execute("SELECT 1")
    except SqlError as err:  # anything else (no endpoint, no CA) fails the step, as it should
        return refusal(err)
    return None
