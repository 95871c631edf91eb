"""The local members' archive_command and restore_command: hand the call to the WAL service, or run the
barman-cloud command itself when the service does not answer.

Run by PostgreSQL as the service user with `python -I -S` (standard library only: it starts in ~15 ms, where a
barman-cloud command spends ~0.5 s importing its libraries before it uploads one segment).
    client.py <socket> wal-archive|wal-restore <barman-cloud arguments…>
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys

REPLY_SECONDS = 300  # barman-cloud's own calls time out well before this


def request(path: str, tool: str, args: list[str], timeout: float = REPLY_SECONDS) -> tuple[int, str] | None:
    """The service's exit code and output for one call; None when it cannot be reached or breaks off (the
    service drops a call whose caller has gone before its turn)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(path)
            conn.sendall(json.dumps({"tool": tool, "args": args}).encode() + b"\n")
            with conn.makefile("rb") as answer:
                reply = json.loads(answer.readline())
        return int(reply["code"]), str(reply.get("output", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str]) -> int:
    path, tool, *args = argv
    # PostgreSQL runs these in the data directory with a relative %p; the service does not share our cwd
    target = os.path.abspath(args[-1])
    # a restored segment lands under a name of this call's own, renamed to %p once the service says 0: a call
    # this process gave up on (killed, timed out) can never overwrite a segment PostgreSQL fetched since
    args[-1] = f"{target}.pgha-{os.getpid()}" if tool == "wal-restore" else target
    answered = request(path, tool, args)
    if answered is None:
        discard(args[-1], tool)
        command = os.path.join(os.path.dirname(sys.executable), f"barman-cloud-{tool}")
        os.execv(command, [command, *args[:-1], target])
    code, output = answered
    sys.stderr.write(output)
    if code == 0 and tool == "wal-restore":
        os.replace(args[-1], target)
    else:
        discard(args[-1], tool)
    return code


def discard(written: str, tool: str) -> None:
    """A restore's own file, partial or refused, does not stay in pg_wal."""
    if tool == "wal-restore":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(written)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as err:  # our own failure is not "segment not found": PostgreSQL stops on a code over 125
        sys.stderr.write(f"pgha WAL client failed: {err!r}\n")
        sys.exit(127)
