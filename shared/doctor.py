"""The doctor's findings: one line per check, PASS, WARN or FAIL, each saying how to fix what it found.

The same checks serve `pgha doctor`, `GET /api/doctor` and the pre-flight of deploy, restore and teardown,
which refuse on a FAIL with these lines before anything is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from shared.logs import redact

if TYPE_CHECKING:
    from shared.platform import Platform
    from shared.spec import ClusterSpec

Verdict = Literal["PASS", "WARN", "FAIL"]
# what a check is asked for: the doctor (everything), the pre-flight of one runbook (what it needs), or a
# dry run's plan (what settings and the plan's recorded answers say: nothing real is read)
Purpose = Literal["doctor", "deploy", "restore", "teardown", "plan"]
ORDER: dict[str, int] = {"FAIL": 0, "WARN": 1, "PASS": 2}
PROBE = "doctor-probe"  # the cluster name the doctor checks for when given no spec: every default


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    verdict: Verdict
    detail: str

    def line(self) -> str:
        return f"{self.verdict} {self.name}: {self.detail}"


def passed(name: str, detail: str) -> Check:
    return Check(name=name, verdict="PASS", detail=detail)


def warn(name: str, detail: str) -> Check:
    return Check(name=name, verdict="WARN", detail=detail)


def fail(name: str, detail: str) -> Check:
    return Check(name=name, verdict="FAIL", detail=detail)


class Diagnosis(BaseModel):
    """Every check of one look at an environment."""

    platform: str
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "FAIL"]

    @property
    def verdict(self) -> Verdict:
        return min((c.verdict for c in self.checks), key=ORDER.__getitem__, default="PASS")

    def dump(self) -> dict[str, object]:
        return {"platform": self.platform, "verdict": self.verdict,
                "checks": [c.model_dump() for c in self.checks]}

    def refusal(self) -> str:
        """What a pre-flight says when it refuses: the failing checks' own lines."""
        return "; ".join(c.line() for c in self.failed)

    def table(self) -> str:
        width = max((len(c.name) for c in self.checks), default=5)
        rows = [f"{c.verdict:4}  {c.name:{width}}  {c.detail}" for c in self.checks]
        counts = {v: sum(c.verdict == v for c in self.checks) for v in ("PASS", "WARN", "FAIL")}
        summary = f"{self.platform}: {counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed"
        return "\n".join([*rows, summary])


def said(err: BaseException) -> str:
    """An error in one redacted line: what a check quotes of a call that failed."""
    first = (str(err).strip().splitlines() or [""])[0][:300]
    return redact(f"{type(err).__name__}: {first}")


def transient(err: BaseException) -> bool:
    """No answer, a throttle or a server error: worth one more try. A 4xx answer is the answer."""
    status = getattr(err, "status_code", None) or getattr(err, "status", None)
    if isinstance(status, int) and status > 0:
        return status == 429 or status >= 500
    return isinstance(err, OSError | TimeoutError) or any(
        word in type(err).__name__ for word in ("Connection", "Timeout", "ServiceRequest", "ServiceResponse",
                                                "Transport"))


def guarded(name: str, look: Callable[[], Check | list[Check] | None], doing: str) -> list[Check]:
    """A check whose call failed is a FAIL saying what it was doing, never a crash of the doctor; a transient
    failure is tried once more a second later, so one dropped request or throttled answer refuses no run."""
    for attempt in (1, 2):
        try:
            found = look()
            return [found] if isinstance(found, Check) else list(found or [])
        except Exception as err:  # the API server, ARM or a local daemon refused or did not answer
            if attempt == 2 or not transient(err):
                return [fail(name, f"{doing}: {said(err)}")]
            time.sleep(1)
    return []


def look(kind: str, connect: Callable[[], Platform], spec: ClusterSpec, delete_backups: bool = False) -> Diagnosis:
    """The doctor's whole look: reaching the platform is itself a check (on AKS, the credential, ARM and the
    API server), and its failure one FAIL line, not a traceback."""
    try:
        platform = connect()
    except Exception as err:  # settings, credential, ARM or the API server: said in one line
        reached = f"reaching the {kind} platform: {said(err)}: check the PGHA_* settings and credential"
        return Diagnosis(platform=kind, checks=[fail("connect", reached)])
    return Diagnosis(platform=platform.name, checks=platform.diagnose(spec, "doctor", delete_backups))
