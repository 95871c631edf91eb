"""ClusterSpec: the runbook's CNPG `Cluster`, as an operator asks for it.

Field names follow CNPG's API (camelCase aliases) so a spec reads like the Cluster it becomes;
every size and count is bounded so that a request can never ask for something absurd.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Literal

from croniter import croniter
from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.cron import check_schedule
from shared.model import Model, parse_model

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[str, StringConstraints(pattern=DNS_LABEL, min_length=1, max_length=50)]
Namespace = Annotated[str, StringConstraints(pattern=DNS_LABEL, min_length=1, max_length=63)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,5}(Mi|Gi|Ti)$")]
CpuQuantity = Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]{0,2}|[1-9][0-9]{0,5}m)$")]


def _fired_by_pgha(schedule: str) -> str:
    """pgha's own schedules are fired by its periodic timer, through croniter: it must read them too."""
    if not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError(f"{schedule!r} is not a schedule pgha's timer can fire")
    return schedule


# CNPG's 6-field cron: seconds minutes hours day-of-month month day-of-week, `?` allowed (shared/cron.py).
Schedule = Annotated[str, StringConstraints(pattern=r"^\S+( \S+){5}$", max_length=100), AfterValidator(check_schedule)]
OwnSchedule = Annotated[Schedule, AfterValidator(_fired_by_pgha)]
# Azure resource names of a public IP: 1-80 of letters, digits, `_`, `.`, `-`
PublicIpName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")]

GUC = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
# Parameters CNPG manages itself; an operator who sets them would fight the operator.
FIXED_PARAMETERS = frozenset({
    "archive_command", "archive_mode", "data_directory", "hba_file", "hot_standby", "listen_addresses",
    "port", "primary_conninfo", "primary_slot_name", "restore_command", "synchronous_standby_names",
    "unix_socket_directories", "wal_level",
})
# CNPG's managed extensions: a parameter of one of these adds its library to shared_preload_libraries
PRELOAD_PREFIXES = ("pg_stat_statements", "auto_explain", "pgaudit")
HBA = re.compile(
    r"^(local|host|hostssl|hostnossl)\s+\S+\s+\S+(\s+\S+)?\s+"
    r"(trust|reject|scram-sha-256|md5|password|peer|ident|cert)(\s+\S+)*$"
)


class ClusterRef(Model):
    """A cluster by its names: what runs, locks and the activities that need no more are given."""

    namespace: str
    name: str


class ReplicationSlots(Model):
    high_availability: bool = True
    update_interval: int = Field(30, ge=1, le=3600)


class InitDB(Model):
    database: Identifier = "appdb"
    owner: Identifier = "app"
    secret_name: Name = "db-user-pass"
    data_checksums: bool = True


class Volume(Model):
    size: Quantity = "2Gi"
    storage_class: Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)] = "managed-csi-premium"


class Resources(Model):
    """Requests equal limits: the Guaranteed QoS class the runbook asks for."""

    memory: Quantity = "8Gi"
    cpu: CpuQuantity = "2"


class Monitoring(Model):
    enable_pod_monitor: bool = True


class Backup(Model):
    destination_path: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s/]+)+/?$", max_length=400)] = (
        "https://pghabackups.blob.core.windows.net/backups"
    )
    server_name: Name | None = None
    retention_policy: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,3}[dwm]$")] = "7d"
    # auto: the Barman Cloud plugin when the operator has it, else in-tree barmanObjectStore (deprecated
    # since CNPG 1.26, gone in 1.31) — resolved once, at deploy, and stored with the spec
    method: Literal["auto", "barmanObjectStore", "plugin"] = "auto"
    schedule: Schedule | None = None

    @property
    def container(self) -> str:
        return self.destination_path.rstrip("/").split("/")[3]


class Endpoints(Model):
    """Public rw/ro endpoints; a LoadBalancer per role on AKS, pg_hba ranges locally."""

    enabled: bool = False
    source_ranges: list[str] = Field(default_factory=list, max_length=20)
    # the public IP's DNS label (`<label>.<region>.cloudapp.azure.com`); the ro endpoint's is `<label>-ro`
    # when it has an IP of its own
    dns_label: Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=60)] | None = None
    # a static public IP (in the AKS node resource group) that rw (5432) and ro (5433) share, as the
    # runbook's; one cluster's own: two clusters on one IP would both claim its ports
    public_ip_name: PublicIpName | None = None

    @field_validator("source_ranges")
    @classmethod
    def _cidrs(cls, ranges: list[str]) -> list[str]:
        for cidr in ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP range in CIDR form") from None
        return ranges

    @model_validator(mode="after")
    def _ranges_when_public(self) -> Endpoints:
        """An empty loadBalancerSourceRanges opens a LoadBalancer to everyone: that must be said, not implied."""
        if self.enabled and not self.source_ranges:
            raise ValueError("sourceRanges is required when endpoints are enabled (\"0.0.0.0/0\" to open them to "
                             "everyone)")
        return self


class Schedules(Model):
    """pgha's own schedules (6-field cron), fired by the periodic timer."""

    backup_verification: OwnSchedule | None = None
    failover_drill: OwnSchedule | None = None
    # a new password for the app owner, on every cluster that uses its secret (rotate_credentials)
    credential_rotation: OwnSchedule | None = None


class Drills(Model):
    enabled: bool = False


class PostgresConfig(Model):
    parameters: dict[str, str] = Field(default_factory=dict, max_length=200)
    pg_hba: list[str] = Field(
        default_factory=lambda: ["host all all all scram-sha-256"], max_length=100, alias="pg_hba"
    )

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, params: dict[str, str]) -> dict[str, str]:
        for key, value in params.items():
            if not GUC.match(key):
                raise ValueError(f"{key!r} is not a PostgreSQL parameter name")
            if key in FIXED_PARAMETERS:
                raise ValueError(f"{key!r} is managed by the operator and cannot be set")
            if len(value) > 1000 or "\n" in value or "'" in value:
                raise ValueError(f"value of {key!r} must be one line, without quotes, under 1000 characters")
        return params

    @field_validator("pg_hba")
    @classmethod
    def _hba(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            if not HBA.match(rule.strip()):
                raise ValueError(f"{rule!r} is not a pg_hba rule")
        return rules


class Recovery(Model):
    """CNPG's bootstrap.recovery: a new cluster from another's object store (latest, or a target)."""

    source: Name
    server_name: Name
    destination_path: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s/]+)+/?$", max_length=400)]
    target_time: datetime | None = None
    target_lsn: Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")] | None = None
    # CNPG's bootstrap.recovery.secret: the owner's password is set from it after recovery (the source's
    # secret is gone when the source was torn down)
    owner_secret: Name | None = None

    @property
    def container(self) -> str:
        return self.destination_path.rstrip("/").split("/")[3]


# an OCI image reference: registry/repository[:tag][@digest]
ImageName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[A-Za-z0-9._-]{1,128})?"
                                                     r"(@sha256:[0-9a-f]{64})?$", max_length=255)]


class ClusterSpec(Model):
    name: Name
    namespace: Namespace = "default"
    instances: int = Field(3, ge=1, le=9)
    # CNPG's imageName; None is the operator's default image (locally: the one PostgreSQL installed)
    image_name: ImageName | None = None
    # CNPG's rolling update of the primary, with CNPG's defaults: it follows the standbys by itself
    # (`supervised` waits for a person) and restarts in place (`switchover` promotes a standby first)
    primary_update_strategy: Literal["unsupervised", "supervised"] = "unsupervised"
    primary_update_method: Literal["restart", "switchover"] = "restart"
    synchronous_replicas: int = Field(1, ge=0, le=8)
    # None: the runbook's minSyncReplicas / maxSyncReplicas; `any` (quorum) or `first`: CNPG's newer
    # postgresql.synchronous stanza. Locally Patroni's quorum commit stands for both.
    synchronous_method: Literal["any", "first"] | None = None
    replication_slots: ReplicationSlots = ReplicationSlots()
    postgresql: PostgresConfig = PostgresConfig()
    bootstrap: InitDB = InitDB()
    storage: Volume = Volume()
    wal_storage: Volume | None = Volume()
    # None: no requests or limits (the runbook's restore Cluster sets none)
    resources: Resources | None = Resources()
    zone_spread: bool = True
    node_selector: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9./_-]{1,253}$")],
        Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9._-]{0,63}$")],
    ] = Field(default_factory=lambda: {"workload": "postgres"}, max_length=20)
    monitoring: Monitoring = Monitoring()
    backup: Backup = Backup()
    endpoints: Endpoints = Endpoints()
    drills: Drills = Drills()
    schedules: Schedules = Schedules()
    sample_data: bool = False
    recovery: Recovery | None = None

    @field_validator("synchronous_replicas")
    @classmethod
    def _sync_fits(cls, sync: int, info: ValidationInfo) -> int:
        instances = info.data.get("instances")
        if instances is not None and sync > instances - 1:
            raise ValueError(f"must be at most instances - 1 ({instances - 1}), got {sync}")
        return sync

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(namespace=self.namespace, name=self.name)

    @property
    def server_name(self) -> str:
        return self.backup.server_name or self.name

    @property
    def instance_names(self) -> list[str]:
        """The instances of a new cluster (serials 1..N); a scaled one keeps its own, which its status lists."""
        return [f"{self.name}-{n}" for n in range(1, self.instances + 1)]


def parse_spec(body: object) -> ClusterSpec:
    """Validate a request body into a ClusterSpec, or raise SpecError naming the first bad field."""
    return parse_model(ClusterSpec, body)
