"""Patroni as the HA manager, disturbed and mended: the failover drills (a primary deleted, an instance
promoted) and the alert response's look at it (paused, gone, archiving errors) and its one remedy."""

from __future__ import annotations

import re
import signal

import httpx

from shared.logs import redact
from shared.outcome import Outcome, done, unchanged
from shared.platforms.local import patroni, processes
from shared.platforms.local.members import Members
from shared.platforms.local.state import Records
from shared.platforms.local.status import Status
from shared.spec import ClusterSpec

ARCHIVE_FAILURE = re.compile(r"archive command (failed|was terminated)|archiv\w* .*(error|fail)", re.IGNORECASE)


class Drills:
    def __init__(self, records: Records, members: Members, status: Status) -> None:
        self.records = records
        self.members = members
        self.status = status

    def delete_primary(self, spec: ClusterSpec, mode: str, recreate_after: float = 3.0) -> Outcome:
        """Like deleting the primary's pod: `graceful` stops Patroni (it hands over), `crash` kills Patroni
        and PostgreSQL (a lost node). The instance comes back after `recreate_after`, as a recreated pod."""
        status = self.status.cluster_status(spec.namespace, spec.name)
        if status.current_primary is None:
            raise RuntimeError("there is no primary to delete")
        member = next(m for m in self.records.members(spec.namespace, spec.name) if m.name == status.current_primary)
        if mode == "graceful":
            processes.stop(member.patroni, timeout=30)
        elif mode == "crash":
            processes.stop_all([member.patroni, member.postmaster], timeout=5, sig=signal.SIGKILL)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        processes.stop(member.postmaster, timeout=10, sig=signal.SIGQUIT)  # a leftover would block the restart
        self.members.start(member, delay=recreate_after)
        return done(f"primary {member.name} deleted ({mode}); recreated in {recreate_after:g}s", instance=member.name)

    def promote(self, spec: ClusterSpec, instance: str) -> Outcome:
        """`kubectl cnpg promote <cluster> <n>`: a switchover to `instance` through Patroni's REST API."""
        status = self.status.cluster_status(spec.namespace, spec.name)
        if status.current_primary == instance:
            return unchanged(f"{instance} is already the primary")
        members = self.records.members(spec.namespace, spec.name)
        body = {"leader": status.current_primary, "candidate": instance}
        last = ""
        for member in members:
            try:
                response = patroni.HTTP.post(f"{member.api}/switchover", json=body, timeout=30)
            except httpx.HTTPError as err:
                last = str(err)
                continue
            if response.status_code == 200:
                return done(f"switchover from {status.current_primary} to {instance}: {response.text.strip()}")
            last = f"{response.status_code} {response.text.strip()}"
        raise RuntimeError(f"switchover to {instance} refused: {last}")

    # ---- alert response ----------------------------------------------------------------------------
    def ha_manager_status(self, spec: ClusterSpec) -> Outcome:
        """Patroni is the HA manager here: paused (maintenance mode) it will not fail over, as a CNPG
        operator that is down will not; a member whose Patroni is gone cannot take part either."""
        members = self.records.members(spec.namespace, spec.name)
        gone = [m.name for m in members if not m.patroni.running]
        config = next((c for m in members if m.patroni.running and (c := patroni.get(m, "/config"))), None)
        problems = [f"Patroni not running on {', '.join(gone)}"] if gone else []
        if config is None:
            problems.append("no Patroni member answers its REST API")
        elif config.get("pause"):
            problems.append("Patroni is paused (maintenance mode): automatic failover is off")
        if problems:
            return done("; ".join(problems), healthy=False, problems=problems, actionable=True,
                        remedy="resume Patroni (leave maintenance mode) and start every stopped Patroni")
        return done(f"Patroni runs on all {len(members)} members, not paused", healthy=True, problems=[])

    def archiving_errors(self, spec: ClusterSpec, limit: int = 5) -> list[str]:
        """The newest archiver failures in the members' PostgreSQL logs (Patroni's output)."""
        found: list[str] = []
        for member in self.records.members(spec.namespace, spec.name):
            try:
                lines = (member.dir / "patroni.log").read_text(errors="replace").splitlines()[-2000:]
            except FileNotFoundError:
                continue
            found += [f"{member.name}: {line.strip()}" for line in lines if ARCHIVE_FAILURE.search(line)]
        return [redact(line)[:500] for line in found[-limit:]]

    def restore_ha_manager(self, spec: ClusterSpec) -> Outcome:
        """Leave maintenance mode and start any member's missing Patroni (as restarting the operator)."""
        members = self.records.members(spec.namespace, spec.name)
        actions = []
        for member in members:
            if not member.patroni.running:
                self.members.start(member)
                actions.append(f"started Patroni on {member.name}")
        for member in members:
            config = patroni.get(member, "/config")
            if config is None:
                continue
            if config.get("pause"):
                response = patroni.HTTP.patch(f"{member.api}/config", json={"pause": False}, timeout=5)
                if response.status_code != 200:
                    raise RuntimeError(f"Patroni refused to resume: {response.status_code} {response.text.strip()}")
                actions.append("resumed Patroni (maintenance mode off)")
            break
        else:
            if not actions:
                raise RuntimeError("no Patroni member answers its REST API and none could be started")
        if not actions:
            return unchanged("Patroni already runs everywhere and is not paused")
        return done("; ".join(actions), actions=actions)
