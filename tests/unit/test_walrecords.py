"""The WAL reader against PostgreSQL's own: segments written by a real server, read by pg_waldump and by us."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared import ports, walrecords
from shared.platforms.local import processes
from shared.platforms.local.stack import PG_BIN
from shared.walarchive import Segment, format_lsn

DUMPED = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+).*desc: (COMMIT|ABORT) (\S+ \S+) UTC")


def segment_start(name: str) -> int:
    return Segment.parse(name).number * 16 * 1024 * 1024


@pytest.fixture(scope="module")
def wal() -> Iterator[Path]:
    """A throwaway server: a busy segment (200,000 rows, a rollback) closed by a switch, then a commit after it."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL binaries are not installed")
    account = processes.service_account("postgres")
    base = Path(tempfile.mkdtemp(prefix="pgha-wal-"))
    processes.chown_to(base, account, mode=0o755)
    user = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
    data = base / "data"

    def run(*argv: str) -> str:
        return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=base, **user).stdout

    run(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "--no-sync")
    port = str(ports.free_ports(1)[0])
    run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
        f"-p {port} -k {base} -c listen_addresses='' -c wal_level=replica -c fsync=off", "start")
    try:
        psql = [str(PG_BIN / "psql"), "-h", str(base), "-p", port, "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1"]
        run(*psql, "-c", "CREATE TABLE t (x int)", "-c", "INSERT INTO t SELECT generate_series(1, 200000)",
            "-c", "BEGIN; INSERT INTO t VALUES (1); ROLLBACK", "-c", "SELECT txid_current()",
            "-c", "SELECT pg_switch_wal()", "-c", "INSERT INTO t VALUES (2)")
        yield data / "pg_wal"
    finally:  # immediate, and no waiting on pg_ctl's own checks: the directory goes with it
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-W", "stop")
        postmaster = processes.Daemon(data / "postmaster.pid", str(data))
        processes.stop(postmaster, timeout=5, sig=signal.SIGQUIT)
        shutil.rmtree(base, ignore_errors=True)


def segments(wal: Path) -> list[str]:
    """The segments written so far, oldest first (no checkpoint ran, so none is a recycled one)."""
    return sorted(p.name for p in wal.iterdir() if len(p.name) == 24)


def waldump(wal: Path, name: str) -> list[tuple[str, str, datetime]]:
    out = subprocess.run([str(PG_BIN / "pg_waldump"), "-p", str(wal), "-r", "Transaction", name],
                         capture_output=True, text=True).stdout
    return [(m.group(1), m.group(2).lower(), datetime.fromisoformat(m.group(3)).replace(tzinfo=UTC))
            for m in map(DUMPED.search, out.splitlines()) if m]


def test_every_commit_and_abort_matches_pg_waldump(wal: Path) -> None:
    names = segments(wal)
    assert len(names) >= 3, names
    seen = 0
    for name in names[:-1]:  # the newest is still being written
        ours = [(format_lsn(e.lsn), e.kind, e.at)
                for e in walrecords.transaction_ends((wal / name).read_bytes(), segment_start(name))]
        theirs = [(f"{int(lsn.split('/')[0], 16):X}/{int(lsn.split('/')[1], 16):X}", kind, at)
                  for lsn, kind, at in waldump(wal, name)]
        assert ours == theirs, name
        seen += len(ours)
    assert seen > 10 and any(kind == "abort" for name in names[:-1] for _, kind, _ in waldump(wal, name))


def test_records_count_as_pg_waldump_and_stop_at_the_switch(wal: Path) -> None:
    name = segments(wal)[-2]  # the segment the switch closed
    data = (wal / name).read_bytes()
    records = list(walrecords.records(data, segment_start(name)))
    dumped = subprocess.run([str(PG_BIN / "pg_waldump"), "-p", str(wal), name], capture_output=True,
                            text=True).stdout.splitlines()
    assert len(records) == len([line for line in dumped if line.startswith("rmgr:")])
    last = records[-1]
    assert (last.rmid, last.info & 0xF0) == (walrecords.RM_XLOG_ID, walrecords.XLOG_SWITCH)
    assert walrecords.last_record_lsn(data, segment_start(name)) == last.lsn


def test_a_segment_of_another_address_or_truncated_is_refused_or_ends(wal: Path) -> None:
    name = segments(wal)[-2]
    data = (wal / name).read_bytes()
    with pytest.raises(walrecords.WalFormatError):  # its long header names another LSN
        list(walrecords.records(data, segment_start(name) + 16 * 1024 * 1024))
    with pytest.raises(walrecords.WalFormatError):
        list(walrecords.records(data[:100], segment_start(name)))
    # a page from elsewhere (a recycled segment's leftovers) ends the reading there, with what came before
    block = 8192
    stale = data[:block * 3] + bytes(8) + data[block * 3 + 8:]
    assert 0 < len(list(walrecords.records(stale, segment_start(name)))) < len(
        list(walrecords.records(data, segment_start(name))))


def test_compressed_segments_are_read_and_unknown_compressions_named() -> None:
    import gzip

    assert walrecords.decompress("s/wals/0000000100000000/000000010000000000000002.gz",
                                 gzip.compress(b"abc")) == b"abc"
    with pytest.raises(walrecords.WalFormatError, match="compression"):
        walrecords.decompress("s/wals/0000000100000000/000000010000000000000002.zst", b"")
