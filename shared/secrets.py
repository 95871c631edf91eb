"""Secrets are made and read inside activities only; what leaves an activity is a secret's name."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _random

SCRAM_ITERATIONS = 4096


def generate_password(length: int = 32) -> str:
    """A random password of URL- and shell-safe characters (no quoting needed anywhere)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(_random.choice(alphabet) for _ in range(length))


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier, so a role is created without the plaintext reaching the server."""
    salt = salt or _random.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
