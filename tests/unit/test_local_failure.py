"""The local platform's final signs, from Patroni's state and a member's log (lines as Patroni 4 and
PostgreSQL 15 write them)."""

from __future__ import annotations

from pathlib import Path

from shared.platforms.local.patroni import Member, failure_reason, member_failure

FAILED_RECOVERY = """\
2026-12-02 00:20:01,101 INFO: Lock owner: None; I am it-bk-r1-1
2026-12-02 00:20:01,102 INFO: trying to bootstrap a new cluster
2026-12-02 00:20:03.311 UTC [2211] FATAL:  the database system is starting up
2026-12-02 00:20:03.400 UTC [2205] LOG:  restored log file "000000010000000000000004" from archive
2026-12-02 00:20:03.512 UTC [2205] FATAL:  recovery ended before configured recovery target was reached
2026-12-02 00:20:03.514 UTC [2201] LOG:  startup process (PID 2205) exited with exit code 1
2026-12-02 00:20:03.514 UTC [2201] LOG:  terminating any other active server processes
2026-12-02 00:20:04,120 INFO: removing initialize key after failed attempt to bootstrap the cluster
2026-12-02 00:20:04,301 CRITICAL: Failed to bootstrap cluster
"""

ROUTINE = """\
2026-12-02 00:20:03.311 UTC [2211] FATAL:  the database system is starting up
2026-12-02 00:21:03.311 UTC [2311] FATAL:  terminating connection due to administrator command
2026-12-02 00:21:04.001 UTC [2312] FATAL:  could not receive data from WAL stream: server closed the connection
2026-12-02 00:21:05,000 INFO: no action. I am (it-1), a secondary, and following a leader (it-2)
"""


def member(tmp_path: Path, log: str) -> Member:
    (tmp_path / "patroni.log").write_text(log)
    return Member("it-1", 5432, 8008, tmp_path)


def test_a_failed_recovery_is_quoted_from_the_log(tmp_path: Path) -> None:
    why = member_failure(member(tmp_path, FAILED_RECOVERY), running=False, state=None, paused=False)
    assert why is not None and why.startswith("instance it-1: Patroni has exited and nothing restarts it: ")
    assert "recovery ended before configured recovery target was reached" in why
    assert "startup process (PID 2205) exited with exit code 1" in why
    assert "Failed to bootstrap cluster" in why
    assert "starting up" not in why  # routine


def test_routine_fatal_lines_are_never_a_reason_and_a_running_member_is_no_failure(tmp_path: Path) -> None:
    quiet = member(tmp_path, ROUTINE)
    assert failure_reason(quiet.log) == ""
    for state in ("running", "streaming", "starting", "creating replica", "stopped", "crashed", None):
        assert member_failure(quiet, running=True, state=state, paused=False) is None, state


def test_failed_states_and_a_paused_manager_are_final(tmp_path: Path) -> None:
    quiet = member(tmp_path, ROUTINE)
    for state in ("custom bootstrap failed", "initdb failed"):
        assert f"Patroni reports {state!r}" in str(member_failure(quiet, running=True, state=state, paused=False))
    for state in ("start failed", "restart failed"):  # Patroni's next loop starts PostgreSQL again
        assert member_failure(quiet, running=True, state=state, paused=False) is None
    paused = member_failure(quiet, running=True, state="stopped", paused=True)
    assert paused is not None and "paused" in paused


def test_only_lines_since_the_members_last_start_are_quoted(tmp_path: Path) -> None:
    again = member(tmp_path, FAILED_RECOVERY + "2026-12-02 00:30:00.000000+00:00 pgha: starting Patroni\n" + ROUTINE)
    assert failure_reason(again.log) == ""


def test_a_quoted_line_is_redacted(tmp_path: Path) -> None:
    leaky = member(tmp_path, "2026-12-02 00:20:03,000 ERROR: connecting with password=hunter2 failed\n")
    said = failure_reason(leaky.log)
    assert "hunter2" not in said and "password=" in said
