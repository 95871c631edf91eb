"""A report as a page a person reads: the run's steps as bars on a time axis, and for a run with a write
probe (a drill, a switchover, an update that restarts the primary) the commits per second and the commit
latency around the change, the outage shaded and labelled with the RTO it measured.

Server-rendered SVG, no script and nothing fetched from elsewhere, so the page works offline and inside a
locked-down network. Every chart has a text alternative (its title and description, and the table of its
data below it). Each time axis marks its ticks with `data-seconds`, so a test (or a reader) can check a
band against the axis it is drawn on.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from shared.reports import rto_by_phase

# a page sends no Referer (its URL holds the key) and may fetch nothing at all: its styles are inline
PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                           "form-action 'none'; frame-ancestors 'none'"}
WIDTH, LEFT, RIGHT = 960, 180, 20
PLOT = WIDTH - LEFT - RIGHT
OUTCOME_COLOURS = {"done": "#2f7d32", "unchanged": "#5b7f95", "skipped": "#9e9e9e", "planned": "#9e9e9e",
                   "failed": "#c62828", "timedOut": "#c62828", "warning": "#b26a00"}
STATUS_WORDS = {"succeeded": "succeeded", "failed": "FAILED", "canceled": "canceled", "running": "running"}
STYLE = """
body{font:14px/1.45 "DejaVu Sans",sans-serif;margin:24px;color:#1b1b1b;max-width:1000px}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:24px 0 8px}
.status{font-weight:bold;padding:1px 6px;border-radius:3px;color:#fff}
.succeeded{background:#2f7d32}.failed{background:#c62828}.canceled,.running{background:#5b7f95}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;
vertical-align:top}svg{display:block}svg text{font:11px "DejaVu Sans",sans-serif;fill:#333}
.axis line{stroke:#999}.outage{fill:#c62828;fill-opacity:.18}.outage-label{fill:#8e0000;font-weight:bold}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}
"""


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 2 * 86400, 7 * 86400)


UNITS = (("d", 86400), ("h", 3600), ("min", 60))  # the largest that fits, for axes and ages alike


def label(seconds: float) -> str:
    for unit, size in UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class Axis:
    """Seconds from `start` over `span` seconds, mapped onto the plot's width; ticks at round steps."""

    def __init__(self, start: datetime, span: float) -> None:
        self.start, self.span = start, max(span, 1.0)

    def x(self, seconds: float) -> float:
        return round(LEFT + PLOT * min(max(seconds, 0.0), self.span) / self.span, 2)

    def at(self, when: str) -> float:
        return (stamp(when) - self.start).total_seconds()

    def ticks(self) -> list[float]:
        """At most about ten, at a round step: seconds for a run, days for a week-long recoverable window."""
        step = next((s for s in STEPS if self.span / s <= 10), math.ceil(self.span / 10 / 86400) * 86400)
        return [float(t) for t in range(0, int(self.span) + 1, step)]

    def draw(self, top: float, bottom: float) -> str:
        marks = [f'<g class="tick" data-seconds="{t:g}"><line x1="{self.x(t)}" x2="{self.x(t)}" y1="{top}" '
                 f'y2="{bottom + 4}"/><text x="{self.x(t)}" y="{bottom + 16}" text-anchor="middle">{label(t)}</text>'
                 f"</g>" for t in self.ticks()]
        return f'<g class="axis">{"".join(marks)}</g>'


def chart(name: str, title: str, description: str, height: float, body: str) -> str:
    return (f'<svg id="{name}" role="img" aria-labelledby="{name}-title {name}-desc" width="{WIDTH}" '
            f'height="{height}" viewBox="0 0 {WIDTH} {height}"><title id="{name}-title">{escape(title)}</title>'
            f'<desc id="{name}-desc">{escape(description)}</desc>{body}</svg>')


def timeline(report: dict[str, Any]) -> str:
    """The steps as bars on the run's time axis, coloured and named by outcome."""
    steps = report.get("steps") or []
    if not steps:
        return "<p>No step ran.</p>"
    start = stamp(report["startedAt"])
    ends = [(stamp(s["startedAt"]) - start).total_seconds() + s.get("durationSeconds", 0) for s in steps]
    if report.get("endedAt"):
        ends.append((stamp(report["endedAt"]) - start).total_seconds())
    span = max(ends)
    axis, row = Axis(start, span), 18
    bars = []
    for n, step in enumerate(steps):
        y, began = 4 + n * row, axis.at(step["startedAt"])
        width = max(axis.x(began + step.get("durationSeconds", 0)) - axis.x(began), 2)
        colour = OUTCOME_COLOURS.get(step["outcome"], "#5b7f95")
        words = f"{step['name']}: {step['outcome']}, {step.get('durationSeconds', 0):.1f} s from {began:.1f} s"
        bars.append(f'<g class="step" data-outcome="{escape(step["outcome"])}"><title>{escape(words)}</title>'
                    f'<text x="{LEFT - 6}" y="{y + 12}" text-anchor="end">{escape(step["name"][:28])}</text>'
                    f'<rect x="{axis.x(began)}" y="{y + 2}" width="{width}" height="{row - 6}" fill="{colour}"/></g>')
    bottom = 8 + len(steps) * row
    failed = [s["name"] for s in steps if s["outcome"] in ("failed", "timedOut")]
    description = (f"{len(steps)} steps over {span:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else "")
                   + ". The table of steps below holds the same data.")
    return chart("timeline", "Steps on the run's time axis", description, bottom + 24,
                 axis.draw(2, bottom) + "".join(bars))


def outages(result: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(began, ended, round((stamp(ended) - stamp(began)).total_seconds(), 3))
            for began, ended in (result.get("probe") or {}).get("outages") or []]


def probe_chart(result: dict[str, Any]) -> str:
    """Commits per second and the slowest commit of each second, the outages shaded and labelled."""
    series = (result.get("probe") or {}).get("series") or []
    if not series:
        return ""
    start = stamp(series[0]["at"])
    axis = Axis(start, (stamp(series[-1]["at"]) - start).total_seconds() + 1)
    top_commits = max(max(s["commits"] for s in series), 1)
    top_latency = max(max(s["latencyMs"] for s in series), 1.0)
    panel, gap = 110, 30
    body = [axis.draw(4, 2 * panel + gap)]
    windows = outages(result)
    for began, ended, seconds in windows:
        x1, x2 = axis.x(axis.at(began)), axis.x(axis.at(ended))
        body.append(f'<rect class="outage" data-seconds="{seconds}" x="{x1}" y="4" width="{max(x2 - x1, 1):.2f}" '
                    f'height="{2 * panel + gap - 4}"><title>clients could not write for {seconds} s</title></rect>'
                    f'<text class="outage-label" x="{x1 + 3}" y="16">outage {seconds} s</text>')
    width = PLOT / axis.span * 0.8
    for s in series:
        x = axis.x(axis.at(s["at"]))
        h = (panel - 10) * s["commits"] / top_commits
        body.append(f'<rect class="commits" x="{x}" y="{panel - h:.2f}" width="{width:.2f}" height="{h:.2f}" '
                    f'fill="#2f6f9f"/>')
    runs: list[list[str]] = [[]]  # the line breaks where no write was acknowledged: no latency to draw there
    for s in series:
        if not s["commits"]:
            runs.append([])
            continue
        runs[-1].append(f'{axis.x(axis.at(s["at"])) + width / 2:.2f},'
                        f'{2 * panel + gap - (panel - 14) * s["latencyMs"] / top_latency:.2f}')
    body += [f'<polyline class="latency" points="{" ".join(run)}" fill="none" stroke="#b26a00" stroke-width="1.5"/>'
             for run in runs if run]
    body.append(f'<text x="{LEFT - 6}" y="{panel / 2}" text-anchor="end">commits/s (max {top_commits})</text>'
                f'<text x="{LEFT - 6}" y="{panel + gap + panel / 2}" text-anchor="end">'
                f'slowest commit (max {top_latency:.0f} ms)</text>')
    lost = result.get("rpoLostWrites")
    words = "; ".join(f"no write for {seconds} s from {axis.at(began):.1f} s" for began, _, seconds in windows)
    description = (f"{len(series)} seconds of the write probe; {words or 'no outage'}; "
                   f"{lost if lost is not None else 'unknown'} acknowledged writes lost (RPO). "
                   "The table of seconds below holds the same data.")
    return chart("probe", "Writes per second and commit latency around the change", description,
                 2 * panel + gap + 24, "".join(body))


def window_chart(result: dict[str, Any]) -> str:
    """A restore's recoverable window (the oldest backup's end to the newest archived commit) and the target
    chosen in it."""
    window = result.get("recoverableWindow") or {}
    if not (window.get("from") and window.get("to")):
        return ""
    start, end = stamp(window["from"]), stamp(window["to"])
    axis = Axis(start, (end - start).total_seconds())
    target = str(window.get("target") or "")
    try:
        at = axis.at(target) if target and target[0].isdigit() and "T" in target else axis.span
    except ValueError:  # an LSN: drawn at the end, named in the description
        at = axis.span
    body = (axis.draw(4, 44) + f'<rect class="window" x="{axis.x(0)}" y="14" width="{axis.x(axis.span) - axis.x(0)}" '
            f'height="18" fill="#5b7f95" fill-opacity=".35"/><line class="target" x1="{axis.x(at)}" '
            f'x2="{axis.x(at)}" y1="6" y2="40" stroke="#c62828" stroke-width="3"/>'
            f'<text x="{LEFT - 6}" y="27" text-anchor="end">recoverable window</text>')
    description = (f"recoverable from {window['from']} to {window['to']} ({axis.span:.0f} s); restored to "
                   f"{target or 'the newest recoverable point'}")
    return chart("window", "The recoverable window and the restore's target", description, 68, body)


def facts(report: dict[str, Any]) -> str:
    """What the run measured, in words: RTO and RPO, a restore's time and target."""
    result = report.get("result") or {}
    rows = [(f"RTO ({phase})" if phase else "RTO", f"{seconds} s")
            for phase, seconds in rto_by_phase(result).items()]
    if "rpoLostWrites" in result:
        rows.append(("RPO", f"{result['rpoLostWrites']} acknowledged writes lost"))
    if "restoreSeconds" in result:
        rows.append(("time to the first successful check", f"{result['restoreSeconds']} s"))
    target = (result.get("restoreCluster") or {}).get("target") or result.get("recoveryTarget")
    if target:
        rows.append(("recovery target", str(target)))
    for key in ("playbook", "outcome", "action", "from", "to", "failoverTo"):
        if result.get(key):
            rows.append((key, str(result[key])))
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows) + "</dl>" if rows else ""


def steps_table(report: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{escape(s['name'])}</td><td>{escape(s['outcome'])}</td>"
                   f"<td>{s.get('durationSeconds', 0):.1f} s</td><td>{escape(str(s.get('detail', '')))}</td></tr>"
                   for s in report.get("steps") or [])
    return f"<table><tr><th>step</th><th>outcome</th><th>duration</th><th>detail</th></tr>{rows}</table>"


def seconds_table(result: dict[str, Any]) -> str:
    series = (result.get("probe") or {}).get("series") or []
    if not series:
        return ""
    rows = "".join(f"<tr><td>{escape(s['at'])}</td><td>{s['commits']}</td><td>{s['failed']}</td>"
                   f"<td>{s['latencyMs']}</td></tr>" for s in series)
    return ("<details><summary>The write probe, second by second</summary><table><tr><th>second</th>"
            f"<th>commits</th><th>failed writes</th><th>slowest commit (ms)</th></tr>{rows}</table></details>")


def render_html(report: dict[str, Any], code: str | None = None) -> str:
    """The report's page; `code`, the function key it was opened with, rides on its links (a browser
    cannot send a header), and the page asks browsers to send no Referer."""
    key = f"&code={quote(code, safe='')}" if code else ""
    cluster = report["cluster"]
    status = report["status"]
    result = report.get("result") or {}
    title = f"{report['runbook']} {cluster['namespace']}/{cluster['name']}"
    error = f"<p><strong>Error:</strong> {escape(report['error'])}</p>" if report.get("error") else ""
    probe = probe_chart(result)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}: {escape(status)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)} <span class="status {escape(status)}">{STATUS_WORDS.get(status, escape(status))}'
        f"</span></h1><p>operation <code>{escape(report['operationId'])}</code>, started {escape(report['startedAt'])}"
        f", {report.get('durationSeconds') or 0:.1f} s. "
        f'<a href="report?format=json{key}">JSON</a> · <a href="report?format=markdown{key}">Markdown</a></p>'
        f"{error}{facts(report)}<h2>Steps</h2>{timeline(report)}{steps_table(report)}"
        + (f"<h2>What clients saw</h2>{probe}{seconds_table(result)}" if probe else "")
        + (f"<h2>What could be restored</h2>{window}" if (window := window_chart(result)) else "")
        + "</body></html>"
    )
