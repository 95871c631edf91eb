"""The doctor's findings: one line per check, PASS, WARN or FAIL, each saying how to fix what it found.

The same checks serve `pgha doctor`, `GET /api/doctor` and the pre-flight of deploy, restore and teardown,
which refuse on a FAIL with these lines before anything is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

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


def look(kind: str, connect: Callable[[], Platform], spec: ClusterSpec, delete_backups: bool = False) -> Diagnosis:
    """The doctor's whole look: reaching the platform is itself a check (on AKS, the credential, ARM and the
    API server), and its failure one FAIL line, not a traceback."""
    try:
        platform = connect()
    except Exception as err:  # settings, credential, ARM or the API server: said in one line
        first = (str(err).strip().splitlines() or [""])[0][:300]
        said = f"reaching the {kind} platform: {type(err).__name__}: {first}: check the PGHA_* settings and credential"
        return Diagnosis(platform=kind, checks=[fail("connect", said)])
    return Diagnosis(platform=platform.name, checks=platform.diagnose(spec, "doctor", delete_backups))
