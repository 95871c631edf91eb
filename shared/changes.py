"""What an update changes, classified by what CNPG does with each change (docs/src/rolling_update.md,
internal/webhook/v1/cluster_webhook.go), so a plan says before anything moves which restarts it will cost:

- online: a parameter PostgreSQL reloads, pg_hba, synchronous replication, slots: a reload, no restart;
- rolling: a parameter that needs a restart, resources, the pod's placement, a minor image change: standbys
  restarted one at a time from the highest serial, the primary last;
- scale: instances up or down (serials are never reused; the highest-serial standby goes first);
- storage: a volume grows (an online PVC resize; CNPG refuses a shrink);
- major: a newer PostgreSQL major in imageName (CNPG >= 1.26: an offline in-place pg_upgrade);
- settings: pgha's own (schedules, drills, endpoints, monitoring, backup schedule and retention), re-applied
  by the steps that own them.

A change the real system refuses, or one that would leave the cluster unsafe, raises SpecError naming the field.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from shared.model import Model, SpecError
from shared.spec import PRELOAD_PREFIXES, ClusterSpec, parse_spec
from shared.status import Drift, InstanceSettings

Kind = Literal["online", "rolling", "scale", "storage", "major", "settings"]

# PostgreSQL's parameters of context `postmaster` (a change waits for a restart): from
# `postgres --describe-config` of PostgreSQL 15.18 (tests/unit/test_changes.py compares with the installed
# one), plus those 16 and 17 add (their docs' "This parameter can only be set at server start").
RESTART_PARAMETERS = frozenset({
    "archive_mode", "autovacuum_freeze_max_age", "autovacuum_max_workers", "autovacuum_multixact_freeze_max_age",
    "bonjour", "bonjour_name", "cluster_name", "data_directory", "data_sync_retry", "dynamic_shared_memory_type",
    "event_source", "external_pid_file", "hba_file", "hot_standby", "huge_page_size", "huge_pages", "ident_file",
    "jit_provider", "listen_addresses", "logging_collector", "max_connections", "max_files_per_process",
    "max_locks_per_transaction", "max_logical_replication_workers", "max_pred_locks_per_transaction",
    "max_prepared_transactions", "max_replication_slots", "max_wal_senders", "max_worker_processes",
    "min_dynamic_shared_memory", "old_snapshot_threshold", "port", "recovery_target", "recovery_target_action",
    "recovery_target_inclusive", "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
    "recovery_target_timeline", "recovery_target_xid", "shared_buffers", "shared_memory_type",
    "shared_preload_libraries", "superuser_reserved_connections", "track_activity_query_size",
    "track_commit_timestamp", "unix_socket_directories", "unix_socket_group", "unix_socket_permissions",
    "wal_buffers", "wal_decode_buffer_size", "wal_level", "wal_log_hints", "debug_io_direct",
    "reserved_connections", "commit_timestamp_buffers", "max_notify_queue_pages", "multixact_member_buffers",
    "multixact_offset_buffers", "notify_buffers", "serializable_buffers", "subtransaction_buffers",
    "transaction_buffers",
    "pg_stat_statements.max",  # the extension's own, at server start
})

# fields fixed at deploy: CNPG refuses or ignores a change (bootstrap runs once; the archive is named once)
IMMUTABLE = ("name", "namespace", "bootstrap", "recovery", "backup.destinationPath", "backup.method",
             "storage.storageClass", "walStorage.storageClass")
ARCHIVE_NAME = "backup.serverName"  # fixed too, but changed with a major upgrade (_archive_of_a_new_major)
# a decrease of these restarts the primary first, by its instance manager (CNPG's PendingRestartForDecrease:
# a standby may not run with less than its primary); a switchover to an unrestarted standby would break that
HOT_STANDBY_SENSITIVE = ("max_connections", "max_prepared_transactions", "max_wal_senders", "max_worker_processes",
                         "max_locks_per_transaction")
ONLINE = ("postgresql.pg_hba", "synchronousReplicas", "synchronousMethod", "replicationSlots")
ROLLING = ("resources", "zoneSpread", "nodeSelector")
STORAGE = ("storage.size", "walStorage.size")


class Change(Model):
    field: str  # as the request spells it: postgresql.parameters.shared_buffers
    kind: Kind
    before: Any = None
    after: Any = None
    note: str = ""


class ChangePlan(Model):
    changes: list[Change] = []

    @property
    def remakes_pods(self) -> bool:
        """A rolling change other than a parameter (an image, resources, placement): each pod is made again,
        which no in-place restart does."""
        return any(not c.field.startswith("postgresql.parameters.") for c in self.of("rolling"))

    @property
    def decreases_hot_standby_setting(self) -> bool:
        return any(c.field.removeprefix("postgresql.parameters.") in HOT_STANDBY_SENSITIVE and c.before is not None
                   and c.after is not None and str(c.before).isdigit() and str(c.after).isdigit()
                   and int(c.after) < int(c.before) for c in self.changes)

    def of(self, *kinds: Kind) -> list[Change]:
        return [c for c in self.changes if c.kind in kinds]

    @property
    def restarts(self) -> bool:
        """Whether the change rolls through the instances (a restart each)."""
        return bool(self.of("rolling", "major"))

    def summary(self) -> str:
        if not self.changes:
            return "nothing to change"
        return "; ".join(f"{c.kind}: {c.field} {_shown(c.before)} -> {_shown(c.after)}" for c in self.changes)


class Verdict(Model):
    """What a platform makes of a plan: changes it refuses (the run does not start) and changes it records as
    skipped (nothing to do there), each with the reason."""

    refused: list[str] = []
    skipped: dict[str, str] = {}
    # who restarts the instances: pgha one by one (Patroni has no rolling update of its own), or the platform's
    # operator, which pgha then watches (CNPG's rolling update, its major upgrade, a volume resize)
    rolled_by: Literal["pgha", "operator"] = "pgha"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def patched_spec(stored: ClusterSpec, patch: object) -> ClusterSpec:
    """The stored spec with a partial ClusterSpec merged in; SpecError names a bad field."""
    if not isinstance(patch, dict):
        raise SpecError("body", "must be a JSON object (a partial ClusterSpec)")
    for key in ("name", "namespace"):
        if key in patch and patch[key] != getattr(stored, key):
            raise SpecError(key, "cannot be changed: it names the cluster")
    return parse_spec(merge_patch(stored.dump(), patch))


def major_of(image: str | None) -> int | None:
    """PostgreSQL's major version from an image tag (`...postgresql:16.4-bookworm` -> 16), as CNPG reads it."""
    if not image or ":" not in image.split("/")[-1]:
        return None
    match = re.match(r"^(\d+)", image.split("@")[0].rsplit(":", 1)[1])
    return int(match.group(1)) if match else None


def plan_changes(before: ClusterSpec, after: ClusterSpec, running_major: int | None) -> ChangePlan:
    """Every difference between the stored spec and the new one, classified; refuses what CNPG refuses."""
    if (before.wal_storage is None) != (after.wal_storage is None):
        raise SpecError("walStorage", "cannot be added or removed after deploy (CNPG fixes it when the cluster "
                                      "is made)")
    old, new = _flat(before.dump()), _flat(after.dump())
    changes: list[Change] = []
    for field in sorted(set(old) | set(new)):
        was, now = old.get(field), new.get(field)
        if was == now or field == ARCHIVE_NAME or _same_amount(field, was, now):
            continue
        if field.startswith(IMMUTABLE):
            raise SpecError(field, "cannot be changed after deploy (CNPG fixes it when the cluster is made)")
        changes.append(_classify(field, was, now, before, after, running_major))
    _refuse_together(before, after, changes)
    return ChangePlan(changes=changes + _archive_of_a_new_major(before, after, changes))


def _archive_of_a_new_major(before: ClusterSpec, after: ClusterSpec, changes: list[Change]) -> list[Change]:
    """pg_upgrade starts a new system on timeline 1, whose WAL would mix with (and may overwrite) the old one's
    in the same archive; the Barman Cloud plugin does not separate them, so CNPG's docs change `serverName`
    with the image (docs/src/postgres_upgrades.md, "Backup and WAL Archive Considerations"). It is fixed at
    deploy otherwise."""
    major = any(c.kind == "major" for c in changes)
    if before.server_name == after.server_name:
        if major:
            raise SpecError(ARCHIVE_NAME, "a major upgrade starts a new system on timeline 1: give it its own "
                                          "archive with a new backup.serverName in the same update (the old one "
                                          "keeps the old major's backups)")
        return []
    if not major:
        raise SpecError(ARCHIVE_NAME, "cannot be changed after deploy, except with a major upgrade (CNPG fixes "
                                      "it when the cluster is made)")
    return [Change(field=ARCHIVE_NAME, kind="major", before=before.server_name, after=after.server_name,
                   note="the new major's own archive")]


def _classify(field: str, was: Any, now: Any, before: ClusterSpec, after: ClusterSpec,
              running_major: int | None) -> Change:
    if field.startswith("postgresql.parameters."):
        name = field.removeprefix("postgresql.parameters.")
        if name in RESTART_PARAMETERS:
            return Change(field=field, kind="rolling", before=was, after=now, note="needs a restart (postmaster)")
        if name.split(".")[0] in _libraries(before) ^ _libraries(after):
            # CNPG (and pgha's Patroni config) preload the extension its parameters name: a library added or
            # dropped from shared_preload_libraries is a restart (CNPG's ManagedExtensions)
            return Change(field=field, kind="rolling", before=was, after=now,
                          note=f"{name.split('.')[0]} in shared_preload_libraries: a restart")
        return Change(field=field, kind="online", before=was, after=now, note="a reload")
    if field == "instances":
        if now < after.synchronous_replicas + 1:
            raise SpecError("instances", f"{now} is fewer than synchronousReplicas + 1 "
                                         f"({after.synchronous_replicas + 1}): writes would wait forever")
        return Change(field=field, kind="scale", before=was, after=now,
                      note="new instances stream from the primary" if now > was else
                      "the highest-serial standbys go, never the primary")
    if field.startswith(STORAGE):
        if _size(now) < _size(was):
            raise SpecError(field, f"cannot shrink a volume ({was} -> {now}): CNPG only grows them")
        return Change(field=field, kind="storage", before=was, after=now, note="an online volume resize")
    if field == "imageName":
        return _image_change(was, now, running_major, after)
    if field.startswith(ONLINE):
        return Change(field=field, kind="online", before=was, after=now, note="a reload")
    if field.startswith(ROLLING):
        return Change(field=field, kind="rolling", before=was, after=now, note="new pods, one at a time")
    return Change(field=field, kind="settings", before=was, after=now, note="re-applied by its own step")


def _libraries(spec: ClusterSpec) -> set[str]:
    return {key.split(".")[0] for key in spec.postgresql.parameters if key.split(".")[0] in PRELOAD_PREFIXES}


def _image_change(was: Any, now: Any, running_major: int | None, after: ClusterSpec) -> Change:
    if now is None:
        return Change(field="imageName", kind="rolling", before=was, after=now,
                      note="back to the operator's default image")
    current, wanted = major_of(was) or running_major, major_of(now)
    if wanted is None:
        raise SpecError("imageName", f"{now!r} has no PostgreSQL version tag (e.g. postgresql:16.4)")
    if current is not None and wanted < current:
        raise SpecError("imageName", f"cannot go back from PostgreSQL {current} to {wanted} (CNPG refuses a "
                                     "major downgrade)")
    if current is not None and current < wanted < 16:  # internal/webhook/v1/cluster_webhook.go, v1.30.0
        raise SpecError("imageName", "CNPG upgrades a major version in place only to PostgreSQL 16 or later")
    if current is not None and wanted > current:
        return Change(field="imageName", kind="major", before=was, after=now,
                      note=f"major upgrade {current} -> {wanted}: offline, in place (pg_upgrade)")
    return Change(field="imageName", kind="rolling", before=was, after=now, note="a minor image change")


def _refuse_together(before: ClusterSpec, after: ClusterSpec, changes: list[Change]) -> None:
    """CNPG's webhook refuses an image and a parameter change in one update when the primary is switched over
    (validateConfigurationChange): the plan must split them; a major upgrade goes alone."""
    fields = {c.field for c in changes}
    parameters = any(f.startswith("postgresql.parameters.") for f in fields)
    if "imageName" in fields and parameters and after.primary_update_method == "switchover":
        raise SpecError("imageName", "cannot change imageName and PostgreSQL parameters in one update when "
                                     "primaryUpdateMethod is switchover (CNPG refuses it): send them apart")
    if any(c.kind == "major" for c in changes) and any(c.kind != "major" for c in changes):
        raise SpecError("imageName", "a major upgrade goes alone (with its new backup.serverName): send the "
                                     "other changes apart")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A dump as dotted paths; lists stay whole (pg_hba is one field), parameters one path each, an empty
    mapping none."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _same_amount(field: str, was: Any, now: Any) -> bool:
    """8192Mi is 8Gi and 2000m is 2 CPUs: CNPG compares resources by amount (equality.Semantic, pkg/specs/
    podspec_diff.go), so rewriting one is no change to roll."""
    if not (field.startswith("resources.") and isinstance(was, str) and isinstance(now, str)):
        return False
    if field == "resources.cpu":
        return _cpu(was) == _cpu(now)
    return _size(was) == _size(now)


def _cpu(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _size(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi|Ti)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[unit]


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value) if isinstance(value, str) else str(value)


UNITS = {"B": 1 / 1024, "kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3,
         "us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def same_setting(asked: str, live: str | None, base: tuple[str, str | None] | None = None) -> bool:
    """Whether a value in force is the one asked for, in PostgreSQL's units (`1024kB` is `1MB`, `on` is `true`,
    `0.90` is `0.9`); with `base`, pg_settings' (setting, unit), a unitless `65536` for shared_buffers is read as
    PostgreSQL reads it: in the parameter's own unit (8kB)."""
    if live is None:
        return False
    bare = re.fullmatch(r"-?\d+(\.\d+)?", asked.strip()) is not None
    if base is not None and bare:  # a number without a unit is in the parameter's own unit, never kB or ms
        try:
            return float(asked) == float(base[0])
        except ValueError:
            return False
    if _normal(asked) == _normal(live):
        return True
    if base is None:
        return False
    setting, unit = base
    wanted = _quantity(asked.strip())
    try:
        if wanted is None:
            return float(asked) == float(setting)
        size = _quantity(unit or "")
        return size is not None and round(wanted / size, 6) == float(setting)
    except ValueError:
        return False


def _quantity(text: str) -> float | None:
    """`64MB` in kB, `5min` in ms, `8kB` (a unit of pg_settings) in kB; None without a unit."""
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?)?\s*(B|kB|MB|GB|TB|us|ms|s|min|h|d)", text)
    if not match:
        return None
    return float(match.group(1) or 1) * UNITS[match.group(2)]


def _normal(value: str) -> object:
    text = value.strip()
    quantity = _quantity(text)
    if quantity is not None and re.match(r"^-?\d", text):
        return round(quantity, 6)
    try:
        return float(text)
    except ValueError:
        pass
    booleans = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}
    return booleans.get(text.lower(), text.lower())


def parameter_drift(spec: ClusterSpec, instances: list[InstanceSettings]) -> list[Drift]:
    """Each answering instance's parameters that are not in force as the spec says; one waiting for a restart
    says so. What GET's drift shows and what an update waits on."""
    found = []
    for instance in instances:
        if instance.error is not None:
            continue
        for name, value in spec.postgresql.parameters.items():
            live = instance.values.get(name)
            if not same_setting(value, live, instance.base.get(name)):
                waiting = " (pending restart)" if name in instance.pending_restart else ""
                found.append(Drift(field=f"postgresql.parameters.{name}", held=value, running=f"{live}{waiting}",
                                   instance=instance.name))
    return found


def reloaded(spec: ClusterSpec, instances: list[InstanceSettings]) -> bool:
    """Every instance took the new configuration: each parameter in force, or waiting for a restart."""
    pending = {i.name: i.pending_restart for i in instances}
    return bool(instances) and all(i.error is None for i in instances) and all(
        d.field.removeprefix("postgresql.parameters.") in pending[d.instance or ""]
        for d in parameter_drift(spec, instances))


def in_force(spec: ClusterSpec, instances: list[InstanceSettings]) -> list[str]:
    """What is not yet as the spec says: an instance that does not answer, a value that differs, a setting still
    waiting for a restart."""
    problems = [f"{i.name}: does not answer ({i.error})" for i in instances if i.error is not None]
    problems += [f"{d.instance}: {d.field.removeprefix('postgresql.parameters.')}={d.running!r} (asked {d.held!r})"
                 for d in parameter_drift(spec, instances)]
    problems += [f"{i.name}: pending_restart for {', '.join(i.pending_restart)}" for i in instances
                 if i.error is None and i.pending_restart]
    return problems
