"""How far an archive can be recovered: its newest commit (for a time target) and newest record (for an LSN).

Read from the newest archived segments themselves (shared/walrecords.py), newest timeline first, a few
segments at most: an idle cluster's last segments may hold no commit at all, and then the answer is honest
about it (None) instead of falling back to the time a segment reached the store, which recovery ignores.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.backups import Inventory
from shared.objectstore import Container
from shared.walarchive import DEFAULT_SEGMENT_SIZE, SEGMENT, Segment, format_lsn
from shared.walrecords import TransactionEnd, WalFormatError, decompress, last_record_lsn, transaction_ends

# segments read at most when the newest hold no commit (an idle cluster's switches, backups' own segments)
LOOK_BACK = 16


@dataclass(frozen=True)
class ArchiveEnd:
    commit: TransactionEnd | None  # the newest commit or abort: a time target up to (not at) it is reachable
    last_lsn: int | None  # where the newest whole record starts: an LSN target up to it is reachable
    segments_read: int

    @property
    def commit_at(self) -> str | None:
        return self.commit.at.isoformat() if self.commit else None

    @property
    def lsn(self) -> str | None:
        return format_lsn(self.last_lsn) if self.last_lsn is not None else None

    def newest_time(self) -> str:
        return self.commit_at or "unknown (no commit in the newest segments)"

    def newest_lsn(self) -> str:
        return self.lsn or "unknown (no archived WAL)"


def newest_segments(inventory: Inventory) -> list[tuple[Segment, str]]:
    """Archived whole segments with their blob names, newest first (the latest timeline first)."""
    found = []
    for name in inventory.wal_names:
        match = SEGMENT.search(name)
        if match:
            found.append((Segment.parse(match.group(1)), name))
    return sorted(found, key=lambda item: (item[0].timeline, item[0].number), reverse=True)


def archive_end(container: Container, inventory: Inventory, look_back: int = LOOK_BACK) -> ArchiveEnd:
    commit, last_lsn, read = None, None, 0
    for segment, name in newest_segments(inventory)[:look_back]:
        data = decompress(name, container.read(name))
        read += 1
        start = segment.number * DEFAULT_SEGMENT_SIZE
        try:
            if last_lsn is None:
                last_lsn = last_record_lsn(data, start)
            ends = transaction_ends(data, start)
        except WalFormatError as err:
            raise WalFormatError(f"{name}: {err}") from None
        if ends:
            commit = max(ends, key=lambda end: end.at)
            break
    return ArchiveEnd(commit, last_lsn, read)
