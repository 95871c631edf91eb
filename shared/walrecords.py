"""The commits inside an archived WAL segment: where a time-targeted recovery can stop.

PostgreSQL ends a `recovery_target_time` recovery only at a transaction's commit or abort record stamped
after the target (xlogrecovery.c, recoveryStopsBefore/After); a WAL switch, a checkpoint or the time a
segment reached the object store do not count. So the newest recoverable moment of an archive is the
newest commit timestamp in it, read here from the segments themselves: no pg_waldump on a Functions host.

The layout read is PostgreSQL's (access/xlog_internal.h, access/xlogrecord.h, access/xact.h; stable from
9.5 to 17): 8 KB pages each opening with a page header (the segment's first with the long one), records
8-byte aligned and free to cross pages, each a 24-byte header, block headers, then the record's main data.
A commit's main data opens with `xact_time`, microseconds since 2000-01-01 UTC. Stale bytes of a recycled
segment are told apart by each page's own address and each record's back-link to the one before.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.walarchive import DEFAULT_SEGMENT_SIZE, format_lsn

POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SHORT_HEADER, LONG_HEADER, RECORD_HEADER = 24, 40, 24
XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER = 0x0001, 0x0002
RM_XLOG_ID, RM_XACT_ID = 0, 1
XLOG_SWITCH = 0x40
XACT_OPMASK = 0x70
# the records recovery may stop at: commit, abort, commit prepared, abort prepared
XACT_ENDS = {0x00: "commit", 0x20: "abort", 0x30: "commit prepared", 0x40: "abort prepared"}
BLOCK_DATA_SHORT, BLOCK_DATA_LONG, BLOCK_ORIGIN, BLOCK_TOPLEVEL_XID, MAX_BLOCK_ID = 255, 254, 253, 252, 32
BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL = 0x10, 0x80
BKPIMAGE_HAS_HOLE = 0x01
# a compressed image's flag: one bit up to PostgreSQL 14, pglz | lz4 | zstd from 15 (page magic 0xD110)
BKPIMAGE_COMPRESSED, BKPIMAGE_COMPRESSED_14, MAGIC_15 = 0x04 | 0x08 | 0x10, 0x02, 0xD110


class WalFormatError(ValueError):
    """The bytes are not a WAL segment this reader understands."""


@dataclass(frozen=True)
class Record:
    lsn: int
    rmid: int
    info: int
    xid: int
    main_data: bytes


@dataclass(frozen=True)
class TransactionEnd:
    lsn: int
    kind: str  # commit, abort, …
    xid: int
    at: datetime

    def describe(self) -> str:
        return f"{self.kind} of xid {self.xid} at {self.at.isoformat()} (LSN {format_lsn(self.lsn)})"


def decompress(name: str, data: bytes) -> bytes:
    """barman-cloud-wal-archive's compressions that the standard library reads."""
    for suffix, opener in ((".gz", gzip.decompress), (".bz2", bz2.decompress), (".xz", lzma.decompress)):
        if name.endswith(suffix):
            return opener(data)
    if name.rsplit("/", 1)[-1].count(".") and not name.endswith(".partial"):
        raise WalFormatError(f"{name}: a compression this reader cannot open")
    return data


def records(segment: bytes, start_lsn: int) -> Iterator[Record]:
    """Every whole record that starts in this segment, oldest first, up to a WAL switch or unused space."""
    reader = _Pages(segment, start_lsn)
    pos = reader.first_record()
    prev: int | None = None
    while pos is not None and pos + RECORD_HEADER <= len(segment):
        header, _ = reader.read(pos, RECORD_HEADER)
        if header is None:
            return
        total, xid, back, info, rmid = struct.unpack_from("<IIQBB", header)
        if total < RECORD_HEADER or (prev is not None and back != start_lsn + prev):
            return  # zeros past the last record, or what a recycled segment left behind
        body, end = reader.read(pos, total)
        if body is None:
            return  # continues in the next segment
        if pos % reader.block == 0:
            pos += reader.header_at(pos)  # a record never starts inside a page header
        yield Record(start_lsn + pos, rmid, info, xid, _main_data(body, reader.magic) if rmid == RM_XACT_ID else b"")
        if rmid == RM_XLOG_ID and info & 0xF0 == XLOG_SWITCH:
            return  # the rest of the segment is unused
        prev, pos = pos, (end + 7) & ~7


def transaction_ends(segment: bytes, start_lsn: int) -> list[TransactionEnd]:
    """The commit and abort records of a segment, with their timestamps."""
    ends = []
    for record in records(segment, start_lsn):
        kind = XACT_ENDS.get(record.info & XACT_OPMASK) if record.rmid == RM_XACT_ID else None
        if kind and len(record.main_data) >= 8:
            (micros,) = struct.unpack_from("<q", record.main_data)
            ends.append(TransactionEnd(record.lsn, kind, record.xid, POSTGRES_EPOCH + timedelta(microseconds=micros)))
    return ends


def last_record_lsn(segment: bytes, start_lsn: int) -> int | None:
    """Where the segment's last whole record starts: a recovery to an LSN up to it can finish."""
    last = None
    for record in records(segment, start_lsn):
        last = record.lsn
    return last


class _Pages:
    """Logical reads over a segment's pages, stepping over each page header and checking its address."""

    def __init__(self, segment: bytes, start_lsn: int) -> None:
        if len(segment) < LONG_HEADER:
            raise WalFormatError("shorter than a page header")
        self.segment, self.start = segment, start_lsn
        magic, info, _tli, address, _rem, _sysid, size, block = struct.unpack_from("<HHIQIxxxxQII", segment)
        if not info & XLP_LONG_HEADER or address != start_lsn or block not in (1024 * 2 ** n for n in range(7)):
            raise WalFormatError(f"no long page header for LSN {format_lsn(start_lsn)}")
        if size not in (len(segment), DEFAULT_SEGMENT_SIZE) or len(segment) % block:
            raise WalFormatError(f"segment size {len(segment)} does not match its header ({size})")
        self.magic, self.block = magic, block

    def header_at(self, page: int) -> int:
        """The page header's size; a page of another LSN (a recycled segment's leftovers) reads as the end."""
        magic, info, _tli, address = struct.unpack_from("<HHIQ", self.segment, page)
        if magic != self.magic or address != self.start + page:
            raise _End
        return LONG_HEADER if info & XLP_LONG_HEADER else SHORT_HEADER

    def first_record(self) -> int | None:
        """Past the tail of a record that began in the previous segment."""
        _magic, info, _tli, _address, remaining = struct.unpack_from("<HHIQI", self.segment)
        if not info & XLP_FIRST_IS_CONTRECORD:
            return LONG_HEADER
        pos, left = LONG_HEADER, remaining
        while left > 0:
            if pos >= len(self.segment):
                return None  # the record runs on into the next segment
            room = self.block - pos % self.block
            if room == self.block:
                try:
                    pos += self.header_at(pos)
                except _End:
                    return None
                room = self.block - pos % self.block
            step = min(room, left)
            pos, left = pos + step, left - step
        return (pos + 7) & ~7

    def read(self, pos: int, length: int) -> tuple[bytes | None, int]:
        """`length` bytes of one record from `pos`; None when they run past the segment or into stale pages."""
        chunks, left = [], length
        while left > 0:
            if pos >= len(self.segment):
                return None, pos
            if pos % self.block == 0:
                try:
                    pos += self.header_at(pos)
                except _End:
                    return None, pos
            step = min(self.block - pos % self.block, left)
            chunks.append(self.segment[pos:pos + step])
            pos, left = pos + step, left - step
        return b"".join(chunks), pos


class _End(Exception):
    pass


def _main_data(record: bytes, magic: int) -> bytes:
    """The record's main data: after its block headers, at the record's end (xlogreader.c, DecodeXLogRecord)."""
    pos, main, blocks = RECORD_HEADER, 0, 0
    while pos < len(record):
        block_id = record[pos]
        pos += 1
        if block_id == BLOCK_DATA_SHORT:
            main = record[pos]
            break
        if block_id == BLOCK_DATA_LONG:
            (main,) = struct.unpack_from("<I", record, pos)
            break
        if block_id == BLOCK_ORIGIN:
            pos += 2
        elif block_id == BLOCK_TOPLEVEL_XID:
            pos += 4
        elif block_id <= MAX_BLOCK_ID:
            fork_flags, data_length = record[pos], struct.unpack_from("<H", record, pos + 1)[0]
            pos += 3
            blocks += data_length
            if fork_flags & BKPBLOCK_HAS_IMAGE:
                image_length, _hole, image_info = struct.unpack_from("<HHB", record, pos)
                pos += 5
                blocks += image_length
                compressed = BKPIMAGE_COMPRESSED if magic >= MAGIC_15 else BKPIMAGE_COMPRESSED_14
                if image_info & BKPIMAGE_HAS_HOLE and image_info & compressed:
                    pos += 2
            if not fork_flags & BKPBLOCK_SAME_REL:
                pos += 12
            pos += 4
        else:
            raise WalFormatError(f"unknown block id {block_id}")
    return record[len(record) - main:] if main else b""
