"""The WAL archive as barman-cloud lays it out, and whether it is continuous.

Pure functions over blob names (and history files' contents), so the same logic serves Azure and
Azurite and is tested on synthetic listings: segments `<server>/wals/<tli+log>/<tli><log><seg>[.gz…]`,
`.partial` segments (incomplete, left by a promotion), `.backup` labels, and `<tli>.history` files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
# Run on the primary, in autocommit, one after the other. The first assigns a transaction id, so its commit
# writes a commit record (stamped after clock_timestamp()): a point a time-targeted recovery can end at.
# The second closes the segment holding it, which the archiver then ships; pg_walfile_name of the switch's
# answer (the segment's end + 1) names that very segment.
MARKER_COMMIT = "SELECT txid_current(), clock_timestamp()"
# around it, in one transaction: a degraded synchronous source must not hold the marker's commit (it
# carries no data), and nothing may hang the step
MARKER_SETTINGS = ("SET LOCAL synchronous_commit = local", "SET LOCAL statement_timeout = '30s'")
SWITCH_WAL = "SELECT pg_walfile_name(switched), switched::text FROM pg_switch_wal() AS switched"
COMPRESSION = r"(?:\.(?:gz|bz2|snappy|lz4|xz|zst))?"
SEGMENT = re.compile(rf"(?:^|/)([0-9A-F]{{24}}){COMPRESSION}$")
PARTIAL = re.compile(rf"(?:^|/)([0-9A-F]{{24}})\.partial{COMPRESSION}$")
HISTORY = re.compile(rf"(?:^|/)([0-9A-F]{{8}})\.history{COMPRESSION}$")


def segment_blob(server: str, segment: str) -> str:
    """Where barman-cloud-wal-archive puts a segment: `<server>/wals/<timeline+log>/<segment>`."""
    return f"{server}/wals/{segment[:16]}/{segment}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class Segment:
    timeline: int
    number: int  # absolute segment number: log * segments-per-log + seg

    @classmethod
    def parse(cls, name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
        per_log = 0x100000000 // segment_size
        return cls(int(name[:8], 16), int(name[8:16], 16) * per_log + int(name[16:24], 16))

    def name(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
        per_log = 0x100000000 // segment_size
        return f"{self.timeline:08X}{self.number // per_log:08X}{self.number % per_log:08X}"


def parse_history(text: str) -> list[tuple[int, int]]:
    """A timeline history file: (parent timeline, switch point LSN) per line, oldest first."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        entries.append((int(parts[0]), parse_lsn(parts[1])))
    return entries


@dataclass
class Listing:
    """What the archive holds under `<server>/wals/`."""

    segments: set[Segment] = field(default_factory=set)
    partials: set[Segment] = field(default_factory=set)
    history_files: set[int] = field(default_factory=set)

    @classmethod
    def from_names(cls, names: list[str], segment_size: int = DEFAULT_SEGMENT_SIZE) -> Listing:
        listing = cls()
        for name in names:
            if match := SEGMENT.search(name):
                listing.segments.add(Segment.parse(match.group(1), segment_size))
            elif match := PARTIAL.search(name):
                listing.partials.add(Segment.parse(match.group(1), segment_size))
            elif match := HISTORY.search(name):
                listing.history_files.add(int(match.group(1), 16))
        return listing


@dataclass(frozen=True)
class Continuity:
    ok: bool
    begin: str
    end: str | None
    timelines: list[int]
    checked: int
    missing: list[str]
    problem: str | None = None

    def summary(self) -> str:
        if self.ok:
            return (f"WAL continuous from {self.begin} to {self.end} over timeline(s) "
                    f"{', '.join(map(str, self.timelines))} ({self.checked} segments)")
        if self.problem:
            return self.problem
        shown = ", ".join(self.missing[:5]) + (f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else "")
        return f"WAL gap after {self.begin}: missing {shown}"


def check_continuity(
    listing: Listing, begin_wal: str, histories: dict[int, list[tuple[int, int]]],
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> Continuity:
    """Is every segment from `begin_wal` to the newest archived one there, on the right timeline?

    The newest timeline's history says which timeline owns each segment: a segment belongs to the
    newest timeline that had begun before the segment ends (the switch segment is read from the new
    timeline; the old one's copy is at best a `.partial`).
    """
    begin = Segment.parse(begin_wal, segment_size)
    timelines_seen = {s.timeline for s in listing.segments} | listing.history_files | {begin.timeline}
    target = max(timelines_seen)
    if target == begin.timeline:
        path = [(begin.timeline, 0)]
    elif target not in histories:
        return Continuity(False, begin_wal, None, [], 0, [f"{target:08X}.history"],
                          f"timeline history file {target:08X}.history missing: timeline {target} cannot be followed")
    else:
        starts, start = [], 0
        for parent, switch in histories[target]:
            starts.append((parent, start))
            start = switch
        path = [*starts, (target, start)]
    on_path = {tli for tli, _ in path}
    if begin.timeline not in on_path:
        return Continuity(False, begin_wal, None, sorted(on_path), 0, [],
                          f"the backup's timeline {begin.timeline} is not an ancestor of timeline {target}")
    candidates = [s.number for s in listing.segments if s.timeline in on_path and s.number >= begin.number]
    if not candidates:
        return Continuity(False, begin_wal, None, [t for t, _ in path], 0, [begin_wal],
                          f"no archived WAL from the backup's begin WAL {begin_wal} on")
    newest = max(candidates)
    missing, used = [], set()
    for number in range(begin.number, newest + 1):
        segment_end = (number + 1) * segment_size
        owner = max((tli for tli, start in path if start < segment_end), default=path[0][0])
        wanted = Segment(owner, number)
        used.add(owner)
        if wanted not in listing.segments:
            missing.append(wanted.name(segment_size))
    end = Segment(max((t for t, s in path if s < (newest + 1) * segment_size)), newest).name(segment_size)
    timelines = sorted(used)
    return Continuity(not missing, begin_wal, end, timelines, newest - begin.number + 1, missing)
