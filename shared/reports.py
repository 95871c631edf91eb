"""Every run ends in a report: JSON for machines, Markdown for people, both in blob container `reports/`."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from shared import objectstore

CONTAINER = "reports"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# {report['runbook']} {report['cluster']['namespace']}/{report['cluster']['name']}: {report['status']}",
        "",
        f"- operation: `{report['operationId']}`",
        f"- started: {report['startedAt']}",
        f"- ended: {report.get('endedAt') or '-'}",
        f"- duration: {_seconds(report.get('durationSeconds'))}",
    ]
    if report.get("error"):
        lines.append(f"- error: {report['error']}")
    result = report.get("result") or {}
    for key in ("playbook", "outcome", "action"):  # what an alert response decided, in one line each
        if result.get(key):
            lines.append(f"- {key}: {result[key]}")
    lines += ["", "| step | outcome | duration | detail |", "|---|---|---|---|"]
    for step in report["steps"]:
        detail = str(step.get("detail", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {step['name']} | {step['outcome']} | {_seconds(step.get('durationSeconds'))} | {detail} |")
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def store(connection: str, report: dict[str, Any]) -> dict[str, str]:
    """Write `<operationId>.json` and `.md`; the same report written twice gives the same blobs."""
    client = objectstore.container(connection, CONTAINER, create=True)
    base = report["operationId"]
    client.upload_blob(
        f"{base}.json", json.dumps(report, indent=2, sort_keys=True), overwrite=True,
        content_settings=ContentSettings(content_type="application/json"),
    )
    client.upload_blob(
        f"{base}.md", render_markdown(report), overwrite=True,
        content_settings=ContentSettings(content_type="text/markdown"),
    )
    return {"json": f"{CONTAINER}/{base}.json", "markdown": f"{CONTAINER}/{base}.md"}


def load(connection: str, operation_id: str) -> dict[str, Any] | None:
    client = objectstore.container(connection, CONTAINER)
    try:
        return json.loads(client.download_blob(f"{operation_id}.json").readall())
    except ResourceNotFoundError:
        return None
