"""Report rendering for people (Markdown)."""

from shared.reports import render_markdown

REPORT = {
    "operationId": "deploy-default-db-20260101T000000Z-abcdef",
    "runbook": "deploy_cluster",
    "cluster": {"namespace": "default", "name": "db"},
    "status": "failed",
    "startedAt": "2026-01-01T00:00:00+00:00",
    "endedAt": "2026-01-01T00:00:12+00:00",
    "durationSeconds": 12.0,
    "error": "wait ready: not ready after 10s",
    "steps": [
        {"name": "apply cluster", "outcome": "done", "durationSeconds": 0.25, "detail": "created"},
        {"name": "wait ready", "outcome": "failed", "durationSeconds": 10.0, "detail": "phase a|b\nsecond line"},
    ],
}


def test_markdown_has_a_row_per_step_and_the_error() -> None:
    text = render_markdown(REPORT)
    lines = text.splitlines()
    assert lines[0] == "# deploy_cluster default/db: failed"
    assert "- error: wait ready: not ready after 10s" in lines
    assert "| apply cluster | done | 0.2 s | created |" in lines
    assert "| wait ready | failed | 10.0 s | phase a\\|b second line |" in lines
    assert "- duration: 12.0 s" in lines


def test_markdown_of_a_running_report() -> None:
    text = render_markdown({**REPORT, "endedAt": None, "durationSeconds": None, "error": None, "steps": []})
    assert "- ended: -" in text and "- duration: -" in text and "error" not in text


def test_log_lines_shown_to_people_lose_their_secrets() -> None:
    from shared.logs import redact

    line = ('archive failed: DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vdM02xNO==;'
            ' url https://x.logic.azure.com/wf?sv=1&sig=abc%2Fdef password=hunter2')
    cleaned = redact(line)
    assert "Eby8vdM02xNO" not in cleaned and "abc%2Fdef" not in cleaned and "hunter2" not in cleaned
    assert "AccountKey=<redacted>" in cleaned and "archive failed" in cleaned
