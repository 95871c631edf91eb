"""The local platform's WAL service: barman-cloud's own WAL commands, run in one long-lived process.

PostgreSQL starts a barman-cloud-wal-archive per segment (as CNPG's instance manager does), and each spends
~0.5 s of CPU importing its libraries before a ~20 ms upload; on a 2-core machine bootstrapping three members
that queue is the slowest part of a deploy. This process imports them once and runs the same `main` of each
command for every call, one call at a time, answering its exit code and log. Standard library and barman only:
it runs as the service user from a copy in the stack's directory.
    server.py <socket>
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import socketserver
import sys
import threading

from barman.clients import cloud_check_wal_archive, cloud_walarchive, cloud_walrestore

TOOLS = {
    "wal-archive": cloud_walarchive.main,
    "wal-restore": cloud_walrestore.main,
    "check-wal-archive": cloud_check_wal_archive.main,
}
ONE_AT_A_TIME = threading.Lock()  # barman's commands were written for a process each: never two at once


def run(tool: str, args: list[str], caller: socket.socket | None = None) -> tuple[int, str] | None:
    """The command's exit code and everything it said (its log, argparse's usage, an exit message); None when
    the caller left before its turn (it gave up or was killed: the call must not happen later)."""
    if tool not in TOOLS:
        return 2, f"unknown tool {tool!r}\n"
    output = io.StringIO()
    captured = logging.StreamHandler(output)
    captured.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    with ONE_AT_A_TIME:
        if caller is not None and gone(caller):
            return None
        logging.root.addHandler(captured)
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                TOOLS[tool](args)
            code = 0
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                output.write(exit_.code + "\n")
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:
            logging.exception("barman-cloud-%s failed", tool)
            code = 1
        finally:
            logging.root.removeHandler(captured)
    return code, output.getvalue()


def gone(caller: socket.socket) -> bool:
    """Whether the caller hung up: its end reads as closed (it sends nothing after its one request line)."""
    try:
        return caller.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing to read: still waiting for its answer
    except OSError:
        return True


class Call(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            request = json.loads(self.rfile.readline())
            tool, args = str(request["tool"]), [str(a) for a in request["args"]]
        except (ValueError, KeyError, TypeError) as err:
            self.answer(2, f"bad request: {err}\n")
            return
        answer = run(tool, args, self.connection)
        delivered = answer is not None and self.answer(*answer)
        if not delivered and tool == "wal-restore" and args:  # its caller left: what the call wrote is nobody's
            with contextlib.suppress(OSError):
                os.unlink(args[-1])

    def answer(self, code: int, output: str) -> bool:
        try:
            self.wfile.write(json.dumps({"code": code, "output": output}).encode() + b"\n")
            self.wfile.flush()
            return True
        except OSError:
            return False


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Into the service's own log, never into a call's captured output (stderr is redirected during one)."""
        import traceback

        traceback.print_exc(file=sys.__stderr__)


def main(path: str) -> None:
    # barman's commands log at WARNING unless told -v; its basicConfig is a no-op once this one ran
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if os.path.exists(path):
        os.unlink(path)  # left by a service that was killed
    os.umask(0o077)
    with Server(path, Call) as server:
        print(f"WAL service listening on {path}", file=sys.stderr, flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
