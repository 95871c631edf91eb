"""Starting and stopping the local stack's daemons, by the PIDs recorded when they started."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from contextlib import closing, suppress
from pathlib import Path


def service_account(user: str) -> pwd.struct_passwd | None:
    """The account daemons run as: PostgreSQL refuses root, so root hands them to `user`."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(user)


def chown_to(path: Path, account: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def write_private(path: Path, text: str, account: pwd.struct_passwd | None = None, mode: int = 0o600) -> None:
    """Write a file readable by its owner only, created with that mode (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    if account is not None:
        os.chown(tmp, account.pw_uid, account.pw_gid)
    os.replace(tmp, path)


def spawn(
    argv: list[str], log: Path, pidfile: Path, env: dict[str, str] | None = None,
    account: pwd.struct_passwd | None = None, cwd: Path | None = None,
) -> int:
    """Start a daemon in its own session, output to `log`; the PID recorded is the daemon's own."""
    if account is not None:
        argv = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if account is not None:
            os.chown(log, account.pw_uid, account.pw_gid)
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


def reap(pid: int | None) -> None:
    """Collect an exited child of ours, so it is not left a zombie."""
    if pid:
        _reap(pid)


def _reap(pid: int) -> None:
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(pid: int | None, timeout: float = 30.0, sig: int = signal.SIGTERM) -> bool:
    """Signal `pid`, wait up to `timeout`, then SIGKILL. True if something was running."""
    return bool(stop_all([pid], timeout, sig))


def stop_all(pids: list[int | None], timeout: float = 30.0, sig: int = signal.SIGTERM) -> list[int]:
    """Signal every live pid at once, wait for all up to `timeout`, SIGKILL what is left; returns those stopped."""
    running = [pid for pid in pids if pid and alive(pid)]
    for pid in running:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in running):
        for pid in running:
            _reap(pid)
        time.sleep(0.05)
    for pid in running:
        if alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        for pid in running:
            _reap(pid)
        if not any(alive(pid) for pid in running):
            break
        time.sleep(0.05)
    return running


def free_ports(count: int, avoid: set[int] | None = None) -> list[int]:
    """Ports free on loopback now, distinct from each other and from `avoid`."""
    chosen: list[int] = []
    avoid = set(avoid or ())
    while len(chosen) < count:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid and port not in chosen and port < 60000:
            chosen.append(port)
    return chosen


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(port: int, timeout: float, what: str, pid: int | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if pid is not None and not alive(pid):
            break
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "; last log lines: " + " | ".join(log.read_text(errors="replace").splitlines()[-5:])
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f}s{tail}")
