"""WAL continuity over synthetic barman-cloud listings: gaps, timeline switches, partial and history files."""

from shared.walarchive import Listing, Segment, check_continuity, format_lsn, parse_history, parse_lsn

MB16 = 16 * 1024 * 1024


def names(server: str, *wals: str) -> list[str]:
    return [f"{server}/wals/{w[:16]}/{w}" if len(w.split(".")[0]) == 24 else f"{server}/wals/{w}" for w in wals]


def seg(tli: int, number: int) -> str:
    return Segment(tli, number).name()


def test_segment_names_round_trip_across_log_ids() -> None:
    assert Segment.parse("000000010000000000000003") == Segment(1, 3)
    assert Segment.parse("0000000200000001000000FF") == Segment(2, 0x1FF)
    assert Segment(1, 0x100).name() == "000000010000000100000000"
    assert parse_lsn("1/2000028") == (1 << 32) + 0x2000028
    assert format_lsn(parse_lsn("A/FF00")) == "A/FF00"


def test_continuous_archive_with_backup_labels_and_compression() -> None:
    listing = Listing.from_names(names(
        "db", seg(1, 1), seg(1, 2), f"{seg(1, 2)}.00000028.backup", seg(1, 3) + ".gz", seg(1, 4), seg(1, 5)
    ))
    result = check_continuity(listing, seg(1, 2), {})
    assert result.ok
    assert (result.begin, result.end, result.checked, result.timelines) == (seg(1, 2), seg(1, 5), 4, [1])
    assert "continuous" in result.summary()


def test_gap_is_named_by_segment() -> None:
    listing = Listing.from_names(names("db", seg(1, 2), seg(1, 3), seg(1, 5), seg(1, 6)))
    result = check_continuity(listing, seg(1, 2), {})
    assert not result.ok
    assert result.missing == [seg(1, 4)]
    assert seg(1, 4) in result.summary()


def test_gap_across_a_log_boundary() -> None:
    listing = Listing.from_names(names("db", seg(1, 0xFE), seg(1, 0x101)))
    result = check_continuity(listing, seg(1, 0xFE), {})
    assert result.missing == ["0000000100000000000000FF", "000000010000000100000000"]


def test_timeline_switch_follows_the_history_file() -> None:
    # promotion at 0/5000060: timeline 1 owns segments up to 4; the switch segment 5 is read from timeline 2
    history = "1\t0/5000060\tno recovery target specified\n"
    listing = Listing.from_names(names(
        "db", seg(1, 3), seg(1, 4), f"{seg(1, 5)}.partial", "00000002.history", seg(2, 5), seg(2, 6), seg(2, 7)
    ))
    result = check_continuity(listing, seg(1, 3), {2: parse_history(history)})
    assert result.ok, result.summary()
    assert result.timelines == [1, 2]
    assert result.end == seg(2, 7)


def test_switch_segment_missing_on_the_new_timeline() -> None:
    listing = Listing.from_names(names("db", seg(1, 3), seg(1, 4), f"{seg(1, 5)}.partial", "00000002.history",
                                       seg(2, 6)))
    result = check_continuity(listing, seg(1, 3), {2: [(1, parse_lsn("0/5000060"))]})
    assert result.missing == [seg(2, 5)]  # the .partial of timeline 1 does not replace it


def test_two_switches() -> None:
    histories = {3: [(1, parse_lsn("0/3000000")), (2, parse_lsn("0/4800000"))]}
    listing = Listing.from_names(names("db", seg(1, 1), seg(1, 2), seg(2, 3), seg(3, 4), seg(3, 5),
                                       "00000002.history", "00000003.history"))
    result = check_continuity(listing, seg(1, 1), histories)
    assert result.ok, result.summary()
    assert result.timelines == [1, 2, 3]


def test_missing_history_file_is_a_problem() -> None:
    listing = Listing.from_names(names("db", seg(1, 3), seg(2, 4)))
    result = check_continuity(listing, seg(1, 3), {})
    assert not result.ok
    assert "00000002.history missing" in result.summary()


def test_nothing_archived_after_the_backup() -> None:
    listing = Listing.from_names(names("db", seg(1, 1)))
    result = check_continuity(listing, seg(1, 4), {})
    assert not result.ok and "no archived WAL" in result.summary()


def test_history_parsing_skips_comments() -> None:
    assert parse_history("# comment\n1\t0/3000000\treason\n\n2\t0/4000000\tx\n") == [
        (1, 0x3000000), (2, 0x4000000)
    ]


def test_schedule_fire_times() -> None:
    from datetime import UTC, datetime, timedelta

    from shared.schedules import fire_times

    at = datetime(2026, 1, 1, 10, 14, 30, tzinfo=UTC)
    assert fire_times("0 15 * ? * *", at, at + timedelta(seconds=20)) == 0
    assert fire_times("0 15 * ? * *", at, at + timedelta(seconds=30)) == 1  # 10:15:00 exactly
    # counting stops at 2: after an outage the run starts once, not once per missed time
    assert fire_times("0 15 * ? * *", at, at + timedelta(hours=5)) == 2
