"""A running cluster changed in place, as CNPG's instance manager does it in a pod: a member restarted through
Patroni's REST API (POST /restart, which waits for PostgreSQL to be back), and each member's live settings read
back to prove a change took (the value in force and PostgreSQL's own pending_restart)."""

from __future__ import annotations

import httpx
import psycopg

from shared.changes import ChangePlan, Verdict, parameter_drift
from shared.outcome import Outcome, done, unchanged
from shared.platforms.local import patroni
from shared.platforms.local.members import Members
from shared.platforms.local.stack import PG_BIN
from shared.platforms.local.state import Records
from shared.spec import ClusterSpec
from shared.status import Drift, InstanceSettings

RESTART_TIMEOUT_SECONDS = 60  # Patroni's own bound on PostgreSQL coming back (primary_start_timeout's role)


class Updates:
    def __init__(self, records: Records, members: Members) -> None:
        self.records = records
        self.members = members

    def weigh_changes(self, plan: ChangePlan) -> Verdict:
        """One PostgreSQL is installed here and no volumes are sized: a major upgrade is refused, a minor image
        change or a volume resize has nothing to act on (the spec records it)."""
        version = f"PostgreSQL {PG_BIN.parent.name}"
        refused = [f"{c.field}: a major upgrade needs a second PostgreSQL version; this machine has {version} only"
                   for c in plan.of("major")]
        skipped = {c.field: f"one image here ({version}): nothing to roll" for c in plan.of("rolling")
                   if c.field == "imageName"}
        skipped |= {c.field: "no volumes here: the data directory grows with its disk" for c in plan.of("storage")}
        skipped |= {c.field: "every instance runs on this one machine: nothing to place" for c in plan.changes
                    if c.field.startswith(("resources", "zoneSpread", "nodeSelector"))}
        return Verdict(refused=refused, skipped=skipped)

    def restart_instance(self, spec: ClusterSpec, instance: str) -> Outcome:
        """Patroni restarts the member's PostgreSQL (a fast shutdown, then a start) and answers when it is back,
        if a restart is pending (Patroni's restart_pending condition, ha.py restart_matches); a synchronous
        standby first leaves the quorum (while_not_sync_standby)."""
        member = next((m for m in self.records.members(spec.namespace, spec.name) if m.name == instance), None)
        if member is None:
            raise RuntimeError(f"{instance} is not an instance of {spec.namespace}/{spec.name}")
        try:  # only if a restart is pending: a second delivery (or a switchover that restarted it) restarts nothing
            response = patroni.HTTP.post(f"{member.api}/restart", timeout=RESTART_TIMEOUT_SECONDS + 10,
                                         json={"timeout": RESTART_TIMEOUT_SECONDS, "restart_pending": True})
        except httpx.HTTPError as err:
            raise RuntimeError(f"restarting {instance}: Patroni did not answer ({err})") from None
        if response.status_code == 503 and "conditions are not satisfied" in response.text:
            if not self._pending_in_postgres(spec, instance):
                return unchanged(f"{instance} waits for no restart", instance=instance)
            # PostgreSQL flags it but Patroni has not looked yet (it reads pg_settings a loop after a reload)
            response = patroni.HTTP.post(f"{member.api}/restart", json={"timeout": RESTART_TIMEOUT_SECONDS},
                                         timeout=RESTART_TIMEOUT_SECONDS + 10)
        if response.status_code != 200:
            raise RuntimeError(f"restarting {instance}: Patroni answered {response.status_code} "
                               f"{response.text.strip()[:300]}")
        return done(f"{instance} restarted: {response.text.strip()[:200]}", instance=instance)

    def _pending_in_postgres(self, spec: ClusterSpec, instance: str) -> bool:
        with psycopg.connect(self.members.superuser_dsn(spec, instance), autocommit=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()[0])

    def instance_settings(self, spec: ClusterSpec, names: list[str]) -> list[InstanceSettings]:
        """Each member's value in force of `names` (current_setting: PostgreSQL's own spelling, e.g. 64MB), and
        whether any setting waits for a restart (pg_settings.pending_restart)."""
        found = []
        for member in self.records.members(spec.namespace, spec.name):
            try:
                with psycopg.connect(self.members.superuser_dsn(spec, member.name), autocommit=True) as conn:
                    values = {name: conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()[0]
                              for name in names}
                    base = {row[0]: (row[1], row[2]) for row in conn.execute(
                        "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),))}
                    pending = [row[0] for row in conn.execute(
                        "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name")]
            except psycopg.OperationalError as err:
                found.append(InstanceSettings(name=member.name, error=str(err).strip().splitlines()[0][:200]))
                continue
            # Patroni passes some parameters on postgres's command line (max_connections, max_wal_senders, ...),
            # where pg_settings never flags them: its own pending_restart_reason does (api.py, GET /patroni)
            reasons = (patroni.get(member, "/patroni") or {}).get("pending_restart_reason") or {}
            pending = sorted(set(pending) | set(reasons))
            found.append(InstanceSettings(name=member.name, values=values, base=base, pending_restart=pending))
        return found

    def drift(self, spec: ClusterSpec) -> list[Drift]:
        """The members against the spec: how many run, and each parameter's value in force (a member that does
        not answer is the status's to report, not drift)."""
        found = []
        members = self.records.members(spec.namespace, spec.name)
        if len(members) != spec.instances:
            found.append(Drift(field="instances", held=spec.instances, running=len(members)))
        parameters = spec.postgresql.parameters
        if parameters:
            found += parameter_drift(spec, self.instance_settings(spec, sorted(parameters)))
        return found
