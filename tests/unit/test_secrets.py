"""Generated passwords and the SCRAM verifier the app role is created from."""

import base64
import hashlib
import hmac

from shared.secrets import generate_password, scram_verifier


def test_passwords_are_random_and_plain() -> None:
    first, second = generate_password(), generate_password()
    assert first != second and len(first) == 32
    assert first.isalnum()


def test_scram_verifier_matches_rfc_7677_derivation() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("pencil", salt=salt, iterations=4096)
    mechanism, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt_b64 = iterations_salt.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert mechanism == "SCRAM-SHA-256" and iterations == "4096"
    assert base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert "pencil" not in verifier
