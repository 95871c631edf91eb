"""The rotation's secret steps: each one a second delivery finds done, and the old password kept only until
it is proven refused."""

from __future__ import annotations

import pytest

from shared.credentials import committed, forgotten, refusal, refused_for_password, reverted, staged


def test_the_keys_move_through_a_rotation_and_each_step_is_idempotent() -> None:
    keys = {"username": "app", "password": "old"}
    after_stage = staged(keys)
    assert after_stage is not None and after_stage["password"] == "old" and after_stage["pending"] != "old"
    assert staged(after_stage) is None  # a redelivery keeps the password it made
    after_commit = committed(after_stage)
    assert after_commit == {"username": "app", "password": after_stage["pending"], "previous": "old"}
    assert committed(after_commit) is None
    assert forgotten(after_commit) == {"username": "app", "password": after_stage["pending"]}
    assert forgotten({"username": "app", "password": "x"}) is None


def test_a_revert_puts_back_the_password_the_applications_had() -> None:
    assert reverted({"password": "new", "previous": "old"}, committed=True) == {"password": "old"}
    assert reverted({"password": "old", "pending": "new"}, committed=False) == {"password": "old"}
    assert reverted({"password": "old"}, committed=False) is None
    assert reverted({"password": "old"}, committed=True) is None


def test_a_stale_previous_never_comes_back() -> None:
    """A rotation proven but not finished (its `forget` failed) leaves `previous`; the next one drops it when it
    stages, and a revert before its commit keeps the password in use, never the one from two rotations ago."""
    left = {"password": "second", "previous": "first"}
    next_stage = staged(left)
    assert next_stage is not None and "previous" not in next_stage
    assert reverted(next_stage, committed=False) == {"password": "second"}
    assert reverted(left, committed=False) is None  # its stage failed before writing: nothing to undo


def test_nothing_to_commit_without_a_staged_password() -> None:
    with pytest.raises(RuntimeError, match="no new password is staged"):
        committed({"password": "old"})


def test_a_refusal_is_told_from_a_server_that_did_not_answer() -> None:
    multi_host = RuntimeError('connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
                              'connection to server at "127.0.0.1", port 2 failed: FATAL:  password authentication '
                              'failed for user "app"')
    said = refusal(multi_host)
    assert said.startswith('connection to server at "127.0.0.1", port 2') and refused_for_password(said)
    assert not refused_for_password(refusal(RuntimeError("Connection refused")))
    assert not refused_for_password(None)
