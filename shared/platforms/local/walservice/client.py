"""The local members' archive_command and restore_command: hand the call to the WAL service, or run the
barman-cloud command itself when the service does not answer.

Run by PostgreSQL as the service user with `python -I -S` (standard library only: it starts in ~15 ms, where a
barman-cloud command spends ~0.5 s importing its libraries before it uploads one segment).
    client.py <socket> wal-archive|wal-restore <barman-cloud arguments…>
"""

from __future__ import annotations

import json
import os
import socket
import sys

REPLY_SECONDS = 300  # barman-cloud's own calls time out well before this


def request(path: str, tool: str, args: list[str]) -> tuple[int, str] | None:
    """The service's exit code and output for one call; None when it cannot be reached or breaks off."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(REPLY_SECONDS)
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
    args[-1] = os.path.abspath(args[-1])
    answered = request(path, tool, args)
    if answered is None:
        command = os.path.join(os.path.dirname(sys.executable), f"barman-cloud-{tool}")
        os.execv(command, [command, *args])
    code, output = answered
    sys.stderr.write(output)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
