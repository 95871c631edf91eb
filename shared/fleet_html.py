"""The fleet page (GET /api/dashboard): one row per cluster, what is failing or stale first and said in
words as well as colour, each run linked to its report page. It refreshes itself while a run goes on. Like
the report pages: no script, nothing fetched, no Referer; the key it was opened with rides on its links."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from shared.fleet import FleetRow, LastRun, TrendPoint
from shared.report_html import STYLE, UNITS

FLEET_STYLE = """
tr.problem td:first-child{border-left:6px solid #c62828} tr.ok td:first-child{border-left:6px solid #2f7d32}
.verdict{font-weight:bold} .problem .verdict{color:#c62828} .ok .verdict{color:#2f7d32} td small{color:#555}
"""
REFRESH_SECONDS = 5


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in UNITS:
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def link(run: LastRun | None, key: str) -> str:
    if run is None:
        return "none yet"
    href = f"operations/{quote(run.operation_id, safe='')}/report?format=html{key}"
    return (f'<a href="{href}">{escape(run.status)}</a> {escape(age(run.age_seconds))}'
            + (f"<br><small>{escape(run.figure)}</small>" if run.figure else ""))


def sparkline(name: str, what: str, points: list[TrendPoint]) -> str:
    """A trend as bars, oldest to newest, with its figures as its text alternative."""
    if len(points) < 2:
        return ""
    top = max(p.seconds for p in points) or 1.0
    width, height, bar = 12 * len(points), 28, 9
    bars = "".join(f'<rect x="{i * 12}" y="{height - max(1.0, height * p.seconds / top):.1f}" width="{bar}" '
                   f'height="{max(1.0, height * p.seconds / top):.1f}" fill="#5b7f95"><title>{p.seconds} s, '
                   f"{escape(p.at)}</title></rect>" for i, p in enumerate(points))
    words = ", ".join(f"{p.seconds} s" for p in points)
    return (f'<br><svg class="trend" role="img" aria-label="{escape(what)} of the last {len(points)} runs, oldest '
            f'first: {escape(words)}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'data-trend="{escape(name)}">{bars}</svg>')


def cells(row: FleetRow, key: str) -> str:
    verdict = "; ".join(row.problems) if row.problems else "ok"
    point = ("-" if row.recovery_point_age_seconds is None else
             f"{row.recovery_point_age_seconds:.0f} s of {row.recovery_point_limit_seconds} s")
    running = "-"
    if row.running:
        done = "".join(f"<li>{escape(s)}</li>" for s in row.running.steps_done[-5:])
        running = (f'<a href="operations/{quote(row.running.operation_id, safe="")}?{key.lstrip("&")}">'
                   f"{escape(row.running.runbook)}</a>: {escape(row.running.step or 'between steps')}"
                   f"<ul>{done}</ul>")
    columns = [f"<strong>{escape(row.namespace)}/{escape(row.name)}</strong>",
               f'<span class="verdict">{"PROBLEM: " if row.problems else ""}{escape(verdict)}</span>',
               f"{escape(row.phase)}<br><small>primary {escape(row.primary or 'none')}</small>",
               escape(", ".join(row.synchronous_standbys) or "none"), link(row.backup, key), escape(point),
               link(row.restore_test, key) + sparkline("restore", "time to the first successful check",
                                                       row.restore_trend),
               link(row.drill, key) + sparkline("drill", "worst outage", row.drill_trend), running]
    return "".join(f"<td>{c}</td>" for c in columns)


def render_fleet(rows: list[FleetRow], code: str | None = None) -> str:
    key = f"&code={quote(code, safe='')}" if code else ""
    refresh = (f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
               if any(r.running for r in rows) else "")
    failing = sum(1 for r in rows if r.problems)
    head = ("<tr><th>cluster</th><th>verdict</th><th>phase</th><th>synchronous standbys</th>"
            "<th>last verified backup</th><th>recovery point age (at that verification)</th><th>last restore test</th>"
            "<th>last drill</th><th>running</th></tr>")
    body = "".join(f'<tr class="{"problem" if r.problems else "ok"}" data-cluster="{escape(r.namespace)}/'
                   f'{escape(r.name)}">{cells(r, key)}</tr>' for r in rows)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" '
            f'content="no-referrer">{refresh}<title>pgha fleet: {failing} of {len(rows)} need attention</title>'
            f"<style>{STYLE}{FLEET_STYLE} body{{max-width:none}}</style></head><body>"
            f"<h1>pgha fleet</h1><p>{len(rows)} cluster{'' if len(rows) == 1 else 's'}; {failing} need"
            " attention (listed first)."
            + (f" This page refreshes every {REFRESH_SECONDS} s while a run goes on." if refresh else "")
            + f"</p><table id=\"fleet\">{head}{body}</table></body></html>")
