"""The report page, from a report shaped as a drill's: its charts are where the data says, the sender's
words are escaped, the key rides on its links, and the page fetches nothing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from shared.report_html import LEFT, PLOT, render_html

START = "2026-12-02T10:00:00+00:00"


def drill_report(**result: Any) -> dict[str, Any]:
    down = range(8, 11)
    series = [{"at": f"2026-12-02T10:00:{i:02d}+00:00", "commits": 0 if i in down else 40, "failed": 3 * (i in down),
               "latencyMs": 2.5 + i} for i in range(0, 20)]
    return {
        "operationId": "drill-db-pg-20261202T100000Z-abc123", "runbook": "failover_drill",
        "cluster": {"namespace": "db", "name": "pg"}, "status": "failed", "startedAt": START,
        "endedAt": "2026-12-02T10:00:40+00:00", "durationSeconds": 40.0, "error": "wait <b>ready</b>: timed out",
        "steps": [{"name": "pre-flight", "outcome": "done", "startedAt": START, "durationSeconds": 0.5, "detail": "ok"},
                  {"name": "delete the primary (crash)", "outcome": "done", "startedAt": "2026-12-02T10:00:08+00:00",
                   "durationSeconds": 1.0, "detail": "<script>alert(1)</script>"},
                  {"name": "wait ready", "outcome": "failed", "startedAt": "2026-12-02T10:00:10+00:00",
                   "durationSeconds": 30.0, "detail": "timed out"}],
        "result": {"rtoSeconds": {"failover": 3.2, "switchback": 0.0}, "rpoLostWrites": 0,
                   "probe": {"outages": [["2026-12-02T10:00:08+00:00", "2026-12-02T10:00:11.2+00:00"]],
                             "series": series}, **result},
    }


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    return parser.found


def test_the_outage_band_spans_its_seconds_on_the_axis_it_is_drawn_on() -> None:
    page = render_html(drill_report())
    found = elements(page)
    band = next(a for t, a in found if t == "rect" and a.get("class") == "outage")
    ticks = {float(a["data-seconds"] or 0): i for i, (t, a) in enumerate(found) if a.get("class") == "tick"}
    assert len(ticks) >= 3
    # the probe's axis: 20 seconds of series, the band from 8 s to 11.2 s
    assert abs(float(band["x"] or 0) - (LEFT + PLOT * 8 / 20)) < 0.5
    assert abs(float(band["width"] or 0) - PLOT * 3.2 / 20) < 0.5
    assert band["data-seconds"] == "3.2" and "outage 3.2 s" in page


def test_the_page_says_what_failed_in_words_and_escapes_what_it_quotes() -> None:
    page = render_html(drill_report())
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;ready&lt;/b&gt;" in page and ">FAILED<" in page
    assert "RTO (failover)</dt><dd>3.2 s" in page and "RPO</dt><dd>0 acknowledged writes lost" in page
    # every chart has a text alternative, and its data is in a table
    for chart in ("timeline", "probe"):
        assert re.search(f'<svg id="{chart}" role="img" aria-labelledby="{chart}-title {chart}-desc"', page)
    assert "The write probe, second by second" in page and page.count("<tr>") >= 3 + 1 + 20 + 1


def test_the_key_rides_on_its_links_and_nothing_is_fetched() -> None:
    page = render_html(drill_report(), code="a key/with+signs")
    links = [a["href"] for t, a in elements(page) if t == "a"]
    assert links and all(link and link.endswith("&code=a%20key%2Fwith%2Bsigns") for link in links)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no other origin
    assert not [t for t, _ in elements(page) if t in ("script", "img", "link", "iframe")]
    assert 'name="referrer" content="no-referrer"' in page


def test_a_run_without_a_probe_has_no_probe_chart() -> None:
    report = drill_report()
    report["result"] = {"restoreSeconds": 42.5}
    page = render_html(report)
    assert 'id="probe"' not in page and "time to the first successful check</dt><dd>42.5 s" in page


def test_a_restore_shows_its_recoverable_window_and_where_its_target_fell() -> None:
    report = drill_report()
    report["runbook"] = "restore_cluster"
    report["result"] = {"restoreSeconds": 42.5, "recoverableWindow": {
        "from": "2026-12-02T09:00:00+00:00", "to": "2026-12-02T10:00:00+00:00", "target": "2026-12-02T09:45:00+00:00"}}
    page = render_html(report)
    found = elements(page)
    line = next(a for t, a in found if t == "line" and a.get("class") == "target")
    assert abs(float(line["x1"] or 0) - (LEFT + PLOT * 0.75)) < 0.5  # 45 of the window's 60 minutes
    assert "recoverable from 2026-12-02T09:00:00+00:00 to 2026-12-02T10:00:00+00:00 (3600 s)" in page


def test_a_week_long_window_and_a_day_long_run_get_an_axis_of_days_and_hours() -> None:
    report = drill_report()
    report["steps"][2]["durationSeconds"] = 25 * 3600  # an update that waited a day for its approval
    report["endedAt"] = "2026-12-03T11:00:40+00:00"
    report["result"] = {"recoverableWindow": {"from": "2026-11-25T10:00:00+00:00", "to": "2026-12-02T10:00:00+00:00",
                                              "target": "2026-12-01T10:00:00+00:00"}}
    page = render_html(report)
    ticks = [a["data-seconds"] for t, a in elements(page) if a.get("class") == "tick"]
    assert "86400" in ticks and len(ticks) <= 12 + 12  # both axes: at most about ten ticks each
    assert ">1d<" in page and ">6h<" in page  # the window by days, the run by six hours
