"""Every run ends in a report: JSON for machines, Markdown for people, both in blob container `reports/`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings
from pydantic import ConfigDict, Field

from shared import objectstore
from shared.model import Model
from shared.spec import ClusterRef

CONTAINER = "reports"
Status = Literal["running", "succeeded", "failed", "canceled"]


class StepRecord(Model):
    name: str
    outcome: str
    started_at: str
    duration_seconds: float
    detail: str = ""
    data: Any = None  # kept only when the step said something more than its detail

    def dump(self) -> dict[str, Any]:
        body = super().dump()
        if not self.data:
            del body["data"]
        return body


class Report(Model):
    """A run's report, as it is stored and answered; built up step by step while the run goes."""

    model_config = ConfigDict(frozen=False)

    operation_id: str
    runbook: str
    cluster: ClusterRef
    status: Status = "running"
    started_at: str
    ended_at: str | None = None
    duration_seconds: float | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = None
    location: dict[str, str] | None = None

    def close(self, status: Status, error: str | None, ended_at: datetime, result: dict[str, Any] | None = None
              ) -> Report:
        """How every report ends, a run's own or one written for a run that was terminated."""
        self.status, self.error = status, error
        if result:
            self.result = result
        self.ended_at = ended_at.isoformat()
        self.duration_seconds = round((ended_at - datetime.fromisoformat(self.started_at)).total_seconds(), 3)
        return self

    def dump(self) -> dict[str, Any]:
        body = super().dump()
        body["steps"] = [step.dump() for step in self.steps]
        for optional in ("result", "location"):
            if body[optional] is None:
                del body[optional]
        return body


def rto_by_phase(result: dict[str, Any]) -> dict[str, float]:
    """A run's RTO per phase: a drill measures its failover and its switch-back, a switchover one ("")."""
    rto = result.get("rtoSeconds")
    if isinstance(rto, dict):
        return {str(phase): seconds for phase, seconds in rto.items()}
    return {} if rto is None else {"": rto}


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
    base = report["operationId"]
    objectstore.put(connection, CONTAINER, f"{base}.json", json.dumps(report, indent=2, sort_keys=True),
                    overwrite=True, content_settings=ContentSettings(content_type="application/json"))
    objectstore.put(connection, CONTAINER, f"{base}.md", render_markdown(report), overwrite=True,
                    content_settings=ContentSettings(content_type="text/markdown"))
    return {"json": f"{CONTAINER}/{base}.json", "markdown": f"{CONTAINER}/{base}.md"}


def load(connection: str, operation_id: str) -> dict[str, Any] | None:
    client = objectstore.container(connection, CONTAINER)
    try:
        return json.loads(client.download_blob(f"{operation_id}.json").readall())
    except ResourceNotFoundError:
        return None
