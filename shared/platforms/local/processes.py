"""Starting and stopping the local stack's daemons, by the PIDs recorded when they started."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from shared.ports import port_open


def service_account(user: str) -> pwd.struct_passwd | None:
    """The account daemons run as: PostgreSQL refuses root, so root hands them to `user`."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(user)


def chown_to(path: Path, account: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    """Create a directory for the service user; never through a symlink it could have planted."""
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or not path.is_dir():
        raise RuntimeError(f"{path} is not a plain directory; refusing to hand it over")
    os.chmod(path, mode)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def write_private(path: Path, text: str, account: pwd.struct_passwd | None = None, mode: int = 0o600) -> None:
    """Write a file readable by its owner only: a fresh temporary (O_EXCL, so no planted link is followed),
    owned and moded through its descriptor, then renamed over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if account is not None:
            os.fchown(fd, account.pw_uid, account.pw_gid)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_spawned: dict[int, subprocess.Popen[bytes]] = {}  # the daemons this process started and has not yet reaped


@dataclass(frozen=True)
class Daemon:
    """A process we started: its pid file, and a string its command line contains (a PID may be reused)."""

    pidfile: Path
    marker: str

    def pid(self) -> int | None:
        pid = read_pid(self.pidfile)
        if not alive(pid):
            return None
        cmdline = command_line(pid)
        return pid if cmdline is not None and self.marker in cmdline else None

    @property
    def running(self) -> bool:
        return self.pid() is not None


def spawn(
    argv: list[str], log: Path, daemon: Daemon, env: dict[str, str] | None = None,
    account: pwd.struct_passwd | None = None, cwd: Path | None = None,
) -> int:
    """Start a daemon in its own session, output to `log`; the PID recorded is the daemon's own.

    The account is taken in the child before its one exec (no setpriv in between): Popen returns once that exec
    is done, so the daemon shows its command line, and so its marker, from the moment it is recorded."""
    identity = {} if account is None else {
        "user": account.pw_uid, "group": account.pw_gid,
        "extra_groups": os.getgrouplist(account.pw_name, account.pw_gid),
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o640)
    with os.fdopen(fd, "ab") as out:
        if account is not None:
            os.fchown(fd, account.pw_uid, account.pw_gid)
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=cwd, start_new_session=True, **identity,
        )
    daemon.pidfile.parent.mkdir(parents=True, exist_ok=True)
    write_private(daemon.pidfile, str(proc.pid), mode=0o644)
    _spawned[proc.pid] = proc
    return proc.pid


def command_line(pid: int, patience: float = 0.5) -> str | None:
    """A live process's command line, or None when it cannot be read. While a process execs (a shell's `exec`,
    a delayed Patroni) /proc/<pid>/cmdline reads empty for some milliseconds: read again then, or a daemon in
    that moment is taken for one that ended (measured here through setpriv: in 185 of 300 starts, a poll in the
    first 5 ms saw it so; under load, a backup polled 50 ms after its start was once failed for it)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if raw or time.monotonic() > deadline or not alive(pid) or kernel_thread(pid):
            return raw.replace(b"\0", b" ").decode(errors="replace")
        time.sleep(0.002)


PF_KTHREAD = 0x00200000  # include/linux/sched.h: a kernel thread, whose command line is always empty


def kernel_thread(pid: int) -> bool:
    """A stale pid file's pid now a kernel thread's: empty for good, no exec to wait for."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            flags = int(stat.read().rsplit(")", 1)[1].split()[6])  # state, ppid, pgrp, session, tty, tpgid, flags
    except (OSError, IndexError, ValueError):
        return False
    return bool(flags & PF_KTHREAD)


def reap_exited() -> list[int]:
    """Collect every daemon this process spawned that has exited since (killed in a drill, crashed, stopped
    by another path), so none stays <defunct>: through its own Popen, never a blanket waitpid, which would
    take the exit status a subprocess.run elsewhere waits for."""
    collected = [pid for pid, proc in list(_spawned.items()) if proc.poll() is not None]
    for pid in collected:
        _spawned.pop(pid, None)
    return collected


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
    """Collect an exited child of ours, so it is not left a zombie (through its Popen when we have it)."""
    if not pid:
        return
    proc = _spawned.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            _spawned.pop(pid, None)
        return
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(daemon: Daemon, timeout: float = 30.0, sig: int = signal.SIGTERM, group: bool = False) -> bool:
    """Signal the daemon, wait up to `timeout`, then SIGKILL. True if it was running."""
    return bool(stop_all([daemon], timeout, sig, group))


def stop_all(daemons: list[Daemon], timeout: float = 30.0, sig: int = signal.SIGTERM,
             group: bool = False) -> list[Daemon]:
    """Signal every running daemon at once, wait for all up to `timeout`, SIGKILL what is left. With `group`,
    its whole session (spawn made it a session leader): a shell's children go with it."""
    running = [(d, pid) for d in daemons if (pid := d.pid())]
    kill = os.killpg if group else os.kill
    for _, pid in running:
        with suppress(ProcessLookupError):
            kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for _, pid in running):
        for _, pid in running:
            reap(pid)
        time.sleep(0.05)
    for _, pid in running:
        if alive(pid):
            with suppress(ProcessLookupError):
                kill(pid, signal.SIGKILL)
    for _ in range(100):
        for _, pid in running:
            reap(pid)
        if not any(alive(pid) for _, pid in running):
            break
        time.sleep(0.05)
    return [d for d, _ in running]


def stop_session(daemon: Daemon, match: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL what is left in a dead daemon's session (spawn made it the session leader) and names `match`
    in its command line: a killed Patroni's initdb, barman-cloud-restore or pg_basebackup go on otherwise.
    (PostgreSQL's postmaster makes a session of its own, and is stopped by its own pid file.)"""
    leader = read_pid(daemon.pidfile)
    if not leader:
        return []
    left = [pid for pid, _ in naming(match, session=leader)]
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in left):
        for pid in left:
            reap(pid)
        time.sleep(0.05)
    return left


def naming(match: str, session: int | None = None) -> list[tuple[int, str]]:
    """Live processes (zombies aside) whose command line names `match`, with it; with `session`, in that one."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, …
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if match in argv and fields[0] != "Z" and (session is None or int(fields[3]) == session):
            found.append((int(entry), argv))
    return found


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
