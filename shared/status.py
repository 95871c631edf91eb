"""ClusterStatus in CNPG's vocabulary, so an operator reads pgha's status as `kubectl cnpg status`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shared.model import Model

HEALTHY = "Cluster in healthy state"
SETTING_UP_PRIMARY = "Setting up primary"
CREATING_REPLICA = "Creating a new replica"
WAITING_FOR_INSTANCES = "Waiting for the instances to become active"
FAILING_OVER = "Failing over"
SWITCHOVER = "Switchover in progress"
UPGRADING = "Upgrading cluster"
WAITING_FOR_USER = "Waiting for user action"  # a supervised primary update (api/v1 PhaseWaitingForUser)
MAJOR_UPGRADE = "Upgrading Postgres major version"  # PhaseMajorUpgrade
INPLACE_PRIMARY_RESTART = "Primary instance is being restarted in-place"  # PhaseInplacePrimaryRestart
UNRECOVERABLE = "Cluster is unrecoverable and needs manual intervention"
NOT_FOUND = "Cluster not found"

Role = Literal["primary", "standby", "unknown"]


def serial_of(instance: str) -> int:
    """An instance's serial, the number CNPG gives each instance for life (`<cluster>-<serial>`)."""
    tail = instance.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class InstanceStatus(Model):
    name: str
    role: Role
    ready: bool
    lsn: str | None = None
    timeline: int | None = None
    lag_bytes: int | None = None
    sync_state: str | None = None
    state: str | None = None
    # a changed setting waits for a restart (PostgreSQL's pg_settings.pending_restart, as Patroni reports it)
    pending_restart: bool = False

    @property
    def in_sync(self) -> bool:
        """A synchronous standby: `sync` (CNPG's `method: first`) or `quorum` (`method: any`)."""
        return self.sync_state in ("sync", "quorum")


class ReplicationSlot(Model):
    """A physical slot on the primary (CNPG's HA slots `_cnpg_<instance>`, Patroni's per member)."""

    name: str
    active: bool
    wal_status: str | None = None
    retained_bytes: int | None = None


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""


class ClusterStatus(Model):
    name: str
    namespace: str
    phase: str
    phase_reason: str = ""  # CNPG's status.phaseReason
    # why the cluster cannot get where a run waits for it to go without a person: set only on a final sign
    # (see each platform's cluster_status); a wait ends on it and quotes it
    failure: str | None = None
    instances: int = 0
    ready_instances: int = 0
    current_primary: str | None = None
    target_primary: str | None = None
    instances_status: list[InstanceStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    first_recoverability_point: str | None = None
    last_successful_backup: str | None = None
    synchronous_standby_names: str | None = None
    replication_slots: list[ReplicationSlot] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _derived_healthy(cls, data: Any) -> Any:
        """`healthy` travels beside the status (the API and the status activity add it); it is derived here."""
        if isinstance(data, dict) and "healthy" in data:
            data = {k: v for k, v in data.items() if k != "healthy"}
        return data

    @property
    def exists(self) -> bool:
        return self.phase != NOT_FOUND

    @property
    def healthy(self) -> bool:
        return self.phase == HEALTHY and self.ready_instances == self.instances

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


class InstanceSettings(Model):
    """One instance's settings in force (PostgreSQL's own spelling) and those waiting for a restart."""

    name: str
    values: dict[str, str | None] = Field(default_factory=dict)
    # pg_settings' setting and unit of each: how PostgreSQL reads a value given without a unit
    base: dict[str, tuple[str, str | None]] = Field(default_factory=dict)
    pending_restart: list[str] = Field(default_factory=list)
    error: str | None = None  # the instance did not answer (starting, restarting): nothing known of it yet


class Rollout(Model):
    """How far the operator has taken a change of the Cluster (CNPG's rolling update, its major upgrade, a volume
    resize) where the operator rolls it, not pgha: what is still not as the spec says, each in words."""

    phase: str
    phase_reason: str = ""
    failure: str | None = None  # the sign that the change cannot finish without a person (a wait ends on it)
    current_primary: str | None = None
    waiting: list[str] = Field(default_factory=list)
    pending_restart: list[str] = Field(default_factory=list)  # the instances a setting waits on for a restart
    # a major upgrade's pg_upgrade Job failed: the old data directory is untouched and setting the image back is
    # CNPG's rollback (once pg_upgrade has succeeded it would be a downgrade CNPG refuses)
    major_upgrade_failed: bool = False
    pods: dict[str, str] = Field(default_factory=dict)  # each instance's pod uid (a pod made again has a new one)
    outdated: list[str] = Field(default_factory=list)  # the instances whose pod runs another image or resources
    previous_image: str | None = None  # the image the data directory was made with (CNPG's pgDataImageInfo)

    @property
    def to_restart(self) -> list[str]:
        """The instances the change still has to restart or make again."""
        return sorted(set(self.pending_restart) | set(self.outdated))

    @property
    def state(self) -> Literal["done", "waiting for user", "rolling"]:
        if self.phase == WAITING_FOR_USER:
            return "waiting for user"
        return "rolling" if self.waiting or self.phase != HEALTHY else "done"

    def describe(self) -> str:
        said = f"{self.phase}: {self.phase_reason}" if self.phase_reason else self.phase
        return "; ".join([said, *self.waiting])


class Drift(Model):
    """A field where what runs differs from the spec pgha holds (a hand edit behind pgha's back, or a change
    still waiting for a restart): on AKS a field of the Cluster pgha applies, locally a member's setting."""

    field: str
    held: Any = None
    running: Any = None
    instance: str | None = None
